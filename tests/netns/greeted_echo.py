"""Greeted echo: connects to HOST:PORT, reads two greeting lines, checks each against its
regular expression, then sends 4 MB of random bytes while reading the echo and checks it
byte-exact. Prints the two greetings; exits non-zero naming what failed.

Usage: greeted_echo.py HOST PORT FIRST_REGEX SECOND_REGEX"""
import os, re, socket, sys, threading

host, port, first_re, second_re = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
s = socket.create_connection((host, port), timeout=20)
f = s.makefile("rb")
first, second = f.readline().decode().strip(), f.readline().decode().strip()
if not re.fullmatch(first_re, first) or not re.fullmatch(second_re, second):
    sys.exit(f"greetings {first!r} and {second!r}, want {first_re!r} and {second_re!r}")
data = os.urandom(4000000)

def push():
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)

sender = threading.Thread(target=push)
sender.start()
back = f.read()
sender.join()
if back != data:
    sys.exit(f"{len(back)} of {len(data)} bytes came back, or other bytes")
print(f"{first} | {second}: 4 MB echoed byte-exact")
