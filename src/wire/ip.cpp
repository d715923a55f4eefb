#include "wire/ip.hpp"

#include "wire/checksum.hpp"

namespace ms::wire {

base::Result<Ipv4View, ParseError> Ipv4View::parse(Bytes packet) {
    if (packet.size() < kIpv4MinHeaderLen) return ParseError::truncated;
    if ((packet[0] >> 4) != 4) return ParseError::bad_version;
    const std::size_t ihl = std::size_t{packet[0] & 0x0fu} * 4;
    if (ihl < kIpv4MinHeaderLen || ihl > packet.size()) return ParseError::bad_header_length;
    const std::size_t total = load_be16(packet.data() + 2);
    if (total < ihl || total > packet.size()) return ParseError::bad_total_length;
    return Ipv4View(packet.first(total));
}

bool Ipv4View::checksum_ok() const { return ones_sum(header()) == 0xffff; }

void Ipv4Repr::emit(MutBytes out) const {
    std::uint8_t* p = out.data();
    p[0] = 0x45;
    p[1] = dscp_ecn;
    store_be16(p + 2, static_cast<std::uint16_t>(header_len() + payload_len));
    store_be16(p + 4, ident);
    store_be16(p + 6, dont_fragment ? 0x4000 : 0);
    p[8] = ttl;
    p[9] = protocol;
    store_be16(p + 10, 0);
    std::memcpy(p + 12, src.bytes.data(), 4);
    std::memcpy(p + 16, dst.bytes.data(), 4);
    store_be16(p + 10, internet_checksum(out.first(header_len())));
}

namespace {

bool is_extension_header(std::uint8_t next) {
    return next == ipproto::hop_by_hop || next == ipproto::routing || next == ipproto::fragment ||
           next == ipproto::dest_options || next == ipproto::auth;
}

// Length of one extension header: RFC 8200 §4.3-4.6 count 8-octet units beyond the
// first; AH (RFC 4302 §2.2) counts 4-octet units minus two; fragment is fixed at 8.
std::size_t extension_length(std::uint8_t type, const std::uint8_t* h) {
    if (type == ipproto::fragment) return 8;
    if (type == ipproto::auth) return (std::size_t{h[1]} + 2) * 4;
    return (std::size_t{h[1]} + 1) * 8;
}

}  // namespace

base::Result<Ipv6Upper, ParseError> walk_ipv6_extensions(Bytes packet) {
    if (packet.size() < kIpv6HeaderLen) return ParseError::truncated;
    Ipv6Upper u;
    std::uint8_t next = packet[6];
    std::size_t at = kIpv6HeaderLen;
    while (is_extension_header(next)) {
        if (at + 8 > packet.size()) return ParseError::bad_extension;
        const std::uint8_t* h = packet.data() + at;
        const std::size_t len = extension_length(next, h);
        if (at + len > packet.size()) return ParseError::bad_extension;
        if (next == ipproto::fragment) {
            u.fragment = true;
            u.first_fragment = (load_be16(h + 2) & 0xfff8) == 0;
        }
        next = h[0];
        at += len;
    }
    u.protocol = next;
    u.offset = at;
    return u;
}

base::Result<Ipv6View, ParseError> Ipv6View::parse(Bytes packet) {
    if (packet.size() < kIpv6HeaderLen) return ParseError::truncated;
    if ((packet[0] >> 4) != 6) return ParseError::bad_version;
    const std::size_t total = kIpv6HeaderLen + load_be16(packet.data() + 4);
    if (total > packet.size()) return ParseError::bad_total_length;
    const auto upper = walk_ipv6_extensions(packet.first(total));
    if (!upper) return upper.error();
    Ipv6View v;
    v.p_ = packet.first(total);
    v.upper_protocol_ = upper->protocol;
    v.upper_offset_ = upper->offset;
    v.fragment_ = upper->fragment;
    v.first_fragment_ = upper->first_fragment;
    return v;
}

void Ipv6Repr::emit(MutBytes out) const {
    std::uint8_t* p = out.data();
    store_be32(p, (6u << 28) | (std::uint32_t{traffic_class} << 20) | (flow_label & 0xfffff));
    store_be16(p + 4, payload_len);
    p[6] = next_header;
    p[7] = hop_limit;
    std::memcpy(p + 8, src.bytes.data(), 16);
    std::memcpy(p + 24, dst.bytes.data(), 16);
}

}  // namespace ms::wire
