"""Kernel-socket peers for preload_semantics.py (run in the client namespace, no preload).

Usage: preload_peer.py ADDR
Ports: 9001 echo until EOF, then close; 9002 accept then reset (SO_LINGER 0);
9003 read nothing for 1 s, then count everything until EOF and answer the SHA-256;
9004 send "one", wait 0.5 s, send "two", then close; 9005 read a port number, connect
back to it, send "hello", answer what comes back on the first connection, then close.
"""
import hashlib
import socket
import struct
import sys
import threading
import time


def serve(port, handle):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((sys.argv[1], port))
    s.listen(16)

    def loop():
        while True:
            c, _ = s.accept()
            threading.Thread(target=handle, args=(c,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()


def echo(c):
    while data := c.recv(65536):
        c.sendall(data)
    c.close()


def reset(c):
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    time.sleep(0.2)
    c.close()


def slow_sink(c):
    time.sleep(1)
    h = hashlib.sha256()
    while data := c.recv(65536):
        h.update(data)
    c.sendall(h.hexdigest().encode())
    c.close()


def speak_twice(c):
    c.sendall(b"one")
    time.sleep(0.5)
    c.sendall(b"two")
    time.sleep(0.2)
    c.close()


def connect_back(c):
    port = int(c.recv(100).decode())
    back = socket.create_connection((c.getpeername()[0], port), timeout=5)
    back.sendall(b"hello")
    answer = b""
    while data := back.recv(100):
        answer += data
    back.close()
    c.sendall(answer)
    c.close()


for port, handler in ((9001, echo), (9002, reset), (9003, slow_sink), (9004, speak_twice), (9005, connect_back)):
    serve(port, handler)
print("peers ready", flush=True)
while True:
    time.sleep(3600)
