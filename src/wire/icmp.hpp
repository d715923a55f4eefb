// Contract: ICMP (RFC 792) messages: a view that checks the header's length, and the
// header's writer (echo requests and replies in tools and tests). And ICMP and ICMPv6
// (RFC 4443) error messages, as far as a transport
// needs them: what kind of error, the 32-bit field after the checksum (the next-hop MTU of
// "fragmentation needed", RFC 1191 §4, or of "packet too big", RFC 4443 §3.2), and the
// packet it quotes: its addresses, protocol, ports and, for TCP, the sequence number (the
// eight transport bytes RFC 792 guarantees). A quoted packet is truncated by design, so
// its declared lengths are not checked; every byte read is bounded by the message.
// Messages that are not errors about a TCP or UDP packet (echo, redirects, errors quoting
// ICMP or a later fragment) are well-formed but "unsupported". Checksums are the caller's
// choice (the switch forwards without one; a stack checks them).
#pragma once

#include "wire/bytes.hpp"
#include "wire/parse_error.hpp"

namespace ms::wire {

namespace icmp {  // RFC 792 types and the codes of "destination unreachable"
inline constexpr std::uint8_t dest_unreachable = 3;
inline constexpr std::uint8_t time_exceeded = 11;
inline constexpr std::uint8_t parameter_problem = 12;
inline constexpr std::uint8_t net_unreachable = 0;
inline constexpr std::uint8_t host_unreachable = 1;
inline constexpr std::uint8_t protocol_unreachable = 2;
inline constexpr std::uint8_t port_unreachable = 3;
inline constexpr std::uint8_t fragmentation_needed = 4;
}  // namespace icmp

namespace icmpv6 {  // RFC 4443 error types and the codes of "destination unreachable"
inline constexpr std::uint8_t dest_unreachable = 1;
inline constexpr std::uint8_t packet_too_big = 2;
inline constexpr std::uint8_t time_exceeded = 3;
inline constexpr std::uint8_t parameter_problem = 4;
inline constexpr std::uint8_t no_route = 0;
inline constexpr std::uint8_t prohibited = 1;
inline constexpr std::uint8_t address_unreachable = 3;
inline constexpr std::uint8_t port_unreachable = 4;
}  // namespace icmpv6

inline constexpr std::size_t kIcmpHeaderLen = 8;

class IcmpV4View {
public:
    IcmpV4View() = default;
    static base::Result<IcmpV4View, ParseError> parse(Bytes message);

    [[nodiscard]] std::uint8_t type() const { return p_[0]; }
    [[nodiscard]] std::uint8_t code() const { return p_[1]; }
    [[nodiscard]] std::uint16_t checksum() const { return load_be16(p_.data() + 2); }
    // Echo identifier and sequence; other types reuse these four bytes differently.
    [[nodiscard]] std::uint16_t ident() const { return load_be16(p_.data() + 4); }
    [[nodiscard]] std::uint16_t sequence() const { return load_be16(p_.data() + 6); }
    [[nodiscard]] Bytes payload() const { return p_.subspan(kIcmpHeaderLen); }
    [[nodiscard]] bool checksum_ok() const;

private:
    explicit IcmpV4View(Bytes p) : p_(p) {}
    Bytes p_;
};

struct IcmpV4Repr {
    std::uint8_t type = 8;  // echo request
    std::uint8_t code = 0;
    std::uint16_t ident = 0;
    std::uint16_t sequence = 0;

    // Writes the header and fills the checksum over header plus `payload`, which the
    // caller has already placed right after it in `out`.
    void emit(MutBytes out, std::size_t payload_len) const;
};

// What went wrong, in either family's terms.
enum class IcmpErrorKind : std::uint8_t {
    net_unreachable,
    host_unreachable,
    protocol_unreachable,
    port_unreachable,
    prohibited,       // administratively prohibited, source route failed and the like
    packet_too_big,   // IPv4 "fragmentation needed and DF set", or ICMPv6 "packet too big"
    time_exceeded,
    parameter_problem,
};
[[nodiscard]] const char* to_string(IcmpErrorKind k);

// The packet an error quotes, from its sender's point of view.
struct QuotedPacket {
    IpAddr src;
    IpAddr dst;
    std::uint8_t protocol = 0;  // TCP or UDP
    std::uint16_t src_port = 0;
    std::uint16_t dst_port = 0;
    std::uint32_t tcp_seq = 0;  // TCP only
};

struct IcmpError {
    IcmpErrorKind kind = IcmpErrorKind::host_unreachable;
    std::uint8_t type = 0;
    std::uint8_t code = 0;
    std::uint32_t mtu = 0;  // packet_too_big: the MTU the router named (0: none, an RFC 1191 §5 "old" router)
    QuotedPacket quoted;
};

// An error message about `quoted` (the start of the IP packet that caused it), as a
// router or a host sends one: the 8-byte header, then the quote.
struct IcmpErrorRepr {
    std::uint8_t type = icmp::dest_unreachable;
    std::uint8_t code = icmp::port_unreachable;
    std::uint32_t mtu = 0;  // packet too big: the MTU named (IPv4 uses the low 16 bits)

    [[nodiscard]] std::size_t len(Bytes quoted) const { return kIcmpHeaderLen + quoted.size(); }
    // Write len(quoted) bytes into `out`, checksum included (ICMPv6's over the
    // pseudo-header of `src` and `dst`).
    void emit_v4(MutBytes out, Bytes quoted) const;
    void emit_v6(MutBytes out, Bytes quoted, const IpAddr& src, const IpAddr& dst) const;
};

// `message` is an IPv4 packet's payload with protocol ICMP.
[[nodiscard]] base::Result<IcmpError, ParseError> parse_icmp_error(Bytes message);
// `message` is an IPv6 packet's upper-layer payload with next header ICMPv6.
[[nodiscard]] base::Result<IcmpError, ParseError> parse_icmpv6_error(Bytes message);

// RFC 4443 §2.3: the checksum covers an IPv6 pseudo-header (IPv4's: IcmpV4View).
[[nodiscard]] bool icmpv6_checksum_ok(const IpAddr& src, const IpAddr& dst, Bytes message);

}  // namespace ms::wire
