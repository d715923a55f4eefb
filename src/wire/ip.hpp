// Contract: IPv4 (options skipped by IHL) and IPv6 (fixed header, with the upper-layer
// protocol found through the extension-header chain). parse() checks version, header
// length and total/payload length against the buffer; payload() is bounded by the
// length the header declares, never by the buffer (Ethernet padding is excluded).
#pragma once

#include "wire/bytes.hpp"
#include "wire/parse_error.hpp"

namespace ms::wire {

namespace ipproto {
inline constexpr std::uint8_t hop_by_hop = 0;
inline constexpr std::uint8_t icmp = 1;
inline constexpr std::uint8_t tcp = 6;
inline constexpr std::uint8_t udp = 17;
inline constexpr std::uint8_t routing = 43;
inline constexpr std::uint8_t fragment = 44;
inline constexpr std::uint8_t esp = 50;
inline constexpr std::uint8_t auth = 51;
inline constexpr std::uint8_t icmpv6 = 58;
inline constexpr std::uint8_t no_next = 59;
inline constexpr std::uint8_t dest_options = 60;
}  // namespace ipproto

inline constexpr std::size_t kIpv4MinHeaderLen = 20;
inline constexpr std::size_t kIpv6HeaderLen = 40;

class Ipv4View {
public:
    Ipv4View() = default;
    static base::Result<Ipv4View, ParseError> parse(Bytes packet);

    [[nodiscard]] std::size_t header_len() const { return std::size_t{p_[0] & 0x0fu} * 4; }
    [[nodiscard]] std::uint8_t dscp_ecn() const { return p_[1]; }
    [[nodiscard]] std::uint16_t total_length() const { return load_be16(p_.data() + 2); }
    [[nodiscard]] std::uint16_t ident() const { return load_be16(p_.data() + 4); }
    [[nodiscard]] bool dont_fragment() const { return (p_[6] & 0x40) != 0; }
    [[nodiscard]] bool more_fragments() const { return (p_[6] & 0x20) != 0; }
    // Fragment offset in bytes.
    [[nodiscard]] std::uint16_t fragment_offset() const {
        return static_cast<std::uint16_t>((load_be16(p_.data() + 6) & 0x1fff) * 8);
    }
    [[nodiscard]] bool is_fragment() const { return more_fragments() || fragment_offset() != 0; }
    [[nodiscard]] std::uint8_t ttl() const { return p_[8]; }
    [[nodiscard]] std::uint8_t protocol() const { return p_[9]; }
    [[nodiscard]] std::uint16_t checksum() const { return load_be16(p_.data() + 10); }
    [[nodiscard]] IpAddr src() const { return IpAddr::load_v4(p_.data() + 12); }
    [[nodiscard]] IpAddr dst() const { return IpAddr::load_v4(p_.data() + 16); }
    [[nodiscard]] Bytes options() const { return p_.subspan(kIpv4MinHeaderLen, header_len() - kIpv4MinHeaderLen); }
    [[nodiscard]] Bytes header() const { return p_.first(header_len()); }
    [[nodiscard]] Bytes payload() const { return p_.subspan(header_len()); }
    [[nodiscard]] bool checksum_ok() const;

private:
    explicit Ipv4View(Bytes p) : p_(p) {}
    Bytes p_;  // exactly total_length() bytes
};

// The ECN field, the low two bits of the DSCP/ECN byte (RFC 3168 §5).
namespace ecn {
inline constexpr std::uint8_t mask = 0x03;
inline constexpr std::uint8_t ect0 = 0x02;
inline constexpr std::uint8_t ce = 0x03;
}  // namespace ecn

struct Ipv4Repr {
    IpAddr src;
    IpAddr dst;
    std::uint8_t protocol = ipproto::udp;
    std::uint16_t payload_len = 0;
    std::uint8_t ttl = 64;
    std::uint16_t ident = 0;
    bool dont_fragment = true;
    std::uint8_t dscp_ecn = 0;

    static constexpr std::size_t header_len() { return kIpv4MinHeaderLen; }
    // Writes a 20-byte header with its checksum computed.
    void emit(MutBytes out) const;
};

// Where an IPv6 packet's upper layer starts: the extension-header chain (RFC 8200 §4)
// walked within `packet`, which starts at the fixed header and is bounded by the caller
// (the declared length, or the buffer for a quoted, truncated packet).
struct Ipv6Upper {
    std::uint8_t protocol = ipproto::no_next;  // no_next, esp and the like end the walk
    std::size_t offset = kIpv6HeaderLen;
    bool fragment = false;        // a fragment header was passed
    bool first_fragment = false;  // ... with offset 0 (only it carries the ports)
};
[[nodiscard]] base::Result<Ipv6Upper, ParseError> walk_ipv6_extensions(Bytes packet);

class Ipv6View {
public:
    Ipv6View() = default;
    // Also walks the extension headers, so that an overrun chain is rejected here.
    static base::Result<Ipv6View, ParseError> parse(Bytes packet);

    [[nodiscard]] std::uint8_t traffic_class() const { return static_cast<std::uint8_t>((load_be16(p_.data()) >> 4) & 0xff); }
    [[nodiscard]] std::uint32_t flow_label() const { return load_be32(p_.data()) & 0xfffff; }
    [[nodiscard]] std::uint16_t payload_length() const { return load_be16(p_.data() + 4); }
    [[nodiscard]] std::uint8_t next_header() const { return p_[6]; }
    [[nodiscard]] std::uint8_t hop_limit() const { return p_[7]; }
    [[nodiscard]] IpAddr src() const { return IpAddr::load_v6(p_.data() + 8); }
    [[nodiscard]] IpAddr dst() const { return IpAddr::load_v6(p_.data() + 24); }
    // The protocol after the extension headers (ipproto::no_next, esp and the like end the walk).
    [[nodiscard]] std::uint8_t upper_protocol() const { return upper_protocol_; }
    [[nodiscard]] Bytes upper_payload() const { return p_.subspan(upper_offset_); }
    // True for a fragment header; only the first fragment (offset 0) carries ports.
    [[nodiscard]] bool is_fragment() const { return fragment_; }
    [[nodiscard]] bool is_first_fragment() const { return fragment_ && first_fragment_; }

private:
    Bytes p_;  // exactly 40 + payload_length() bytes
    std::size_t upper_offset_ = kIpv6HeaderLen;
    std::uint8_t upper_protocol_ = ipproto::no_next;
    bool fragment_ = false;
    bool first_fragment_ = false;
};

struct Ipv6Repr {
    IpAddr src{IpFamily::v6, {}};
    IpAddr dst{IpFamily::v6, {}};
    std::uint8_t next_header = ipproto::udp;
    std::uint16_t payload_len = 0;
    std::uint8_t hop_limit = 64;
    std::uint8_t traffic_class = 0;
    std::uint32_t flow_label = 0;

    static constexpr std::size_t header_len() { return kIpv6HeaderLen; }
    void emit(MutBytes out) const;
};

}  // namespace ms::wire
