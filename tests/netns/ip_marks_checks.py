"""The marks that UTCP sockets ask of their IP headers, as seen on the wire (run under
libmultistack-preload.so with MULTISTACK_REQUIRE=1, in the server namespace). The kernel
peer (preload_ipv6.sh) echoes TCP on [PEER6]:9101 and PEER4:9101 and UDP on [PEER6]:9102;
frame_marks.py, in the peer's namespace, writes what every arriving frame carries to
FRAMES. Checked: IPV6_TCLASS and IP_TOS (before and after connect), a flow label leased
with IPV6_FLOWLABEL_MGR and asked for with IPV6_FLOWINFO_SEND at connect() and sendto(),
EINVAL for a label not leased, and IPV6_AUTOFLOWLABEL off.

Usage: ip_marks_checks.py PEER6 PEER4 FRAMES
"""
import errno
import socket
import struct
import sys
import time

from checks import check, finish

peer6, peer4, frames_path = sys.argv[1:4]
IPV6_FLOWLABEL_MGR, IPV6_FLOWINFO_SEND, IPV6_AUTOFLOWLABEL = 32, 33, 70
IPV6_FL_A_GET, IPV6_FL_S_EXCL, IPV6_FL_F_CREATE = 0, 1, 1
V6 = socket.IPPROTO_IPV6


def lease(s, label):
    """IPV6_FLOWLABEL_MGR: lease `label` toward the peer (struct in6_flowlabel_req)."""
    request = struct.pack("=16sIBBHHHI", socket.inet_pton(socket.AF_INET6, peer6), socket.htonl(label),
                          IPV6_FL_A_GET, IPV6_FL_S_EXCL, IPV6_FL_F_CREATE, 0, 0, 0)
    s.setsockopt(V6, IPV6_FLOWLABEL_MGR, request)


def marks_from(kind, port, since=0.0, wait=3.0, ecn_bits=False):
    """The (TOS or traffic class without ECN bits, flow label) pairs of the frames of `kind`
    ("tcp6", ...) that came from `port`; with ecn_bits, the class keeps them."""
    deadline = time.monotonic() + wait
    while True:
        seen = []
        with open(frames_path) as f:
            for line in f:
                fields = line.split()
                if len(fields) == 5 and fields[0] == kind and int(fields[1]) == port:
                    seen.append((int(fields[3]) & (0xFF if ecn_bits else 0xFC), int(fields[4])))
        if len(seen) > since or time.monotonic() > deadline:
            return seen
        time.sleep(0.05)


def echo(s, data=b"marked" * 100):
    s.sendall(data)
    got = b""
    while len(got) < len(data):
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    return got == data


def fails_with(code, call):
    try:
        call()
        return False
    except OSError as e:
        return e.errno == code


# A connection whose label was leased and asked for, with a traffic class set before connect.
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(V6, socket.IPV6_TCLASS, 0xB8)
lease(s, 0x12345)
s.setsockopt(V6, IPV6_FLOWINFO_SEND, 1)
s.connect((peer6, 9101, 0x12345, 0))
check(echo(s), "a connection with a leased flow label echoes")
port = s.getsockname()[1]
seen = marks_from("tcp6", port)
check(seen and set(seen) == {(0xB8, 0x12345)},
      f"every segment carries traffic class 0xb8 and the leased label 0x12345 ({sorted(set(seen))[:4]}, {len(seen)} frames)")
time.sleep(0.3)  # past a delayed ACK (40 ms) of the first echo
before = len(marks_from("tcp6", port))
s.setsockopt(V6, socket.IPV6_TCLASS, 0x48)
check(s.getsockopt(V6, socket.IPV6_TCLASS) == 0x48, "IPV6_TCLASS on the placed socket reads back")
check(echo(s), "the connection echoes after IPV6_TCLASS changed")
seen = marks_from("tcp6", port, since=before)
check(len(seen) > before and set(seen[before:]) == {(0x48, 0x12345)},
      f"segments after the change carry traffic class 0x48 ({sorted(set(seen[before:]))})")
