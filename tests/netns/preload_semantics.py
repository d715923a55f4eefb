"""POSIX socket semantics over UTCP, through libmultistack-preload.so (run under it, in
the server namespace, with MULTISTACK_REQUIRE=1 so that nothing falls back silently).
Talks to preload_peer.py's kernel sockets at PEER and serves one of its own.

Usage: preload_semantics.py LOCAL_ADDR PEER_ADDR
"""
import errno
import fcntl
import hashlib
import os
import select
import socket
import struct
import sys
import termios
import threading
import time

from checks import check, finish

local, peer = sys.argv[1], sys.argv[2]


def connected(port):
    s = socket.create_connection((peer, port), timeout=5)
    s.settimeout(None)
    return s


# Non-blocking connect: EINPROGRESS, then writable, then SO_ERROR 0.
s = socket.socket()
s.setblocking(False)
err = s.connect_ex((peer, 9001))
check(err == errno.EINPROGRESS, f"non-blocking connect gives EINPROGRESS (got {errno.errorcode.get(err, err)})")
_, w, _ = select.select([], [s], [], 5)
check(w == [s], "the connecting socket becomes writable")
check(s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0, "SO_ERROR is 0 after the handshake")
check(s.getpeername() == (peer, 9001), "getpeername names the peer")
check(s.getsockname()[0] == local, "getsockname names the interface's address")
# Nothing to read yet: EAGAIN.
try:
    s.recv(10)
    check(False, "recv with nothing queued raises")
except BlockingIOError:
    check(True, "recv on an empty non-blocking socket gives EAGAIN")
s.setblocking(True)

# Half close: send, shut down writing, read the echo until end of stream.
payload = os.urandom(300_000)
s.sendall(payload)
s.shutdown(socket.SHUT_WR)
got = bytearray()
while chunk := s.recv(65536):
    got += chunk
check(bytes(got) == payload, f"half close: the echo of 300000 bytes came back whole ({len(got)})")
try:
    s.send(b"x")
    check(False, "send after SHUT_WR raises")
except BrokenPipeError:
    check(True, "send after SHUT_WR gives EPIPE")
s.close()

# Refused: the peer's kernel answers a SYN to a closed port with a RST.
s = socket.socket()
err = s.connect_ex((peer, 9009))
check(err == errno.ECONNREFUSED, f"connect to a closed port gives ECONNREFUSED (got {errno.errorcode.get(err, err)})")
s.close()
# The same without blocking: connect again reports the outcome, as in Linux.
s = socket.socket()
s.setblocking(False)
s.connect_ex((peer, 9009))
select.select([], [s], [], 5)
err = s.connect_ex((peer, 9009))
check(err == errno.ECONNREFUSED, f"connect again after a refused non-blocking connect gives ECONNREFUSED ({errno.errorcode.get(err, err)})")
s.close()

# SO_RCVTIMEO bounds a blocking receive.
s = connected(9004)
s.recv(3)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, 200_000))
start = time.monotonic()
try:
    s.recv(10)
    check(False, "a receive past SO_RCVTIMEO raises")
except BlockingIOError:
    waited = time.monotonic() - start
    check(0.15 < waited < 0.45, f"SO_RCVTIMEO of 200 ms ends a blocking receive with EAGAIN ({waited:.3f} s)")
err = s.connect_ex((peer, 9004))
check(err == errno.EISCONN, f"connect on a connected socket gives EISCONN ({errno.errorcode.get(err, err)})")
s.close()

# Reset by the peer: recv fails with ECONNRESET (or reads the end after SO_ERROR).
s = connected(9002)
time.sleep(0.5)
try:
    data = s.recv(10)
    check(False, f"recv after a reset raises (got {data!r})")
except ConnectionResetError:
    check(True, "recv after the peer's reset gives ECONNRESET")
check(s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0, "SO_ERROR is cleared once reported")
s.close()

