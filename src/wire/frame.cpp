#include "wire/frame.hpp"

#include "wire/ethernet.hpp"
#include "wire/ip.hpp"
#include "wire/transport.hpp"

namespace ms::wire {
namespace {

// Parses the transport header far enough to trust its ports.
base::Result<base::Done, ParseError> parse_ports(ParsedFrame& f, Bytes l4) {
    if (f.protocol == ipproto::tcp) {
        if (l4.size() < kTcpMinHeaderLen) return ParseError::truncated;
        const std::size_t offset = (std::size_t{l4[12]} >> 4) * 4;
        if (offset < kTcpMinHeaderLen || offset > l4.size()) return ParseError::bad_data_offset;
        f.src_port = load_be16(l4.data());
        f.dst_port = load_be16(l4.data() + 2);
    } else if (f.protocol == ipproto::udp) {
        auto udp = UdpView::parse(l4);
        if (!udp) return udp.error();
        f.src_port = udp->src_port();
        f.dst_port = udp->dst_port();
    } else {
        return base::Done{};
    }
    f.has_ports = true;
    return base::Done{};
}

// An ICMP error about a TCP or UDP packet names that packet; any other ICMP message, or
// one that quotes too little, is just a frame without ports.
void parse_icmp(ParsedFrame& f, base::Result<IcmpError, ParseError> error) {
    if (!error) return;
    f.icmp_error = true;
    f.quoted = error->quoted;
}

base::Result<base::Done, ParseError> parse_ipv4(ParsedFrame& f, Bytes l3) {
    auto ip = Ipv4View::parse(l3);
    if (!ip) return ip.error();
    f.l3_length = ip->total_length();
    f.src_ip = ip->src();
    f.dst_ip = ip->dst();
    f.protocol = ip->protocol();
    f.fragment = ip->is_fragment();
    f.ipv6_extensions = false;
    f.hop_limit = ip->ttl();
    if (ip->fragment_offset() != 0) return base::Done{};  // no transport header here
    f.l4_offset = static_cast<std::uint16_t>(f.l3_offset + ip->header_len());
    if (f.protocol == ipproto::icmp && !f.fragment) parse_icmp(f, parse_icmp_error(ip->payload()));
    return parse_ports(f, ip->payload());
}

base::Result<base::Done, ParseError> parse_ipv6(ParsedFrame& f, Bytes l3) {
    auto ip = Ipv6View::parse(l3);
    if (!ip) return ip.error();
    f.l3_length = static_cast<std::uint16_t>(kIpv6HeaderLen + ip->payload_length());
    f.src_ip = ip->src();
    f.dst_ip = ip->dst();
    f.protocol = ip->upper_protocol();
    f.fragment = ip->is_fragment();
    f.ipv6_extensions = ip->upper_payload().data() != l3.data() + kIpv6HeaderLen;
    f.hop_limit = ip->hop_limit();
    if (f.fragment && !ip->is_first_fragment()) return base::Done{};
    f.l4_offset = static_cast<std::uint16_t>(f.l3_offset + (ip->upper_payload().data() - l3.data()));
    if (f.protocol == ipproto::icmpv6 && !f.fragment) parse_icmp(f, parse_icmpv6_error(ip->upper_payload()));
    return parse_ports(f, ip->upper_payload());
}

}  // namespace

base::Result<base::Done, ParseError> parse_frame(Bytes frame, ParsedFrame& f) {
    auto eth = EthernetView::parse(frame);
    if (!eth) return eth.error();
    f.dst_mac = eth->dst();
    f.src_mac = eth->src();
    f.ethertype = eth->ethertype();
    f.vlan_id = eth->vlan_id();
    f.vlan_tagged = eth->has_vlan();
    f.l3_offset = static_cast<std::uint16_t>(eth->header_len());

    f.l3_length = 0;
    f.has_ports = false;
    f.icmp_error = false;
    if (f.ethertype == ethertype::ipv4) return parse_ipv4(f, eth->payload());
    if (f.ethertype == ethertype::ipv6) return parse_ipv6(f, eth->payload());
    return base::Done{};
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
        case ParseError::unsupported: return "unsupported";
    }
    return "unknown";
}

}  // namespace ms::wire
