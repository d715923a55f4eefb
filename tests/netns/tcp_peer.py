#!/usr/bin/python3
"""The Linux kernel's side of the UTCP interop tests: an echo server and a checking
client on kernel TCP sockets (asyncio).

  tcp_peer.py server ADDR PORT [--abort-after N] [--fast-open] [--cc NAME]
      echo every connection; with --abort-after, reset each connection (SO_LINGER 0)
      once it has received N bytes; with --fast-open, take data in SYNs (RFC 7413);
      with --cc, the connections' congestion control (TCP_CONGESTION; the host's default
      otherwise, which need not be CUBIC).
  tcp_peer.py client ADDR PORT --bytes N [--connections K] [--half-close] [--abort-after N]
      send N random bytes on each of K connections while reading the echo, and check
      the echo by SHA-256. --half-close shuts down sending after the last byte and
      reads to end of stream; --abort-after resets the connection after N bytes sent.
Prints one JSON line; exits 0 only if every connection checked out.
"""
import argparse
import asyncio
import hashlib
import json
import os
import socket
import struct
import sys
import time

CHUNK = 65536


def reset(writer):
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def serve(args):
    async def echo(reader, writer):
        received = 0
        try:
            while data := await reader.read(CHUNK):
                received += len(data)
                if args.abort_after and received >= args.abort_after:
                    reset(writer)
                    return
                writer.write(data)
                await writer.drain()
            writer.close()
        except ConnectionError:
            pass

    server = await asyncio.start_server(echo, args.addr, args.port, backlog=4096)
    for sock in server.sockets:
        if args.fast_open:  # RFC 7413 on the kernel's side; net.ipv4.tcp_fastopen must allow servers
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_FASTOPEN, 256)
        if args.cc:  # accepted connections inherit it
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, args.cc.encode())
    print("listening", flush=True)
    async with server:
        await server.serve_forever()


async def one_client(args, index):
    payload = os.urandom(args.bytes)
    sent_hash = hashlib.sha256(payload).hexdigest()
    reader, writer = await asyncio.open_connection(args.addr, args.port)

    async def send():
        for at in range(0, len(payload), CHUNK):
            if args.abort_after and at >= args.abort_after:
                reset(writer)
                return
            writer.write(payload[at:at + CHUNK])
            await writer.drain()
        if args.half_close:
            writer.write_eof()

    async def receive():
        digest = hashlib.sha256()
        got = 0
        while got < args.bytes or args.half_close:
            data = await reader.read(CHUNK)
            if not data:
                break
            digest.update(data)
            got += len(data)
        return got, digest.hexdigest()

    sender = asyncio.create_task(send())
    try:
        got, received_hash = await receive()
        await sender
    except ConnectionError as e:
        return {"index": index, "error": type(e).__name__}
    if not args.half_close:
        writer.close()
    return {"index": index, "received": got, "ok": got == args.bytes and received_hash == sent_hash}


async def run_clients(args):
    start = time.monotonic()
    results = await asyncio.gather(*(one_client(args, i) for i in range(args.connections)), return_exceptions=True)
    seconds = time.monotonic() - start
    bad = [r if isinstance(r, dict) else {"exception": repr(r)} for r in results
           if not (isinstance(r, dict) and r.get("ok"))]
    print(json.dumps({"ok": not bad, "connections": args.connections, "bytes": args.bytes,
                      "seconds": round(seconds, 3), "failures": bad[:10], "failed": len(bad)}), flush=True)
    return not bad


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["server", "client"])
    p.add_argument("addr")
    p.add_argument("port", type=int)
    p.add_argument("--bytes", type=int, default=1 << 20)
    p.add_argument("--connections", type=int, default=1)
    p.add_argument("--half-close", action="store_true")
    p.add_argument("--abort-after", type=int, default=0)
    p.add_argument("--fast-open", action="store_true", help="server: accept data in SYNs (TCP_FASTOPEN)")
    p.add_argument("--cc", help="server: the connections' congestion control (TCP_CONGESTION)")
    args = p.parse_args()
    if args.mode == "server":
        asyncio.run(serve(args))
        return 0
    return 0 if asyncio.run(run_clients(args)) else 1


if __name__ == "__main__":
    sys.exit(main())