check(fails_with(errno.EINVAL, lambda: s.setsockopt(V6, socket.IPV6_TCLASS, 256)), "IPV6_TCLASS 256 gives EINVAL")
s.close()

# A label that was never leased: EINVAL from connect(), as Linux.
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(V6, IPV6_FLOWINFO_SEND, 1)
check(fails_with(errno.EINVAL, lambda: s.connect((peer6, 9101, 0x54321, 0))), "connect() asking for a label not leased gives EINVAL")
s.close()

# Without IPV6_FLOWINFO_SEND, the flow info of connect() is ignored: the stack's own label.
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.connect((peer6, 9101, 0x54321, 0))
check(echo(s), "a connection without IPV6_FLOWINFO_SEND echoes")
seen = marks_from("tcp6", s.getsockname()[1])
labels = {label for _, label in seen}
check(len(labels) == 1 and 0 not in labels and 0x54321 not in labels,
      f"without IPV6_FLOWINFO_SEND a connection carries the stack's own label ({labels})")
s.close()

# IPV6_AUTOFLOWLABEL off: no label at all.
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(V6, IPV6_AUTOFLOWLABEL, 0)
s.connect((peer6, 9101))
check(s.getsockopt(V6, IPV6_AUTOFLOWLABEL) == 0, "IPV6_AUTOFLOWLABEL reads back 0")
check(echo(s), "a connection without automatic labels echoes")
seen = marks_from("tcp6", s.getsockname()[1])
check(seen and {label for _, label in seen} == {0}, f"IPV6_AUTOFLOWLABEL 0: no label ({len(seen)} frames)")
s.close()

# IPv4: IP_TOS set before connect marks every segment.
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, 0x28)
s.connect((peer4, 9101))
check(s.getsockopt(socket.IPPROTO_IP, socket.IP_TOS) == 0x28, "IP_TOS reads back on the placed socket")
check(echo(s), "an IPv4 connection with IP_TOS echoes")
seen = marks_from("tcp4", s.getsockname()[1])
check(seen and {tos for tos, _ in seen} == {0x28}, f"every IPv4 segment carries TOS 0x28 ({len(seen)} frames)")
s.close()

# UDP: a label leased before the first send (the kernel socket), another after it (the
# claim's proof), each asked for by sendto(); one not leased gives EINVAL.
u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
u.settimeout(5)
u.setsockopt(V6, socket.IPV6_TCLASS, 0x20)
lease(u, 0x23456)
u.setsockopt(V6, IPV6_FLOWINFO_SEND, 1)
u.sendto(b"first", (peer6, 9102, 0x23456, 0))
check(u.recvfrom(2048)[0] == b"first", "a UDP datagram with a leased label is echoed")
lease(u, 0x34567)
u.sendto(b"second", (peer6, 9102, 0x34567, 0))
check(u.recvfrom(2048)[0] == b"second", "a UDP datagram with a label leased once placed is echoed")
check(fails_with(errno.EINVAL, lambda: u.sendto(b"third", (peer6, 9102, 0x45678, 0))), "sendto() asking for a label not leased gives EINVAL")
seen = marks_from("udp6", u.getsockname()[1], since=1)
check(seen == [(0x20, 0x23456), (0x20, 0x34567)], f"each datagram carries its traffic class and asked label ({seen})")
# A datagram's ECN bits are the application's, as QUIC sets ECT(0) (RFC 9000 §13.4).
u.setsockopt(V6, socket.IPV6_TCLASS, 0x22)
u.sendto(b"ect", (peer6, 9102, 0x34567, 0))
check(u.recvfrom(2048)[0] == b"ect", "a UDP datagram marked ECT(0) is echoed")
seen = marks_from("udp6", u.getsockname()[1], since=2, ecn_bits=True)
check(seen[-1:] == [(0x22, 0x34567)], f"the datagram carries the application's ECN bits ({seen})")
u.close()

finish()
