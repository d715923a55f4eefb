// Contract: one-shot parse of an Ethernet frame down to its transport ports, as the
// switch needs it on every frame. Malformed headers are rejected with the ParseError of
// the layer that failed; frames that are well-formed but carry no ports (ARP, ICMP,
// non-first fragments, unknown protocols) parse fine with has_ports == false.
// An ICMP or ICMPv6 error quoting a TCP or UDP packet also yields that packet's tuple
// (icmp_error, quoted), so that it can go where the quoted packet came from.
// TCP is checked up to its data offset: option contents are the stacks' business
// (TcpView::parse checks them), not the switch's.
#pragma once

#include <optional>

#include "wire/bytes.hpp"
#include "wire/icmp.hpp"
#include "wire/parse_error.hpp"

namespace ms::wire {

struct ParsedFrame {
    MacAddr dst_mac;
    MacAddr src_mac;
    std::uint16_t ethertype = 0;   // after the VLAN tag
    std::uint16_t vlan_id = 0;
    bool vlan_tagged = false;      // an 802.1Q tag was present (its id may be 0)
    std::uint16_t l3_offset = 0;   // start of the IP header
    std::uint16_t l3_length = 0;   // IP total length, header included
    std::uint16_t l4_offset = 0;   // start of the transport header, when has_ports
    IpAddr src_ip;
    IpAddr dst_ip;
    std::uint8_t protocol = 0;     // upper-layer protocol
    bool fragment = false;         // any IP fragment, first one included
    bool ipv6_extensions = false;  // IPv6 extension headers precede the upper layer
    std::uint8_t hop_limit = 0;    // IPv4 TTL or IPv6 hop limit
    bool has_ports = false;        // a TCP or UDP header was parsed
    std::uint16_t src_port = 0;
    std::uint16_t dst_port = 0;
    bool icmp_error = false;       // an ICMP(v6) error about a TCP or UDP packet
    QuotedPacket quoted;           // when icmp_error: the packet it quotes (its sender is one of ours)

    [[nodiscard]] bool is_ip() const { return l3_length != 0; }
};

// Fills `out`, or returns the reason the frame is malformed (`out` is then partly
// filled). An out-parameter keeps the per-frame path copy-free.
[[nodiscard]] base::Result<base::Done, ParseError> parse_frame(Bytes frame, ParsedFrame& out);

}  // namespace ms::wire
