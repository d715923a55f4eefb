// Contract: what the network path tells a TCP connection besides the peer's segments.
// ICMP errors (RFC 1122 §4.2.3.9, RFC 5461): which are hard (the peer's host or port
// refuses: they abort a connection still in SYN_SENT) and which are soft (remembered, and
// reported as the reason if the connection later times out), and the ConnError each one
// names. The path MTU: the MSS that a "packet too big" allows (RFC 1191 §3, RFC 8201 §4;
// values under the minimum MTU are raised to it, RFC 5927 §7.2 and RFC 8201 §4), and,
// where the path drops large segments without a word, the MSS to retreat to after
// consecutive timeouts (black-hole detection, RFC 4821 §5.4 / §7.7, as Linux's
// tcp_mtu_probing does it): first the search base of 1024 bytes, then the minimum.
// Pure functions: the connection keeps the state and applies them.
#pragma once

#include <cstdint>
#include <optional>

#include "wire/bytes.hpp"
#include "wire/icmp.hpp"

namespace ms::utcp {

enum class ConnError : std::uint8_t;

// RFC 1122 §4.2.3.9: protocol and port unreachable (and administrative prohibition,
// which Linux also treats as fatal) are hard; the rest say the path may yet recover.
[[nodiscard]] bool is_hard_error(wire::IcmpErrorKind kind);
[[nodiscard]] ConnError error_for(wire::IcmpErrorKind kind);

// The IP and TCP headers (without options) that an MTU holds besides the MSS.
[[nodiscard]] std::uint16_t headers_of(wire::IpFamily family);

// The MSS a "packet too big" naming `mtu` leaves: lower than `mss`, or nothing. `mtu` 0
// (a router older than RFC 1191) names no size: nothing.
[[nodiscard]] std::optional<std::uint16_t> mss_for_packet_too_big(std::uint32_t mtu, wire::IpFamily family,
                                                                  std::uint16_t mss);

// RFC 4821 black-hole detection: this many retransmission timeouts in a row, with
// segments of more than the search base, make the MSS retreat.
inline constexpr std::uint32_t kBlackHoleTimeouts = 2;
inline constexpr std::uint16_t kSearchBaseMss = 1024;  // RFC 4821 §7.2, Linux's tcp_base_mss
// After `timeouts` consecutive RTOs with `mss`: the MSS to try, if lower.
[[nodiscard]] std::optional<std::uint16_t> mss_after_timeouts(std::uint32_t timeouts, wire::IpFamily family,
                                                              std::uint16_t mss);

}  // namespace ms::utcp
