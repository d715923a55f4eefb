// Test helper: well-formed frames of the test network, to be bent out of shape.
#pragma once

#include <vector>

#include "pktgen/packet_builder.hpp"
#include "wire/build.hpp"
#include "wire/checksum.hpp"
#include "wire/ethernet.hpp"
#include "wire/icmp.hpp"
#include "wire/ip.hpp"
#include "wire/transport.hpp"

namespace ms::test {

inline const wire::MacAddr kNicMac{{0x02, 0, 0, 0, 0, 0x01}};
inline const wire::MacAddr kPeerMac{{0x02, 0, 0, 0, 0, 0x02}};

inline wire::IpAddr ip(const char* text) {
    wire::IpAddr a;
    if (!wire::parse_ip(text, a)) throw std::invalid_argument(text);
    return a;
}

// An IPv4 frame of `proto` from (src, sport) to (dst, dport), sent by `src_mac`.
inline std::vector<std::uint8_t> ipv4_frame(pktgen::Proto proto, const char* src, std::uint16_t sport, const char* dst,
                                            std::uint16_t dport, wire::MacAddr src_mac = kNicMac,
                                            wire::MacAddr dst_mac = kPeerMac, std::uint16_t size = 60) {
    const auto b = pktgen::PacketBuilder::create({proto, src_mac, dst_mac, ip(src), ip(dst), sport, dport, size}).value();
    std::vector<std::uint8_t> frame(b.size());
    b.build(frame, 0);
    return frame;
}

// Recomputes the IPv4 header checksum after a test edits the header.
inline void fix_ipv4_checksum(std::vector<std::uint8_t>& frame) {
    const std::size_t ihl = std::size_t{frame[14] & 0x0fu} * 4;
    wire::store_be16(&frame[24], 0);
    wire::store_be16(&frame[24], wire::internet_checksum(wire::Bytes(frame).subspan(14, ihl)));
}

inline std::vector<std::uint8_t> ipv6_udp_frame(const char* src, std::uint16_t sport, const char* dst, std::uint16_t dport,
                                                wire::MacAddr src_mac = kNicMac) {
    std::vector<std::uint8_t> frame(14 + 40 + 8 + 4, 0);
    wire::EthernetRepr{kPeerMac, src_mac, wire::ethertype::ipv6}.emit(frame);
    wire::Ipv6Repr{ip(src), ip(dst), wire::ipproto::udp, 12, 64, 0, 0}.emit(wire::MutBytes(frame).subspan(14));
    wire::UdpRepr{sport, dport, 4}.emit(wire::MutBytes(frame).subspan(54));
    return frame;
}

// A TCP super-segment from (src, sport) to (dst, dport) as UTCP writes one: headers
// (with 12 bytes of options), then `payload` bytes counting up from `first_byte`; the IP
// length counts them all and the TCP checksum holds the pseudo-header sum only.
inline std::vector<std::uint8_t> ipv4_super_segment(const char* src, std::uint16_t sport, const char* dst,
                                                    std::uint16_t dport, std::size_t payload,
                                                    std::uint8_t flags = wire::tcpflag::ack | wire::tcpflag::psh,
                                                    std::uint8_t first_byte = 0) {
    wire::TcpRepr tcp{.src_port = sport, .dst_port = dport, .seq = 1000, .ack = 77, .flags = flags, .window = 512};
    tcp.options.timestamps = wire::Timestamps{1, 2};
    std::vector<std::uint8_t> frame(14 + 20 + tcp.header_len());
    const std::size_t headers = wire::emit_ipv4_tcp_super_header(
        frame, {kPeerMac, kNicMac, wire::ethertype::ipv4},
        {.src = ip(src), .dst = ip(dst), .protocol = wire::ipproto::tcp, .ident = 100}, tcp.header_len(),
        tcp.header_len() + payload, [&](wire::MutBytes l4) { tcp.emit(l4); });
    frame.resize(headers);
    for (std::size_t i = 0; i < payload; ++i) frame.push_back(static_cast<std::uint8_t>(first_byte + i));
    return frame;
}

// An ICMP (or ICMPv6) error from `router` about `quoted`, a frame one of ours sent: its
// IP header and the first 8 bytes of its transport header, addressed to its source.
inline std::vector<std::uint8_t> icmp_error_frame(const std::vector<std::uint8_t>& quoted, wire::IcmpErrorRepr error,
                                                  const char* router, wire::MacAddr dst_mac = kNicMac) {
    const bool v6 = wire::load_be16(&quoted[12]) == wire::ethertype::ipv6;
    const std::size_t l3_len = v6 ? wire::kIpv6HeaderLen : std::size_t{quoted[14] & 0x0fu} * 4;
    const wire::Bytes quote = wire::Bytes(quoted).subspan(14, l3_len + 8);
    const wire::IpAddr to = v6 ? wire::IpAddr::load_v6(&quoted[14 + 8]) : wire::IpAddr::load_v4(&quoted[14 + 12]);
    const auto message_len = static_cast<std::uint16_t>(error.len(quote));
    std::vector<std::uint8_t> frame(14 + l3_len + message_len);
    const wire::MutBytes l3 = wire::MutBytes(frame).subspan(14);
    if (v6) {
        wire::EthernetRepr{dst_mac, kPeerMac, wire::ethertype::ipv6}.emit(frame);
        wire::Ipv6Repr{ip(router), to, wire::ipproto::icmpv6, message_len, 64, 0, 0}.emit(l3);
        error.emit_v6(l3.subspan(wire::kIpv6HeaderLen), quote, ip(router), to);
    } else {
        wire::EthernetRepr{dst_mac, kPeerMac, wire::ethertype::ipv4}.emit(frame);
        wire::Ipv4Repr ip4{.src = ip(router), .dst = to, .protocol = wire::ipproto::icmp, .payload_len = message_len};
        ip4.emit(l3);
        error.emit_v4(l3.subspan(wire::kIpv4MinHeaderLen), quote);
    }
    return frame;
}

}  // namespace ms::test
