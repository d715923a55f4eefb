#!/usr/bin/env python3
"""A stand-in for systemd's notify socket and file-descriptor store, for the netns tests
(systemd is not PID 1 where they run). It runs one Type=notify service and, as the
service manager does: sets NOTIFY_SOCKET; waits for READY=1; keeps the descriptors the
service stores (FDSTORE=1 with FDNAME=; FDSTOREREMOVE=1 takes them out); and passes what
it keeps to the next start as descriptors 3 on, with LISTEN_FDS, LISTEN_FDNAMES and
LISTEN_PID, in an order of its own (reversed, so that a service relying on the order
fails here). Commands, one per line on stdin:
  restart  send the KillSignal, wait for the service to exit, start it again
  stop     send the KillSignal, wait for the exit, and empty the store (closing it all)
(or in COMMANDS, a FIFO, when given: a background job's stdin is /dev/null). It prints
"ready PID, keeping N descriptors" after each start (READY=1 seen; the service may have
taken some out of the store), "stored N" after each exit, and "stopped" after stop. At the end of the commands, and on SIGTERM, it stops the
service with SIGTERM.

Usage: fd_store.py [--commands COMMANDS] KILL_SIGNAL CMD [ARG...]     (KILL_SIGNAL: USR2, TERM, ...)
"""
import os
import select
import signal
import socket
import sys
import tempfile
import time

args = sys.argv[1:]
commands = sys.stdin
if args[0] == "--commands":
    commands = open(args[1])  # a FIFO: waits for its writer
    args = args[2:]
kill_signal = getattr(signal, "SIG" + args[0])
command = args[1:]
directory = tempfile.mkdtemp(prefix="fd-store-")
notify_path = os.path.join(directory, "notify")
notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
notify.bind(notify_path)
store = {}  # name -> [fd, ...]
service = None


def say(line):
    print(line, flush=True)


def handle_message():
    """Reads one notification; returns True if it was READY=1."""
    message, fds, _, _ = socket.recv_fds(notify, 65536, 253)
    fields = dict(line.split("=", 1) for line in message.decode().splitlines() if "=" in line)
    name = fields.get("FDNAME", "stored")
    if fields.get("FDSTORE") == "1":
        store.setdefault(name, []).extend(fds)
        fds = []
    if fields.get("FDSTOREREMOVE") == "1":
        for fd in store.pop(name, []):
            os.close(fd)
    for fd in fds:
        os.close(fd)
    return fields.get("READY") == "1"


def start():
    global service
    passed = [(name, fd) for name, fds in store.items() for fd in fds][::-1]
    pid = os.fork()
    if pid == 0:
        high = [os.dup(fd) for _, fd in passed]  # out of the way of 3, 4, ...
        for i, fd in enumerate(high):
            os.dup2(fd, 3 + i)  # dup2 clears close-on-exec
        env = dict(os.environ, NOTIFY_SOCKET=notify_path)
        if passed:
            env.update(LISTEN_FDS=str(len(passed)), LISTEN_PID=str(os.getpid()),
                       LISTEN_FDNAMES=":".join(name for name, _ in passed))
        os.closerange(3 + len(passed), 65536)
        os.execve(command[0], command, env)
    service = pid
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if select.select([notify], [], [], 0.1)[0] and handle_message():
            say(f"ready {pid}, keeping {sum(len(fds) for fds in store.values())} descriptors")
            return
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            service = None
            say("exited before READY=1")
            return
    say("no READY=1")


def wait_for_exit(sig):
    global service
    if service is None:
        return
    os.kill(service, sig)
    while os.waitpid(service, os.WNOHANG)[0] != service:
        if select.select([notify], [], [], 0.05)[0]:
            handle_message()
    while select.select([notify], [], [], 0)[0]:  # what it sent just before it exited
        handle_message()
    service = None
    say(f"stored {sum(len(fds) for fds in store.values())}")


def stop(sig):
    wait_for_exit(sig)
    for fds in store.values():
        for fd in fds:
            os.close(fd)
    store.clear()
    say("stopped")


signal.signal(signal.SIGTERM, lambda *_: (stop(signal.SIGTERM), sys.exit(0)))
start()
for line in commands:
    if line.strip() == "restart":
        wait_for_exit(kill_signal)
        start()
    elif line.strip() == "stop":
        stop(kill_signal)
stop(signal.SIGTERM)
