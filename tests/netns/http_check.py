#!/usr/bin/python3
"""HTTP conformance checks for ms-httpd, over whatever transport serves ADDR:PORT.
Usage: http_check.py ADDR PORT ROOT. Exits non-zero with the first failure."""
import hashlib
import os
import socket
import sys
import time

ADDR, PORT, ROOT = sys.argv[1], int(sys.argv[2]), sys.argv[3]


def connect():
    s = socket.create_connection((ADDR, PORT), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_response(s, buf=b""):
    """One response from s: (status, headers, body, leftover bytes)."""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before a response; got {buf[:100]!r}")
        buf += chunk
    head, buf = buf.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
    return status, headers, buf


def request(raw, head=False):
    s = connect()
    s.sendall(raw)
    status, headers, buf = read_response(s)
    length = 0 if head else int(headers["content-length"])
    while len(buf) < length:
        buf += s.recv(65536)
    s.close()
    return status, headers, buf[:length]


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAIL: {what}")
    print(f"ok - {what}")


def main():
    for name in sorted(os.listdir(ROOT)):
        path = os.path.join(ROOT, name)
        if not os.path.isfile(path):
            continue
        data = open(path, "rb").read()
        status, headers, body = request(f"GET /{name} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        check(status == 200 and hashlib.sha256(body).digest() == hashlib.sha256(data).digest(),
              f"GET /{name}: 200 and {len(data)} bytes, byte-exact")
    status, headers, body = request(b"HEAD /1k.bin HTTP/1.1\r\nHost: t\r\n\r\n", head=True)
    check(status == 200 and headers["content-length"] == "1024" and body == b"", "HEAD: the length, no body")
    check(all(h in headers for h in ("date", "server", "content-type")), "Date, Server and Content-Type headers")

    for raw, want, what in [
        (b"GARBAGE\r\n\r\n", 400, "malformed request line"),
        (b"GET / HTTP/1.1\r\n\r\n", 400, "HTTP/1.1 without Host"),
        (b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\n", 404, "missing file"),
        (b"DELETE / HTTP/1.1\r\nHost: t\r\n\r\n", 405, "unknown method"),
        (b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc", 413, "request body"),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414, "request line too long"),
        (b"GET / HTTP/1.1\r\nHost: t\r\nX: " + b"b" * 20000 + b"\r\n\r\n", 431, "header block too large"),
    ]:
        status, _, _ = request(raw)
        check(status == want, f"{what}: {want}")

    s = connect()
    for byte in b"GET /index.html HTTP/1.1\r\nHost: t\r\n\r\n":
        s.send(bytes([byte]))
        time.sleep(0.001)
    status, headers, buf = read_response(s)
    check(status == 200, "a request sent one byte at a time")
    s.close()

    s = connect()
    s.sendall(b"GET /1k.bin HTTP/1.1\r\nHost: t\r\n\r\nGET /nope HTTP/1.1\r\nHost: t\r\n\r\n"
              b"HEAD /1k.bin HTTP/1.1\r\nHost: t\r\n\r\n")
    statuses = []
    buf = b""
    for head in (False, False, True):
        status, headers, buf = read_response(s, buf)
        length = 0 if head else int(headers["content-length"])
        while len(buf) < length:
            buf += s.recv(65536)
        buf = buf[length:]
        statuses.append(status)
    check(statuses == [200, 404, 200], f"three pipelined requests answered in order: {statuses}")
    s.close()

    # Slowloris: a header that never ends is cut after the header timeout (1 s in the test).
    s = connect()
    s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n")
    start = time.time()
    s.settimeout(5)
    try:
        gone = s.recv(100) == b""
    except ConnectionResetError:
        gone = True
    except socket.timeout:
        gone = False
    check(gone and time.time() - start < 4, f"an unfinished header is cut off ({time.time() - start:.1f} s)")


if __name__ == "__main__":
    main()
