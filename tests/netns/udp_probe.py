"""UDP echo probe: for SECONDS, sends a numbered datagram of 64 bytes to HOST:PORT every
millisecond and checks each echo byte-exact; a datagram not echoed within 20 ms is sent
again, until every one has come back (or 15 s after the end). Prints JSON: datagrams
sent and echoed, wrong echoes, and the longest silence (ms) between two echoes, which
is how long the path was out.

Usage: udp_probe.py HOST PORT SECONDS"""
import json, os, select, socket, sys, time

host, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setblocking(False)
payloads, outstanding = {}, {}  # seq -> bytes; seq -> last send time
echoed, wrong, resent, longest, last_echo = 0, 0, 0, 0.0, None
start = time.monotonic()
next_send, seq = start, 0


def send(n, now):
    global resent
    try:
        s.sendto(payloads[n], (host, port))
    except BlockingIOError:
        pass
    if n in outstanding:
        resent += 1
    outstanding[n] = now


while True:
    now = time.monotonic()
    sending = now - start < seconds
    if not sending and (not outstanding or now - start > seconds + 15):
        break
    if sending and now >= next_send:
        payloads[seq] = seq.to_bytes(8, "big") + os.urandom(56)
        send(seq, now)
        seq += 1
        next_send += 0.001
    for n, sent_at in list(outstanding.items()):
        if now - sent_at > 0.02:
            send(n, now)
    ready, _, _ = select.select([s], [], [], 0.0005)
    while ready:
        try:
            data = s.recv(2048)
        except BlockingIOError:
            break
        n = int.from_bytes(data[:8], "big")
        if n not in payloads or data != payloads[n]:
            wrong += 1
            continue
        if n in outstanding:
            del outstanding[n]
            echoed += 1
        now = time.monotonic()
        if last_echo is not None:
            longest = max(longest, now - last_echo)
        last_echo = now

print(json.dumps({"sent": seq, "echoed": echoed, "wrong": wrong, "resent": resent, "lost": len(outstanding),
                  "longest_silence_ms": round(longest * 1000, 1)}))
sys.exit(0 if echoed == seq and wrong == 0 else 1)
