#!/usr/bin/python3
"""Many TCP connections from the kernel, for the scale test and benchmark.

  tcp_many.py hold ADDR PORT --connections N [--sources IP,IP] [--pending P]
      opens N connections (at most P handshakes at once), spreading them over the source
      addresses (64k ports each), sends nothing, prints {"established": N, ...}, then holds
      them until its standard input closes. Each line "check" on its standard input sends
      16 bytes on every connection and checks their echo: {"checked": N, "failed": k}.
  tcp_many.py churn ADDR PORT --connections TOTAL [--parallel P] [--sources ...] [--every K]
      TOTAL short connections, P at a time: each sends 16 bytes, checks their echo and
      closes; prints {"done": k} after every K and a final {"done", "failed", "seconds"}.
  tcp_many.py server ADDR PORT
      a kernel server that accepts and holds every connection (for memory per connection);
      several may share the port (SO_REUSEPORT) when one process cannot hold them all.
Exits non-zero if a connection fails.
"""
import argparse
import itertools
import json
import resource
import select
import socket
import sys
import time

MESSAGE = b"0123456789abcdef"
IP_BIND_ADDRESS_NO_PORT = 24  # linux/in.h; not in Python's socket module


def raise_fd_limit(n):
    """Room for n sockets, within the hard limit (raising that needs CAP_SYS_RESOURCE)."""
    want = n + 64
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and want > hard:
        sys.exit(f"tcp_many.py: {n} sockets need {want} descriptors; the hard limit is {hard}: "
                 "split them over several processes")
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def start_connect(addr, port, source):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # ports in TIME_WAIT may be reused (churn)
    # The port is chosen at connect() by the 4-tuple, not at bind() (a bind-time search
    # over tens of thousands of bound ports grows slow).
    s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
    s.bind((source, 0))
    s.connect_ex((addr, port))
    return s


def hold(args, sources):
    raise_fd_limit(args.connections)
    ep = select.epoll()
    pending, held = {}, []
    start = time.monotonic()
    todo = args.connections
    while todo or pending:
        while todo and len(pending) < args.pending:
            s = start_connect(args.addr, args.port, next(sources))
            pending[s.fileno()] = s
            ep.register(s.fileno(), select.EPOLLOUT)
            todo -= 1
        for fd, _ in ep.poll(5):
            s = pending.pop(fd)
            ep.unregister(fd)
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                print(json.dumps({"established": len(held), "error": f"connect: errno {err}"}), flush=True)
                sys.exit(1)
            held.append(s)
    print(json.dumps({"established": len(held), "seconds": time.monotonic() - start}), flush=True)
    for line in sys.stdin:
        if line.strip() == "check":
            failed = check_echoes(held)
            print(json.dumps({"checked": len(held), "failed": failed}), flush=True)
    for s in held:
        s.close()


def check_echoes(held, timeout=30):
    """Sends MESSAGE on every connection; the number whose echo did not come back exact."""
    ep = select.epoll()
    got = {}
    for s in held:
        s.setblocking(False)
        s.send(MESSAGE)
        got[s.fileno()] = b""
        ep.register(s.fileno(), select.EPOLLIN)
    by_fd = {s.fileno(): s for s in held}
    deadline = time.monotonic() + timeout
    waiting = len(held)
    while waiting and time.monotonic() < deadline:
        for fd, _ in ep.poll(1):
            try:
                data = by_fd[fd].recv(64)
            except OSError:
                data = b""
            got[fd] += data
            if len(got[fd]) >= len(MESSAGE) or not data:
                ep.unregister(fd)
                waiting -= 1
    ep.close()
    return sum(1 for fd in got if got[fd] != MESSAGE)


def churn(args, sources):
    raise_fd_limit(args.parallel)
    ep = select.epoll()
    live = {}  # fd -> (socket, phase, bytes echoed)
    done = failed = 0
    started = 0
    start = time.monotonic()
    while done + failed < args.connections:
        while started < args.connections and len(live) < args.parallel:
            s = start_connect(args.addr, args.port, next(sources))
            live[s.fileno()] = [s, "connect", b""]
            ep.register(s.fileno(), select.EPOLLOUT)
            started += 1
        for fd, ev in ep.poll(5):
            entry = live[fd]
            s = entry[0]
            try:
                if entry[1] == "connect":
                    if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                        raise OSError("connect failed")
                    s.send(MESSAGE)
                    entry[1] = "echo"
                    ep.modify(fd, select.EPOLLIN)
                    continue
                data = s.recv(64)
                if not data:
                    raise OSError("closed early")
                entry[2] += data
                if len(entry[2]) < len(MESSAGE):
                    continue
                if entry[2] != MESSAGE:
                    raise OSError("echo differs")
                done += 1
            except OSError:
                failed += 1
            ep.unregister(fd)
            s.close()
            del live[fd]
            if (done + failed) % args.every == 0:
                print(json.dumps({"done": done + failed}), flush=True)
    print(json.dumps({"done": done, "failed": failed, "seconds": time.monotonic() - start}), flush=True)
    sys.exit(1 if failed else 0)


def serve(args):
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # several servers share the connections
    ls.bind((args.addr, args.port))
    ls.listen(65535)
    print("listening", flush=True)
    held = []
    while True:
        held.append(ls.accept()[0])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["hold", "churn", "server"])
    p.add_argument("addr")
    p.add_argument("port", type=int)
    p.add_argument("--connections", type=int, default=1000)
    p.add_argument("--sources", default="0.0.0.0", help="source addresses, comma-separated")
    p.add_argument("--pending", type=int, default=1000, help="hold: handshakes at once")
    p.add_argument("--parallel", type=int, default=200, help="churn: connections at once")
    p.add_argument("--every", type=int, default=10000, help="churn: progress every K connections")
    args = p.parse_args()
    sources = itertools.cycle(args.sources.split(","))
    {"hold": hold, "churn": churn, "server": serve}[args.mode](args, sources) if args.mode != "server" else serve(args)


if __name__ == "__main__":
    main()