# Partial writes and EAGAIN against a peer that does not read for a second; level-
# triggered epoll says when there is room again.
s = connected(9003)
s.setblocking(False)
sent, partial, again, again_checked = 0, False, False, False
block = os.urandom(1 << 20)
digest = hashlib.sha256()
ep = select.epoll()
ep.register(s.fileno(), select.EPOLLOUT)
total = 8 << 20
while sent < total:
    try:
        n = s.send(block[: min(len(block), total - sent)])
        partial |= n < min(len(block), total - sent)
        digest.update(block[:n])
        sent += n
    except BlockingIOError:
        if not again:
            queued = struct.unpack("i", fcntl.ioctl(s.fileno(), termios.TIOCOUTQ, struct.pack("i", 0)))[0]
            check(queued > 0, f"TIOCOUTQ counts the bytes the peer has not acknowledged ({queued})")
        again = True
        ready = ep.poll(10)
        if not again_checked:
            check(len(ready) == 1, "level-triggered EPOLLOUT reports room again")
            again_checked = True
check(again, "a non-blocking send with no room gives EAGAIN")
check(partial, "a non-blocking send takes part of a large buffer")
s.setblocking(True)
s.shutdown(socket.SHUT_WR)
answer = b""
while chunk := s.recv(100):
    answer += chunk
check(answer.decode() == digest.hexdigest(), "8 MB through partial writes arrive intact (SHA-256)")
ep.close()
s.close()

# Edge-triggered epoll: one event per arrival; reading until EAGAIN re-arms it.
s = connected(9004)
s.setblocking(False)
ep = select.epoll()
ep.register(s.fileno(), select.EPOLLIN | select.EPOLLET)
events = ep.poll(5)
check(len(events) == 1, "edge-triggered EPOLLIN fires for the first data")
buf = b""
try:
    while True:
        buf += s.recv(100)
except BlockingIOError:
    pass
check(buf == b"one", f"the first data is read until EAGAIN ({buf!r})")
check(ep.poll(0.1) == [], "no new edge without new data")
events = ep.poll(5)
check(len(events) == 1, "a new edge for the second data")
check(s.recv(100) == b"two", "the second data is read")
buf = fcntl.ioctl(s.fileno(), termios.FIONREAD, struct.pack("i", 0))
check(struct.unpack("i", buf)[0] == 0, "FIONREAD says 0 once everything is read")
time.sleep(0.5)
check(s.recv(100) == b"", "end of stream after the peer closes")
ep.close()
s.close()

# EPOLLONESHOT: one event, then none until the socket is armed again with EPOLL_CTL_MOD.
s = connected(9001)
ep = select.epoll()
ep.register(s.fileno(), select.EPOLLIN | select.EPOLLONESHOT)
s.sendall(b"a")
check(len(ep.poll(5)) == 1, "EPOLLONESHOT: the first echo is reported")
s.sendall(b"b")
time.sleep(0.2)
check(ep.poll(0.2) == [], "EPOLLONESHOT: nothing more until armed again")
ep.modify(s.fileno(), select.EPOLLIN | select.EPOLLONESHOT)
check(len(ep.poll(5)) == 1, "EPOLLONESHOT: armed again, the waiting bytes are reported")
check(s.recv(10) == b"ab", "the echo of both sends is there")
ep.close()

# EPOLLRDHUP: the peer's end of stream is reported as such.
ep = select.epoll()
ep.register(s.fileno(), select.EPOLLIN | select.EPOLLRDHUP)
s.shutdown(socket.SHUT_WR)  # the echo peer closes at our end of stream
events = ep.poll(5)
check(len(events) == 1 and events[0][1] & select.EPOLLRDHUP, f"EPOLLRDHUP at the peer's end of stream ({events})")
check(s.recv(10) == b"", "end of stream reads as such")
ep.close()
s.close()

# One socket in two epoll sets, and in a third with EPOLLEXCLUSIVE: each set hears it.
s = connected(9001)
ep1, ep2, ex = select.epoll(), select.epoll(), select.epoll()
ep1.register(s.fileno(), select.EPOLLIN)
ep2.register(s.fileno(), select.EPOLLIN)
ex.register(s.fileno(), select.EPOLLIN | select.EPOLLEXCLUSIVE)
s.sendall(b"x")
check(len(ep1.poll(5)) == 1 and len(ep2.poll(5)) == 1, "a socket in two epoll sets: both report the data")
check(len(ex.poll(5)) == 1, "EPOLLEXCLUSIVE: the exclusive waiter reports it too")
try:
    ex.modify(s.fileno(), select.EPOLLIN)
    check(False, "EPOLL_CTL_MOD of an EPOLLEXCLUSIVE entry fails")
