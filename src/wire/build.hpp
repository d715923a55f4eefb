// Contract: writes one IPv4 or IPv6 frame, for stacks and tests that build their own:
// the Ethernet header, the IP header (IPv4's with its checksum), then the transport
// segment that the caller writes, whose TCP or UDP checksum (pseudo-header included) is
// filled in last. Returns the frame's length, or 0 if `out` is too small.
#pragma once

#include "wire/checksum.hpp"
#include "wire/ethernet.hpp"
#include "wire/ip.hpp"

namespace ms::wire {

namespace detail {
inline std::uint8_t protocol_of(const Ipv4Repr& ip) { return ip.protocol; }
inline std::uint8_t protocol_of(const Ipv6Repr& ip) { return ip.next_header; }
inline std::uint16_t ethertype_of(const Ipv4Repr&) { return ethertype::ipv4; }
inline std::uint16_t ethertype_of(const Ipv6Repr&) { return ethertype::ipv6; }
}  // namespace detail

// One frame: Ethernet, the IP header (`IpRepr`: Ipv4Repr or Ipv6Repr), the transport
// segment `write_l4` writes, and its TCP or UDP checksum.
template <class IpRepr, class WriteL4>
std::size_t emit_ip_frame(MutBytes out, const EthernetRepr& eth, IpRepr ip, std::size_t l4_len, const WriteL4& write_l4) {
    const std::size_t l3 = eth.header_len();
    const std::size_t l4 = l3 + IpRepr::header_len();
    if (out.size() < l4 + l4_len) return 0;
    eth.emit(out);
    ip.payload_len = static_cast<std::uint16_t>(l4_len);
    ip.emit(out.subspan(l3));
    const MutBytes segment = out.subspan(l4, l4_len);
    write_l4(segment);
    const std::uint8_t protocol = detail::protocol_of(ip);
    const std::size_t checksum_at = protocol == ipproto::tcp ? 16 : 6;
    store_be16(segment.data() + checksum_at, 0);
    store_be16(segment.data() + checksum_at, transport_checksum(ip.src, ip.dst, protocol, segment));
    return l4 + l4_len;
}

template <class WriteL4>
std::size_t emit_ipv4_frame(MutBytes out, const EthernetRepr& eth, Ipv4Repr ip, std::size_t l4_len, const WriteL4& write_l4) {
    return emit_ip_frame(out, eth, ip, l4_len, write_l4);
}

// The headers of a TCP super-segment (ring/abi.hpp): the Ethernet header, the IP header
// (IPv4 or IPv6) whose length counts `l4_len` bytes of TCP header and payload, and the
// TCP header that the caller writes (write_tcp gets exactly `tcp_header_len` bytes),
// whose checksum field gets the pseudo-header sum only, as Linux's CHECKSUM_PARTIAL has
// it: whoever cuts the segment completes each piece's checksum. The payload follows in
// slots the caller fills. Returns the headers' length, or 0 if `out` is too small.
template <class IpRepr, class WriteTcp>
std::size_t emit_tcp_super_header(MutBytes out, const EthernetRepr& eth, IpRepr ip, std::size_t tcp_header_len,
                                  std::size_t l4_len, const WriteTcp& write_tcp) {
    const std::size_t l3 = eth.header_len();
    const std::size_t l4 = l3 + IpRepr::header_len();
    if (out.size() < l4 + tcp_header_len) return 0;
    eth.emit(out);
    ip.payload_len = static_cast<std::uint16_t>(l4_len);
    ip.emit(out.subspan(l3));
    write_tcp(out.subspan(l4, tcp_header_len));
    const std::uint32_t pseudo = pseudo_header_sum(ip.src, ip.dst, ipproto::tcp, static_cast<std::uint32_t>(l4_len));
    store_be16(out.data() + l4 + 16, ones_sum({}, pseudo));
    return l4 + tcp_header_len;
}

template <class WriteTcp>
std::size_t emit_ipv4_tcp_super_header(MutBytes out, const EthernetRepr& eth, Ipv4Repr ip, std::size_t tcp_header_len,
                                       std::size_t l4_len, const WriteTcp& write_tcp) {
    return emit_tcp_super_header(out, eth, ip, tcp_header_len, l4_len, write_tcp);
}

}  // namespace ms::wire
