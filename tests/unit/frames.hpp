// Test helper: well-formed frames of the test network, to be bent out of shape.
#pragma once

#include <vector>

#include "packet_builder.hpp"
#include "wire/checksum.hpp"
#include "wire/ethernet.hpp"
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
inline std::vector<std::uint8_t> ipv4_frame(pktgen::Proto proto, const char* src, std::uint16_t sport,
                                            const char* dst, std::uint16_t dport,
                                            wire::MacAddr src_mac = kNicMac, wire::MacAddr dst_mac = kPeerMac,
                                            std::uint16_t size = 60) {
    pktgen::PacketBuilder b({proto, src_mac, dst_mac, ip(src), ip(dst), sport, dport, size});
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

inline std::vector<std::uint8_t> ipv6_udp_frame(const char* src, std::uint16_t sport, const char* dst,
                                                std::uint16_t dport, wire::MacAddr src_mac = kNicMac) {
    std::vector<std::uint8_t> frame(14 + 40 + 8 + 4, 0);
    wire::EthernetRepr{kPeerMac, src_mac, wire::ethertype::ipv6}.emit(frame);
    wire::Ipv6Repr{ip(src), ip(dst), wire::ipproto::udp, 12, 64, 0, 0}.emit(wire::MutBytes(frame).subspan(14));
    wire::UdpRepr{sport, dport, 4}.emit(wire::MutBytes(frame).subspan(54));
    return frame;
}

}  // namespace ms::test