except OSError as e:
    check(e.errno == errno.EINVAL, f"EPOLL_CTL_MOD of an EPOLLEXCLUSIVE entry fails with EINVAL, as in Linux ({e})")
check(s.recv(10) == b"x", "the echo is read once")
for e in (ep1, ep2, ex):
    e.close()

# dup of an epoll-watched socket: the entry follows the open socket, not the number.
ep = select.epoll()
watched = s.fileno()
ep.register(watched, select.EPOLLIN)
copy = socket.socket(fileno=os.dup(watched))
s.close()  # the number goes; the socket stays open through the copy
copy.sendall(b"y")
events = ep.poll(5)
check([fd for fd, _ in events] == [watched], f"epoll still reports the socket after its first number closed ({events})")
check(copy.recv(10) == b"y", "the copy reads the echo")
copy.shutdown(socket.SHUT_WR)
check(copy.recv(10) == b"", "and its end of stream")
ep.close()
copy.close()

# The library keeps the UTCP part of each epoll set itself; whatever else watches a socket
# or a set (poll, another set, a duplicate number, a blocking call, a forked child) sees
# it through the kernel. Every mix reports the same.
s = connected(9001)
ep = select.epoll()
ep.register(s.fileno(), select.EPOLLIN)
s.sendall(b"m")
check(len(ep.poll(5)) == 1, "mixed: epoll reports the echo")
p = select.poll()
p.register(s.fileno(), select.POLLIN)
check(p.poll(5000) == [(s.fileno(), select.POLLIN)], "mixed: poll() on the same socket reports it too")
check(len(ep.poll(0)) == 1, "mixed: and epoll still does, level-triggered")
outer = select.poll()
outer.register(ep.fileno(), select.POLLIN)
check(outer.poll(5000) != [], "mixed: poll() on the epoll set reports the set readable")
check(len(ep.poll(0)) == 1, "mixed: the set, now the kernel's, still reports the socket")
check(s.recv(10) == b"m", "mixed: the echo reads once")
check(len(ep.poll(0.1)) == 0, "mixed: read, nothing is reported")
ep.close()
s.close()

s = connected(9001)
inner, outer = select.epoll(), select.epoll()
inner.register(s.fileno(), select.EPOLLIN)
outer.register(inner.fileno(), select.EPOLLIN)
check(outer.poll(0.1) == [], "nested: nothing ready, the outer set reports nothing")
s.sendall(b"n")
check(len(outer.poll(5)) == 1, "nested: the outer set hears the inner set's UTCP socket")
check(len(inner.poll(0)) == 1, "nested: the inner set reports the socket")
check(s.recv(10) == b"n", "nested: the echo reads")
inner.close()
outer.close()

ep = select.epoll()
ep.register(s.fileno(), select.EPOLLIN)
twin = select.epoll.fromfd(os.dup(ep.fileno()))
s.sendall(b"d")
check(len(twin.poll(5)) == 1, "a duplicated epoll set's number reports its UTCP socket")
check(s.recv(10) == b"d", "the echo reads")
twin.close()
ep.close()
s.close()

# A blocking read on a socket that only a library set watched so far: it sleeps through the kernel.
s = connected(9004)  # "one", 0.5 s, "two", close
ep = select.epoll()
ep.register(s.fileno(), select.EPOLLIN | select.EPOLLET)
got = b""
while len(got) < 6:
    chunk = s.recv(10)
    if not chunk:
        break
    got += chunk
check(got == b"onetwo", f"a blocking recv on an epoll-watched socket waits for the late data ({got!r})")
ep.close()
s.close()

# A thread asleep in epoll_wait wakes when another thread adds a socket that is ready.
s = connected(9001)
s.sendall(b"t")
time.sleep(0.3)  # the echo is queued
ep = select.epoll()
woke = []
sleeper = threading.Thread(target=lambda: woke.append(ep.poll(10)))
sleeper.start()
time.sleep(0.3)
added = time.monotonic()
ep.register(s.fileno(), select.EPOLLIN)
sleeper.join()
check(len(woke) == 1 and len(woke[0]) == 1 and time.monotonic() - added < 5,
      f"a sleeping epoll_wait wakes for a ready socket another thread adds ({woke})")
