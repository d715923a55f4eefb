"""Prints, one line per frame, what the IP headers of TCP and UDP frames arriving on an
interface carry: "tcp4|udp4|tcp6|udp6 SRC_PORT DST_PORT TOS_OR_TCLASS FLOW_LABEL" (the label
is 0 for IPv4). Runs in a namespace until killed; prints "sniffing" once it listens.

Usage: frame_marks.py IFACE
"""
import socket
import struct
import sys

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def marks(frame):
    ethertype = struct.unpack_from("!H", frame, 12)[0]
    ip = frame[14:]
    if ethertype == 0x0800 and len(ip) >= 20:
        header_len = (ip[0] & 0x0F) * 4
        proto, tos, label, l4 = ip[9], ip[1], 0, ip[header_len:]
        family = "4"
    elif ethertype == 0x86DD and len(ip) >= 40:
        first = struct.unpack_from("!I", ip, 0)[0]
        proto, tos, label, l4 = ip[6], (first >> 20) & 0xFF, first & 0xFFFFF, ip[40:]
        family = "6"
    else:
        return None
    if proto not in (6, 17) or len(l4) < 4:
        return None
    src, dst = struct.unpack_from("!HH", l4, 0)
    return f"{'tcp' if proto == 6 else 'udp'}{family} {src} {dst} {tos} {label}"


def main():
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((sys.argv[1], 0))
    print("sniffing", flush=True)
    while True:
        frame, address = s.recvfrom(65536)
        if address[2] == PACKET_OUTGOING:
            continue
        line = marks(frame)
        if line:
            print(line, flush=True)


main()
