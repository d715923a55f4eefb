// Frames captured with tcpdump on a veth pair between two test namespaces
// (198.18.0.1 / 2001:2::1 and 198.18.0.2 / 2001:2::2), transmit checksum offload off,
// so that every checksum is complete (tcpdump -vv: "correct", "sum ok").
#pragma once

namespace ms::test::capture {

inline constexpr const char* arp_request =
    "ffffffffffff2ab4384f608e080600010800060400012ab4384f608ec6120001000000000000c6120002";
// 198.18.0.1.33298 > 198.18.0.2.8080 SYN seq 1665150855 win 64240,
// options [mss 1460, sackOK, TS val 822420083 ecr 0, nop, wscale 10]
inline constexpr const char* tcp_syn =
    "deb55667aee42ab4384f608e08004500003cd77040004006d723c6120001c612000282121f9063402f8700000000"
    "a002faf039020000020405b40402080a31052273000000000103030a";
// The same connection's first data segment: PSH|ACK, "hello", TS val 822420083 ecr 3158797420.
inline constexpr const char* tcp_data =
    "deb55667aee42ab4384f608e080045000039d77240004006d724c6120001c612000282121f9063402f88f5233b3d"
    "8018003fc57e00000101080a31052273bc476c6c68656c6c6f";
// 198.18.0.1.36523 > 198.18.0.2.7 UDP "multistack"
inline constexpr const char* udp =
    "deb55667aee42ab4384f608e080045000026e1aa40004011ccf4c6120001c61200028eab00070012c9c56d756c74"
    "69737461636b";
// 198.18.0.2 > 198.18.0.1 ICMP port unreachable quoting the datagram above.
inline constexpr const char* icmp_unreachable =
    "2ab4384f608edeb55667aee4080045c00042334d00004001ba86c6120002c6120001030389480000000045000026"
    "e1aa40004011ccf4c6120001c61200028eab00070012c9c56d756c7469737461636b";
// 198.18.0.1 > 198.18.0.2 ICMP echo request, id 8449, seq 1.
inline constexpr const char* icmp_echo =
    "deb55667aee42ab4384f608e08004500002c9225400040011c84c6120001c61200020800484e2101000101b2076b"
    "000000007a920b0000000000";
// 2001:2::1.42851 > 2001:2::2.7 UDP "v6 datagram", flow label 0xd163b
inline constexpr const char* ipv6_udp =
    "deb55667aee42ab4384f608e86dd600d163b00131140200100020000000000000000000000012001000200000000"
    "0000000000000002a76300070013df7c763620646174616772616d";
// :: > ff02::16 MLDv2 report behind a hop-by-hop options header (router alert).
inline constexpr const char* ipv6_hop_by_hop =
    "3333000000162ab4384f608e86dd600000000038000100000000000000000000000000000000ff02000000000000"
    "00000000000000163a000502000001008f000c920000000204000000ff0200000000000000000001ff4f608e0400"
    "0000ff0200000000000000000001ff000001";

}  // namespace ms::test::capture
