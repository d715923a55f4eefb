#include "wire/icmp.hpp"

#include <cstring>
#include <optional>

#include "wire/checksum.hpp"
#include "wire/ip.hpp"

namespace ms::wire {
namespace {

constexpr std::size_t kQuotedTransportBytes = 8;  // RFC 792: ports, and TCP's sequence number

// The quoted packet's transport header, `l4` bytes into `packet`.
base::Result<QuotedPacket, ParseError> quoted_ports(QuotedPacket q, Bytes packet, std::size_t l4) {
    if (q.protocol != ipproto::tcp && q.protocol != ipproto::udp) return ParseError::unsupported;
    if (l4 + kQuotedTransportBytes > packet.size()) return ParseError::truncated;
    const std::uint8_t* t = packet.data() + l4;
    q.src_port = load_be16(t);
    q.dst_port = load_be16(t + 2);
    if (q.protocol == ipproto::tcp) q.tcp_seq = load_be32(t + 4);
    return q;
}

base::Result<QuotedPacket, ParseError> quoted_ipv4(Bytes packet) {
    if (packet.size() < kIpv4MinHeaderLen) return ParseError::truncated;
    if ((packet[0] >> 4) != 4) return ParseError::bad_version;
    const std::size_t ihl = std::size_t{packet[0] & 0x0fu} * 4;
    if (ihl < kIpv4MinHeaderLen || ihl > packet.size()) return ParseError::bad_header_length;
    if ((load_be16(packet.data() + 6) & 0x1fff) != 0) return ParseError::unsupported;  // a later fragment: no ports
    QuotedPacket q;
    q.src = IpAddr::load_v4(packet.data() + 12);
    q.dst = IpAddr::load_v4(packet.data() + 16);
    q.protocol = packet[9];
    return quoted_ports(q, packet, ihl);
}

base::Result<QuotedPacket, ParseError> quoted_ipv6(Bytes packet) {
    if (packet.size() < kIpv6HeaderLen) return ParseError::truncated;
    if ((packet[0] >> 4) != 6) return ParseError::bad_version;
    const auto upper = walk_ipv6_extensions(packet);
    if (!upper) return upper.error();
    if (upper->fragment && !upper->first_fragment) return ParseError::unsupported;
    QuotedPacket q;
    q.src = IpAddr::load_v6(packet.data() + 8);
    q.dst = IpAddr::load_v6(packet.data() + 24);
    q.protocol = upper->protocol;
    return quoted_ports(q, packet, upper->offset);
}

std::optional<IcmpErrorKind> ipv4_kind(std::uint8_t type, std::uint8_t code) {
    switch (type) {
        case icmp::time_exceeded: return IcmpErrorKind::time_exceeded;
        case icmp::parameter_problem: return IcmpErrorKind::parameter_problem;
        case icmp::dest_unreachable: break;
        default: return std::nullopt;
    }
    switch (code) {
        case icmp::net_unreachable:
        case 6:   // destination network unknown
        case 11:  // network unreachable for the type of service
            return IcmpErrorKind::net_unreachable;
        case icmp::host_unreachable:
        case 7:   // destination host unknown
        case 12:  // host unreachable for the type of service
            return IcmpErrorKind::host_unreachable;
        case icmp::protocol_unreachable: return IcmpErrorKind::protocol_unreachable;
        case icmp::port_unreachable: return IcmpErrorKind::port_unreachable;
        case icmp::fragmentation_needed: return IcmpErrorKind::packet_too_big;
        default: return IcmpErrorKind::prohibited;  // 5, 8-10, 13-15: refused on the way
    }
}

std::optional<IcmpErrorKind> ipv6_kind(std::uint8_t type, std::uint8_t code) {
    switch (type) {
        case icmpv6::packet_too_big: return IcmpErrorKind::packet_too_big;
        case icmpv6::time_exceeded: return IcmpErrorKind::time_exceeded;
        case icmpv6::parameter_problem: return IcmpErrorKind::parameter_problem;
        case icmpv6::dest_unreachable: break;
        default: return std::nullopt;
    }
    switch (code) {
        case icmpv6::no_route: return IcmpErrorKind::net_unreachable;
        case icmpv6::address_unreachable: return IcmpErrorKind::host_unreachable;
        case icmpv6::port_unreachable: return IcmpErrorKind::port_unreachable;
        default: return IcmpErrorKind::prohibited;  // 1, 2, 5-7: policy, scope, route
    }
}

template <class Kind, class Quoted>
base::Result<IcmpError, ParseError> parse_error(Bytes message, Kind kind_of, Quoted quoted_of) {
    if (message.size() < kIcmpHeaderLen) return ParseError::truncated;
    const auto kind = kind_of(message[0], message[1]);
    if (!kind) return ParseError::unsupported;
    const auto quoted = quoted_of(message.subspan(kIcmpHeaderLen));
    if (!quoted) return quoted.error();
    IcmpError e{.kind = *kind, .type = message[0], .code = message[1], .mtu = 0, .quoted = *quoted};
    if (*kind == IcmpErrorKind::packet_too_big) e.mtu = load_be32(message.data() + 4);
    return e;
}

}  // namespace

base::Result<IcmpV4View, ParseError> IcmpV4View::parse(Bytes message) {
    if (message.size() < kIcmpHeaderLen) return ParseError::truncated;
    return IcmpV4View(message);
}

bool IcmpV4View::checksum_ok() const { return ones_sum(p_) == 0xffff; }

void IcmpV4Repr::emit(MutBytes out, std::size_t payload_len) const {
    std::uint8_t* p = out.data();
    p[0] = type;
    p[1] = code;
    store_be16(p + 2, 0);
    store_be16(p + 4, ident);
    store_be16(p + 6, sequence);
    store_be16(p + 2, internet_checksum(out.first(kIcmpHeaderLen + payload_len)));
}

const char* to_string(IcmpErrorKind k) {
    switch (k) {
        case IcmpErrorKind::net_unreachable: return "net_unreachable";
        case IcmpErrorKind::host_unreachable: return "host_unreachable";
        case IcmpErrorKind::protocol_unreachable: return "protocol_unreachable";
        case IcmpErrorKind::port_unreachable: return "port_unreachable";
        case IcmpErrorKind::prohibited: return "prohibited";
        case IcmpErrorKind::packet_too_big: return "packet_too_big";
        case IcmpErrorKind::time_exceeded: return "time_exceeded";
        case IcmpErrorKind::parameter_problem: return "parameter_problem";
    }
    return "unknown";
}

namespace {
void emit_error_header(MutBytes out, const IcmpErrorRepr& r, Bytes quoted) {
    out[0] = r.type;
    out[1] = r.code;
    store_be16(out.data() + 2, 0);
    store_be32(out.data() + 4, r.mtu);
    std::memcpy(out.data() + kIcmpHeaderLen, quoted.data(), quoted.size());
}
}  // namespace

void IcmpErrorRepr::emit_v4(MutBytes out, Bytes quoted) const {
    emit_error_header(out, *this, quoted);
    store_be16(out.data() + 2, internet_checksum(out.first(len(quoted))));
}

void IcmpErrorRepr::emit_v6(MutBytes out, Bytes quoted, const IpAddr& src, const IpAddr& dst) const {
    emit_error_header(out, *this, quoted);
    store_be16(out.data() + 2, transport_checksum(src, dst, ipproto::icmpv6, out.first(len(quoted))));
}

base::Result<IcmpError, ParseError> parse_icmp_error(Bytes message) {
    base::Result<IcmpError, ParseError> e = parse_error(message, ipv4_kind, quoted_ipv4);
    // RFC 1191 §4: the next-hop MTU is the low 16 bits; the high ones are unused.
    if (e && e->kind == IcmpErrorKind::packet_too_big)
        return IcmpError{e->kind, e->type, e->code, e->mtu & 0xffff, e->quoted};
    return e;
}

base::Result<IcmpError, ParseError> parse_icmpv6_error(Bytes message) { return parse_error(message, ipv6_kind, quoted_ipv6); }

bool icmpv6_checksum_ok(const IpAddr& src, const IpAddr& dst, Bytes message) {
    return transport_checksum_ok(src, dst, ipproto::icmpv6, message);
}

}  // namespace ms::wire
