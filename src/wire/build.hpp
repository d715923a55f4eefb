// Contract: writes one IPv4 frame, for stacks and tests that build their own: the
// Ethernet header, the IPv4 header with its checksum, then the transport segment that
// the caller writes, whose TCP or UDP checksum (pseudo-header included) is filled in
// last. Returns the frame's length, or 0 if `out` is too small.
#pragma once

#include "wire/checksum.hpp"
#include "wire/ethernet.hpp"
#include "wire/ip.hpp"

namespace ms::wire {

template <class WriteL4>
std::size_t emit_ipv4_frame(MutBytes out, const EthernetRepr& eth, Ipv4Repr ip, std::size_t l4_len,
                            const WriteL4& write_l4) {
    const std::size_t l3 = eth.header_len();
    const std::size_t l4 = l3 + Ipv4Repr::header_len();
    if (out.size() < l4 + l4_len) return 0;
    eth.emit(out);
    ip.payload_len = static_cast<std::uint16_t>(l4_len);
    ip.emit(out.subspan(l3));
    const MutBytes segment = out.subspan(l4, l4_len);
    write_l4(segment);
    const std::size_t checksum_at = ip.protocol == ipproto::tcp ? 16 : 6;
    store_be16(segment.data() + checksum_at, 0);
    store_be16(segment.data() + checksum_at, transport_checksum(ip.src, ip.dst, ip.protocol, segment));
    return l4 + l4_len;
}

// The headers of a TCP super-segment (ring/abi.hpp): the Ethernet header, the IPv4
// header whose length counts `l4_len` bytes of TCP header and payload, and the TCP header
// that the caller writes (write_tcp gets exactly `tcp_header_len` bytes), whose checksum
// field gets the pseudo-header sum only, as Linux's CHECKSUM_PARTIAL has it: whoever cuts
// the segment completes each piece's checksum. The payload follows in slots the caller
// fills. Returns the headers' length, or 0 if `out` is too small.
template <class WriteTcp>
std::size_t emit_ipv4_tcp_super_header(MutBytes out, const EthernetRepr& eth, Ipv4Repr ip, std::size_t tcp_header_len,
                                       std::size_t l4_len, const WriteTcp& write_tcp) {
    const std::size_t l3 = eth.header_len();
    const std::size_t l4 = l3 + Ipv4Repr::header_len();
    if (out.size() < l4 + tcp_header_len) return 0;
    eth.emit(out);
    ip.payload_len = static_cast<std::uint16_t>(l4_len);
    ip.emit(out.subspan(l3));
    write_tcp(out.subspan(l4, tcp_header_len));
    const std::uint32_t pseudo = pseudo_header_sum(ip.src, ip.dst, ipproto::tcp, static_cast<std::uint32_t>(l4_len));
    store_be16(out.data() + l4 + 16, ones_sum({}, pseudo));
    return l4 + tcp_header_len;
}

}  // namespace ms::wire