check(s.recv(10) == b"t", "the echo reads")

# A forked child polls a socket its parent's library set watches.
s.sendall(b"f")
time.sleep(0.3)
child = os.fork()
if child == 0:
    p = select.poll()
    p.register(s.fileno(), select.POLLIN)
    os._exit(0 if p.poll(5000) else 1)
_, status = os.waitpid(child, 0)
check(os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, "a forked child's poll() sees the inherited socket ready")
check(len(ep.poll(5)) == 1, "the parent's epoll set still reports it")
check(s.recv(10) == b"f", "the parent reads the echo")
# The child adds a UTCP socket of its own stack to the set it shares with the parent.
child = os.fork()
if child == 0:
    c = socket.socket()
    c.setblocking(False)
    c.connect_ex((peer, 9001))
    ep.register(c.fileno(), select.EPOLLOUT)
    writable = ep.poll(5) == [(c.fileno(), select.EPOLLOUT)]
    c.send(b"k")
    ep.modify(c.fileno(), select.EPOLLIN)
    readable = ep.poll(5) == [(c.fileno(), select.EPOLLIN)] and c.recv(10) == b"k"
    os._exit(0 if writable and readable else 1)
_, status = os.waitpid(child, 0)
check(os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0,
      "a forked child's own socket in the epoll set it inherited is reported to the child")
check(ep.poll(0.2) == [], "the parent's epoll set reports nothing of the child's socket")
ep.close()
s.close()

# Non-blocking connections watched by epoll only, one after another: their descriptor
# pairs are kept and serve again, with nothing of the last connection left in them.
ep = select.epoll()
inodes, exact = set(), 0
for i in range(40):
    c = socket.socket()
    c.setblocking(False)
    c.connect_ex((peer, 9001))
    inodes.add(os.fstat(c.fileno()).st_ino)
    ep.register(c.fileno(), select.EPOLLOUT | select.EPOLLIN)
    ep.poll(5)
    message = b"pair %d" % i
    c.send(message)
    got = b""
    deadline = time.monotonic() + 5
    while len(got) < len(message) and time.monotonic() < deadline:
        ep.poll(1)
        try:
            got += c.recv(100)
        except BlockingIOError:
            pass
    exact += got == message
    ep.unregister(c.fileno())
    c.close()
check(exact == 40, f"40 connections in a row each read exactly their own echo ({exact})")
check(len(inodes) < 40, f"their descriptor pairs serve again ({len(inodes)} pairs for 40 connections)")
ep.close()

# A server of our own: the peer connects back to it from its kernel.
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((local, 0))
srv.listen(8)
port = srv.getsockname()[1]
check(port != 0, f"listen on port 0 takes an ephemeral port ({port})")
check(srv.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1, "SO_ACCEPTCONN on the listener")
check(srv.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 1, "SO_REUSEADDR reads back as set")
srv.setblocking(False)
try:
    srv.accept()
    check(False, "accept with nothing queued raises")
except BlockingIOError:
    check(True, "accept on an empty non-blocking listener gives EAGAIN")
srv.setblocking(True)
ctl = connected(9005)
ctl.sendall(str(port).encode())
c, addr = srv.accept()
check(addr[0] == peer, f"accept names the peer ({addr})")
check(c.getsockname() == (local, port), "the accepted socket's name is the listener's address")
time.sleep(0.2)
n = struct.unpack("i", fcntl.ioctl(c.fileno(), termios.FIONREAD, struct.pack("i", 0)))[0]
check(n == 5, f"FIONREAD counts the queued bytes ({n})")
check(c.recv(100, socket.MSG_PEEK) == b"hello", "MSG_PEEK leaves the bytes queued")
check(c.recv(100) == b"hello", "recv takes them")
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
check(c.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1, "TCP_NODELAY reads back as set")
check(c.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16).rstrip(b"\0") == b"cubic", "TCP_CONGESTION names cubic")
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, b"bbr")
check(c.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16).rstrip(b"\0") == b"bbr",
      "TCP_CONGESTION takes bbr, which the library ships")
c.sendall(b"bye")
c.close()
answer = b""
while data := ctl.recv(100):
    answer += data
check(answer == b"bye", f"the peer got our answer ({answer!r})")
ctl.close()
srv.close()

finish()
