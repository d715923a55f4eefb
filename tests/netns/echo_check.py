"""Echo check: COUNT connections at once to HOST:PORT each send SIZE random bytes while
reading the echo, then check it byte-exact (SHA-256). Exits non-zero naming each failure.

Usage: echo_check.py HOST PORT SIZE [COUNT]"""
import hashlib, os, socket, sys, threading
host, port, size, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else 1
errors = []

def one(i):
    try:
        data = os.urandom(size)
        s = socket.create_connection((host, port), timeout=30)
        def push():
            view = memoryview(data)
            while view:
                view = view[s.send(view[:65536]):]
            s.shutdown(socket.SHUT_WR)
        sender = threading.Thread(target=push)
        sender.start()
        digest, got = hashlib.sha256(), 0
        while chunk := s.recv(1 << 20):
            digest.update(chunk)
            got += len(chunk)
        sender.join()
        if got != size or digest.digest() != hashlib.sha256(data).digest():
            errors.append(f"connection {i}: {got} of {size} bytes came back, or other bytes")
    except Exception as e:
        errors.append(f"connection {i}: {e!r}")

threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
for t in threads: t.start()
for t in threads: t.join()
if errors:
    sys.exit("\n".join(errors))
print(f"{count} connections of {size} bytes echoed byte-exact")
