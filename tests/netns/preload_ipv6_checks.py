"""AF_INET6 sockets on UTCP through libmultistack-preload.so (run under it, in the server
namespace, with MULTISTACK_REQUIRE=1 so that nothing falls back silently). The kernel
peer (preload_ipv6.sh) runs a TCP echo on [PEER6]:9101 and [PEER4]:9101, a UDP echo on
[PEER6]:9102, and connects to the port it reads on [PEER6]:9103 with IPv4 and IPv6.

Usage: preload_ipv6_checks.py LOCAL6 PEER6 LOCAL4 PEER4
"""
import os
import socket
import sys

from checks import check, finish

local6, peer6, local4, peer4 = sys.argv[1:5]


def echo_through(s, size):
    payload = os.urandom(size)
    s.sendall(payload)
    got = bytearray()
    while len(got) < size:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    return bytes(got) == payload


# An IPv6 client: names as sockaddr_in6, the echo byte-exact.
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.connect((peer6, 9101))
check(s.getpeername()[:2] == (peer6, 9101), f"IPv6 connect: getpeername names the peer ({s.getpeername()})")
check(s.getsockname()[0] == local6, f"IPv6 connect: getsockname names the interface's IPv6 address ({s.getsockname()})")
check(len(s.getsockname()) == 4, "IPv6 names are sockaddr_in6 (address, port, flow info, scope)")
check(s.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN) == socket.AF_INET6, "SO_DOMAIN is AF_INET6")
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, 0x28)
check(s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS) == 0x28, "IPV6_TCLASS reads back as set")
check(echo_through(s, 1 << 20), "IPv6 connect: 1 MiB echoed byte-exact")
s.close()

# An AF_INET6 socket toward an IPv4-mapped address reaches the IPv4 peer, named v4-mapped.
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.connect(("::ffff:" + peer4, 9101))
check(s.getpeername()[0] == "::ffff:" + peer4, f"v4-mapped connect: the peer is named v4-mapped ({s.getpeername()})")
check(s.getsockname()[0] == "::ffff:" + local4, f"v4-mapped connect: so is the local address ({s.getsockname()})")
check(echo_through(s, 100_000), "v4-mapped connect: the echo came back whole")
s.close()

# A dual-stack listener on :: takes IPv4 and IPv6 clients, named in sockaddr_in6.
srv = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
srv.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
srv.bind(("::", 0))
srv.listen(8)
port = srv.getsockname()[1]
check(srv.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 0, "the dual-stack listener reads IPV6_V6ONLY 0")
ctl = socket.create_connection((peer6, 9103), timeout=5)
ctl.sendall(str(port).encode())
seen = set()
for _ in range(2):
    c, addr = srv.accept()
    seen.add("v4" if addr[0].startswith("::ffff:") else "v6")
    check(addr[0] in (peer6, "::ffff:" + peer4), f"accept names the client ({addr[0]})")
    check(echo_through(c, 64 * 1024), f"the dual-stack listener echoes to its {'IPv4' if addr[0].startswith('::ffff:') else 'IPv6'} client")
    c.close()
check(seen == {"v4", "v6"}, f"one listener on :: served an IPv4 and an IPv6 client ({seen})")
ctl.close()
srv.close()

# IPV6_V6ONLY: the option reads back, and cannot change once bound (EINVAL, as Linux).
only = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
only.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
only.bind((local6, 0))
only.listen(4)
check(only.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1, "a v6-only listener reads IPV6_V6ONLY 1")
try:
    only.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    check(False, "IPV6_V6ONLY cannot change on a placed socket")
except OSError as e:
    check(e.errno == 22, f"IPV6_V6ONLY on a placed socket fails with EINVAL ({e})")
only.close()

# UDP over IPv6: an unbound socket's first sendto places it on UTCP; the source is named.
u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
u.settimeout(5)
ok_count = 0
for size in (1, 100, 1232):
    data = os.urandom(size)
    u.sendto(data, (peer6, 9102))
    got, source = u.recvfrom(2048)
    ok_count += got == data and source[:2] == (peer6, 9102)
check(ok_count == 3, f"UDP over IPv6: 3 datagrams echoed, the source named ({ok_count})")
check(u.getsockname()[0] == local6, f"the UDP socket was bound to the interface's IPv6 address ({u.getsockname()})")
try:
    u.sendto(b"x" * 1500, (peer6, 9102))
    check(False, "an IPv6 datagram over the MTU fails")
except OSError as e:
    check(e.errno == 90, f"an IPv6 datagram over the MTU fails with EMSGSIZE ({e})")
u.close()

# A v6-only socket does not reach IPv4 (v4-mapped): ENETUNREACH, as Linux.
only = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
only.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
only.bind((local6, 0))
try:
    only.sendto(b"x", ("::ffff:" + peer4, 9102))
    check(False, "a v6-only UDP socket's send to a v4-mapped address fails")
except OSError as e:
    check(e.errno == 101, f"a v6-only UDP socket's send to a v4-mapped address fails with ENETUNREACH ({e})")
only.close()

finish()
