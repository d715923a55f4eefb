// Stack, the IP layer: frames in (Ethernet, IPv4 and IPv6 with RFC 8200's extension
// headers, ICMP errors handed to the connection they quote) and frames out (the
// Ethernet and IP headers of every segment and datagram, super-segments handed to the
// link, IPv6 flow labels). Stack's contract is in stack.hpp.
#include <array>

#include "utcp/path.hpp"
#include "utcp/stack.hpp"
#include "wire/build.hpp"
#include "wire/icmp.hpp"

namespace ms::utcp {

void Stack::input(wire::Bytes frame, std::uint64_t now_us) {
    now_us_ = now_us;
    ++stats_.frames_in;
    // Each layer is parsed once, by the view that the next step uses.
    auto eth = wire::EthernetView::parse(frame);
    if (!eth) return void(++stats_.malformed);
    if (eth->ethertype() == wire::ethertype::ipv4) return input_ipv4(eth->payload(), now_us);
    if (eth->ethertype() == wire::ethertype::ipv6) return input_ipv6(eth->payload(), now_us);
    ++stats_.not_ip;
}

void Stack::input_ipv4(wire::Bytes packet, std::uint64_t now_us) {
    auto ip = wire::Ipv4View::parse(packet);
    if (!ip) return void(++stats_.malformed);
    if (!ip->checksum_ok()) return void(++stats_.bad_checksum);
    if (ip->is_fragment()) return void(++stats_.fragments);
    if (!(ip->dst() == config_.address)) return void(++stats_.not_our_address);
    const IpPacket p{ip->src(), ip->dst(), ip->payload(), static_cast<std::uint8_t>(ip->dscp_ecn() & wire::ecn::mask)};
    input_transport(ip->protocol(), p, now_us);
}

// RFC 8200: the extension headers are walked (Ipv6View); a fragment is dropped as in IPv4.
void Stack::input_ipv6(wire::Bytes packet, std::uint64_t now_us) {
    auto ip = wire::Ipv6View::parse(packet);
    if (!ip) return void(++stats_.malformed);
    if (ip->is_fragment()) return void(++stats_.fragments);
    if (!config_.address6 || !(ip->dst() == *config_.address6)) return void(++stats_.not_our_address);
    const IpPacket p{ip->src(), ip->dst(), ip->upper_payload(),
                     static_cast<std::uint8_t>(ip->traffic_class() & wire::ecn::mask)};
    input_transport(ip->upper_protocol(), p, now_us);
}

void Stack::input_transport(std::uint8_t protocol, const IpPacket& ip, std::uint64_t now_us) {
    if (protocol == wire::ipproto::tcp) return input_tcp(ip, now_us);
    if (protocol == wire::ipproto::udp) return input_udp(ip);
    if (protocol == wire::ipproto::icmp && ip.src.family == wire::IpFamily::v4) return input_icmp(ip, now_us);
    if (protocol == wire::ipproto::icmpv6 && ip.src.family == wire::IpFamily::v6) return input_icmp(ip, now_us);
    ++stats_.malformed;
}

void Stack::input_icmp(const IpPacket& ip, std::uint64_t now_us) {
    ++stats_.icmp_in;
    if (ip.src.family == wire::IpFamily::v6) {
        if (ip.l4.size() < wire::kIcmpHeaderLen) return void(++stats_.malformed);
        if (!wire::icmpv6_checksum_ok(ip.src, ip.dst, ip.l4)) return void(++stats_.bad_checksum);
        return input_icmp_error(wire::parse_icmpv6_error(ip.l4), now_us);
    }
    const auto message = wire::IcmpV4View::parse(ip.l4);
    if (!message) return void(++stats_.malformed);
    if (!message->checksum_ok()) return void(++stats_.bad_checksum);
    input_icmp_error(wire::parse_icmp_error(ip.l4), now_us);
}

void Stack::input_icmp_error(const base::Result<wire::IcmpError, wire::ParseError>& error, std::uint64_t now_us) {
    if (!error || error->quoted.protocol != wire::ipproto::tcp ||
        local_address(error->quoted.src.family) != error->quoted.src) {
        return void(++stats_.icmp_ignored);
    }
    const wire::QuotedPacket& q = error->quoted;
    Connection* c = find(FourTuple{q.src, q.dst, q.src_port, q.dst_port});
    if (!c) return void(++stats_.icmp_no_connection);
    train_.conn = nullptr;
    if (!c->on_icmp_error(*error, now_us)) ++stats_.icmp_out_of_window;
}

std::optional<wire::MacAddr> Stack::next_hop(const wire::IpAddr& addr) {
    if (auto it = next_hops_.find(addr); it != next_hops_.end()) return it->second;
    if (!config_.resolve) return std::nullopt;
    auto mac = config_.resolve(addr);
    if (mac) next_hops_[addr] = *mac;
    return mac;
}

namespace {

// Ethernet, IPv6 and a TCP header with the most options.
constexpr std::size_t kMaxSuperHeaders = wire::kEthernetHeaderLen + wire::kIpv6HeaderLen + 60;

wire::TcpRepr tcp_header(const Route& route, const OutSegment& seg) {
    return {.src_port = route.tuple.local_port,
            .dst_port = route.tuple.remote_port,
            .seq = seg.seq.value(),
            .ack = seg.ack.value(),
            .flags = seg.flags,
            .window = seg.wnd,
            .options = seg.options};
}

}  // namespace

bool Stack::emit(const Route& route, const OutSegment& seg) {
    if (seg.gso_size != 0 && seg.payload.size() > seg.gso_size) return emit_super(route, seg);
    const wire::TcpRepr tcp = tcp_header(route, seg);
    const std::size_t hlen = tcp.header_len();
    return emit_ip(route.next_hop, route.tuple, wire::ipproto::tcp, hlen + seg.payload.size(),
                   seg.ect ? wire::ecn::ect0 : std::uint8_t{0}, seg.marks, [&](wire::MutBytes l4) {
                       tcp.emit(l4);
                       wire::copy_bytes(l4.data() + hlen, seg.payload.first);
                       wire::copy_bytes(l4.data() + hlen + seg.payload.first.size(), seg.payload.second);
                   });
}

bool Stack::emit_super(const Route& route, const OutSegment& seg) {
    const wire::TcpRepr tcp = tcp_header(route, seg);
    const std::size_t payload = seg.payload.size();
    std::array<std::uint8_t, kMaxSuperHeaders> headers{};
    const std::uint8_t ecn = seg.ect ? wire::ecn::ect0 : std::uint8_t{0};
    const std::size_t written = with_ip_header(
        route.next_hop, route.tuple, wire::ipproto::tcp, ecn, seg.marks, [&](const auto& eth, auto ip) {
            return wire::emit_tcp_super_header(headers, eth, ip, tcp.header_len(), tcp.header_len() + payload,
                                               [&](wire::MutBytes l4) { tcp.emit(l4); });
        });
    const LinkTx sent = link_.send_super(wire::Bytes(headers).first(written), seg.payload, seg.gso_size);
    if (sent == LinkTx::no_room) {
        ++stats_.tx_ring_full;
        return false;
    }
    if (sent == LinkTx::by_reference) ++stats_.super_segments_by_reference;
    // Each wire segment takes an IPv4 identification, as the segmenter numbers them.
    ip_ident_ = static_cast<std::uint16_t>(ip_ident_ + (payload + seg.gso_size - 1) / seg.gso_size);
    ++stats_.frames_out;
    ++stats_.super_segments_out;
    return true;
}

template <class Emit>
std::size_t Stack::with_ip_header(const wire::MacAddr& dst_mac, const FourTuple& flow, std::uint8_t protocol,
                                  std::uint8_t ecn, const IpMarks& marks, const Emit& emit) {
    const auto traffic_class = static_cast<std::uint8_t>((marks.dscp & ~wire::ecn::mask) | ecn);
    if (flow.local.family == wire::IpFamily::v6) {
        return emit(wire::EthernetRepr{.dst = dst_mac, .src = config_.mac, .ethertype = wire::ethertype::ipv6},
                    wire::Ipv6Repr{.src = flow.local,
                                   .dst = flow.remote,
                                   .next_header = protocol,
                                   .traffic_class = traffic_class,
                                   .flow_label = marks.flow_label.value_or(flow_label(flow))});
    }
    return emit(wire::EthernetRepr{.dst = dst_mac, .src = config_.mac, .ethertype = wire::ethertype::ipv4},
                wire::Ipv4Repr{.src = flow.local,
                               .dst = flow.remote,
                               .protocol = protocol,
                               .ident = ip_ident_,
                               .dont_fragment = true,
                               .dscp_ecn = traffic_class});
}

template <class WriteL4>
bool Stack::emit_ip(const wire::MacAddr& dst_mac, const FourTuple& flow, std::uint8_t protocol, std::size_t l4_len,
                    std::uint8_t ecn, const IpMarks& marks, const WriteL4& write_l4) {
    const wire::MutBytes out = link_.next_tx_buffer();
    const std::size_t len = with_ip_header(dst_mac, flow, protocol, ecn, marks, [&](const auto& eth, auto ip) {
        return wire::emit_ip_frame(out, eth, ip, l4_len, write_l4);
    });
    ++ip_ident_;
    if (len == 0) {
        ++stats_.tx_ring_full;
        return false;
    }
    link_.commit_tx(len);
    ++stats_.frames_out;
    return true;
}

std::uint32_t Stack::flow_label(const FourTuple& flow) const {
    const std::uint64_t h = (FourTupleHash{}(flow) ^ flow_label_key_) * 0x9e3779b97f4a7c15ull;
    const auto label = static_cast<std::uint32_t>(h >> 44);  // 20 bits
    return label != 0 ? label : 1;
}

bool Stack::emit_datagram(const wire::MacAddr& dst_mac, const FourTuple& flow, wire::Bytes payload, const IpMarks& marks) {
    const wire::UdpRepr udp{
        .src_port = flow.local_port, .dst_port = flow.remote_port, .payload_len = static_cast<std::uint16_t>(payload.size())};
    const auto ecn = static_cast<std::uint8_t>(marks.ecn & wire::ecn::mask);
    return emit_ip(dst_mac, flow, wire::ipproto::udp, wire::kUdpHeaderLen + payload.size(), ecn, marks,
                   [&](wire::MutBytes l4) {
                       udp.emit(l4);
                       wire::copy_bytes(l4.data() + wire::kUdpHeaderLen, payload);
                   });
}

}  // namespace ms::utcp
