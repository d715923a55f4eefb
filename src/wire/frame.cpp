#include "wire/frame.hpp"

#include "wire/ethernet.hpp"
#include "wire/ip.hpp"
#include "wire/transport.hpp"

namespace ms::wire {
namespace {

// Parses the transport header far enough to trust its ports.
std::optional<ParseError> parse_ports(ParsedFrame& f, Bytes l4) {
    if (f.protocol == ipproto::tcp) {
        auto tcp = TcpView::parse(l4);
        if (!tcp) return tcp.error();
        f.src_port = tcp->src_port();
        f.dst_port = tcp->dst_port();
    } else if (f.protocol == ipproto::udp) {
        auto udp = UdpView::parse(l4);
        if (!udp) return udp.error();
        f.src_port = udp->src_port();
        f.dst_port = udp->dst_port();
    } else {
        return std::nullopt;
    }
    f.has_ports = true;
    return std::nullopt;
}

std::optional<ParseError> parse_ipv4(ParsedFrame& f, Bytes l3) {
    auto ip = Ipv4View::parse(l3);
    if (!ip) return ip.error();
    f.l3_length = ip->total_length();
    f.src_ip = ip->src();
    f.dst_ip = ip->dst();
    f.protocol = ip->protocol();
    f.fragment = ip->is_fragment();
    if (ip->fragment_offset() != 0) return std::nullopt;  // no transport header here
    return parse_ports(f, ip->payload());
}

std::optional<ParseError> parse_ipv6(ParsedFrame& f, Bytes l3) {
    auto ip = Ipv6View::parse(l3);
    if (!ip) return ip.error();
    f.l3_length = static_cast<std::uint16_t>(kIpv6HeaderLen + ip->payload_length());
    f.src_ip = ip->src();
    f.dst_ip = ip->dst();
    f.protocol = ip->upper_protocol();
    f.fragment = ip->is_fragment();
    if (f.fragment && !ip->is_first_fragment()) return std::nullopt;
    return parse_ports(f, ip->upper_payload());
}

}  // namespace

Result<ParsedFrame> parse_frame(Bytes frame) {
    auto eth = EthernetView::parse(frame);
    if (!eth) return eth.error();
    ParsedFrame f;
    f.dst_mac = eth->dst();
    f.src_mac = eth->src();
    f.ethertype = eth->ethertype();
    f.vlan_id = eth->vlan_id();
    f.l3_offset = static_cast<std::uint16_t>(eth->header_len());

    std::optional<ParseError> error;
    if (f.ethertype == ethertype::ipv4) error = parse_ipv4(f, eth->payload());
    else if (f.ethertype == ethertype::ipv6) error = parse_ipv6(f, eth->payload());
    if (error) return *error;
    return f;
}

std::string_view to_string(ParseError e) {
    switch (e) {
        case ParseError::truncated: return "truncated";
        case ParseError::bad_version: return "bad_version";
        case ParseError::bad_header_length: return "bad_header_length";
        case ParseError::bad_data_offset: return "bad_data_offset";
        case ParseError::bad_total_length: return "bad_total_length";
        case ParseError::bad_option: return "bad_option";
        case ParseError::bad_extension: return "bad_extension";
        case ParseError::bad_hardware_type: return "bad_hardware_type";
    }
    return "unknown";
}

}  // namespace ms::wire
