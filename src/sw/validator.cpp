#include "sw/validator.hpp"

#include <array>
#include <cstring>

#include "wire/checksum.hpp"
#include "wire/ethernet.hpp"
#include "wire/ip.hpp"
#include "wire/transport.hpp"

namespace ms::sw {
namespace {

// Delivers to the claim's port, or to the member of its group that the frame's
// connection belongs to.
Verdict deliver_to(wire::Bytes frame, const wire::ParsedFrame& f, const ClaimHolder& holder) {
    const std::uint32_t hash = flow_hash(f);
    if (!holder.group) return {Verdict::Kind::to_port, holder.port, DropReason::truncated, hash};
    const PortId port = holder.group->steer_incoming(frame, f, hash);
    if (port == kNoPort) return Verdict::dropped(DropReason::group_full);  // the peer sends it again
    return {Verdict::Kind::to_port, port, DropReason::truncated, hash};
}

// An ICMP error goes to the port that sent the packet it quotes: it must be addressed to
// that packet's source (RFC 1122 §3.2.2.1, RFC 4443 §2.4), which the port claims. It
// lands on the ring of the quoted flow, as the flow's own frames do.
Verdict classify_icmp_error(const wire::ParsedFrame& f, const ClaimTable& claims) {
    const wire::QuotedPacket& q = f.quoted;
    if (!(f.dst_ip == q.src)) return Verdict::dropped(DropReason::host_miss);
    const ClaimHolder holder = claims.lookup(q.protocol, q.src, q.src_port);
    const std::uint32_t hash = flow_hash(q.dst, q.src, q.dst_port, q.src_port);
    const PortId port = holder.group ? holder.group->steer_quoted(q.src, q.src_port, q.dst, q.dst_port, hash) : holder.port;
    if (port == kNoPort) return Verdict::dropped(DropReason::host_miss);
    return {Verdict::Kind::to_port, port, DropReason::truncated, hash};
}

bool ipv4_header_checksum_ok(wire::Bytes frame, const wire::ParsedFrame& f) {
    const std::size_t ihl = std::size_t{frame[f.l3_offset] & 0x0fu} * 4;
    return wire::ones_sum(frame.subspan(f.l3_offset, ihl)) == 0xffff;
}

// The fields a super-segment adds to a frame's, checked on the switch's copy.
bool segment_fields_ok(wire::Bytes head, const wire::HeaderShape& h, std::uint32_t payload_len, std::uint16_t gso_size) {
    const std::uint32_t tcp_header = h.header_len - h.l4_offset;
    const std::int64_t declared = h.ipv6 ? std::int64_t{wire::load_be16(head.data() + h.l3_offset + 4)}
                                         : std::int64_t{wire::load_be16(head.data() + h.l3_offset + 2)} -
                                               std::int64_t{wire::kIpv4MinHeaderLen};
    constexpr std::uint8_t kForbidden = wire::tcpflag::syn | wire::tcpflag::rst | wire::tcpflag::urg;
    return payload_len > 0 && declared == std::int64_t{tcp_header} + payload_len &&
           (head[h.l4_offset + 13] & kForbidden) == 0 && gso_size > 0 &&
           h.header_len + std::uint32_t{gso_size} <= ring::kMaxFrameSize &&
           (payload_len + gso_size - 1) / gso_size <= wire::kMaxSegmentsPerSuper;
}

}  // namespace

std::uint32_t flow_hash(const wire::IpAddr& src, const wire::IpAddr& dst, std::uint16_t src_port, std::uint16_t dst_port) {
    // Symmetric in nothing and keyed by nothing: it only spreads one port's flows over
    // its rings, and every frame of a flow lands on the same ring.
    std::uint64_t a;
    std::uint64_t b;
    std::memcpy(&a, src.bytes.data(), 8);
    std::memcpy(&b, dst.bytes.data() + 8, 8);
    std::uint64_t h = (a ^ (b << 1)) + (std::uint64_t{src_port} << 16 | dst_port);
    std::uint32_t s4;
    std::uint32_t d4;
    std::memcpy(&s4, src.bytes.data() + 8, 4);
    std::memcpy(&d4, dst.bytes.data(), 4);
    h ^= (std::uint64_t{s4} << 32) | d4;
    h *= 0x9e3779b97f4a7c15ull;
    return static_cast<std::uint32_t>(h >> 32);
}

std::uint32_t flow_hash(const wire::ParsedFrame& f) { return flow_hash(f.src_ip, f.dst_ip, f.src_port, f.dst_port); }

Verdict validate_tx(wire::Bytes frame, PortId sender, const TxLink& link, const ClaimTable& claims) {
    wire::ParsedFrame f;
    if (auto parsed = wire::parse_frame(frame, f); !parsed) return Verdict::dropped(drop_reason_for(parsed.error()));
    // Defends the link and the hosts on it: nothing larger than the MTU leaves.
    if (frame.size() > wire::kEthernetHeaderLen + link.mtu) return Verdict::dropped(DropReason::over_mtu);

    // Defends the kernel's own ARP/ND and every host on the link: only unicast leaves.
    if (f.dst_mac.is_group()) return Verdict::dropped(DropReason::multicast);
    // Defends other VLANs: a tagged frame would reach a network this interface is not on.
    if (f.vlan_tagged) return Verdict::dropped(DropReason::vlan_tagged);
    // Defends other hosts' and the kernel's identity on the link.
    if (f.src_mac != link.nic_mac) return Verdict::dropped(DropReason::bad_src_mac);
    if (!f.is_ip()) return Verdict::dropped(DropReason::not_ip);
    if (f.ethertype == wire::ethertype::ipv4 && !ipv4_header_checksum_ok(frame, f)) {
        return Verdict::dropped(DropReason::bad_ip_checksum);
    }
    if (f.fragment) return Verdict::dropped(DropReason::fragment);
    // Defends routers and hosts on the path: no option a stack could abuse (a routing
    // header to bounce traffic, a hop-by-hop option every router must read).
    if (f.ipv6_extensions) return Verdict::dropped(DropReason::ipv6_extension);
    if (f.hop_limit == 0) return Verdict::dropped(DropReason::bad_hop_limit);
    if (!f.has_ports) return Verdict::dropped(DropReason::bad_protocol);
    const ClaimHolder source = claims.lookup(f.protocol, f.src_ip, f.src_port);
    if (!source.held_by(sender)) return Verdict::dropped(DropReason::src_not_claimed);
    // A member's segment about another member's connection (a SYN-ACK to take it over).
    if (source.group && !source.group->note_outgoing(frame, f, sender)) return Verdict::dropped(DropReason::src_not_claimed);
    if (const ClaimHolder local = claims.lookup(f.protocol, f.dst_ip, f.dst_port)) return deliver_to(frame, f, local);
    return {Verdict::Kind::to_nic, kNoPort, DropReason::truncated, 0};
}

Verdict validate_segment(wire::Bytes head_copy, std::uint32_t payload_beyond, std::uint16_t gso_size, PortId sender,
                         const TxLink& link, const ClaimTable& claims, wire::HeaderShape& shape) {
    const base::Result<wire::HeaderShape, wire::ShapeError> h = wire::header_shape(head_copy);
    if (!h) return Verdict::dropped(DropReason::bad_segment);
    const std::uint32_t payload_len = static_cast<std::uint32_t>(head_copy.size() - h->header_len) + payload_beyond;
    if (!segment_fields_ok(head_copy, *h, payload_len, gso_size)) return Verdict::dropped(DropReason::bad_segment);
    if (h->header_len - h->l3_offset + std::uint32_t{gso_size} > link.mtu) return Verdict::dropped(DropReason::over_mtu);
    // The headers alone, as the frame they would be without payload, go through every
    // check a frame does (the IPv4 checksum stays valid: RFC 1624 update of the length).
    std::array<std::uint8_t, wire::kEthernetHeaderLen + wire::kIpv6HeaderLen + 60> bare;
    std::memcpy(bare.data(), head_copy.data(), h->header_len);
    std::uint8_t* ip = bare.data() + h->l3_offset;
    const auto tcp_header = static_cast<std::uint16_t>(h->header_len - h->l4_offset);
    if (h->ipv6) {
        wire::store_be16(ip + 4, tcp_header);
    } else {
        const std::uint16_t old_len = wire::load_be16(ip + 2);
        const auto new_len = static_cast<std::uint16_t>(wire::kIpv4MinHeaderLen + tcp_header);
        wire::store_be16(ip + 2, new_len);
        wire::store_be16(ip + 10, wire::checksum_update16(wire::load_be16(ip + 10), old_len, new_len));
    }
    const Verdict v = validate_tx({bare.data(), h->header_len}, sender, link, claims);
    if (v.kind != Verdict::Kind::drop) shape = *h;
    return v;
}

Verdict classify_rx(wire::Bytes frame, const ClaimTable& claims) {
    // Bounds every queue and ring the frame may be copied into (an interface MTU above
    // 1500 can deliver longer frames).
    if (frame.size() > ring::kMaxFrameSize) return Verdict::dropped(DropReason::oversize);
    wire::ParsedFrame f;
    if (!wire::parse_frame(frame, f)) return Verdict::dropped(DropReason::nic_malformed);
    // Broadcast and multicast belong to the kernel, as the XDP program decides too.
    if (f.dst_mac.is_group()) return Verdict::dropped(DropReason::host_miss);
    if (f.icmp_error) return classify_icmp_error(f, claims);
    if (!f.has_ports) return Verdict::dropped(DropReason::host_miss);
    const ClaimHolder holder = claims.lookup(f.protocol, f.dst_ip, f.dst_port);
    if (!holder) return Verdict::dropped(DropReason::host_miss);
    return deliver_to(frame, f, holder);
}

}  // namespace ms::sw
