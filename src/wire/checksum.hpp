// Contract: the Internet checksum (RFC 1071) over byte spans, its IPv4 and IPv6
// pseudo-header variants for TCP and UDP, and incremental update (RFC 1624).
// Partial sums are 32-bit, unfolded and in network byte order, so that they can be
// added together before one final fold. Pure functions; no allocation.
#pragma once

#include "wire/bytes.hpp"

namespace ms::wire {

// Sum of the 16-bit big-endian words of `data`, an odd trailing byte padded with zero.
// The result is folded to 16 bits but not complemented.
[[nodiscard]] std::uint16_t ones_sum(Bytes data, std::uint32_t initial = 0);

// Copies `src` to `dst` and returns its ones_sum, in one pass over the bytes (a
// segmenter's copy, docs/DESIGN.md §4). The sum is that of `src` as if it began at an even
// offset: a piece placed at an odd offset contributes its sum byte-swapped.
[[nodiscard]] std::uint16_t copy_ones_sum(std::uint8_t* dst, Bytes src);

// Ones' complement addition of two folded sums.
[[nodiscard]] std::uint16_t ones_add(std::uint16_t a, std::uint16_t b);

// The checksum field value for `data`: the complement of its ones' complement sum.
[[nodiscard]] inline std::uint16_t internet_checksum(Bytes data, std::uint32_t initial = 0) {
    return static_cast<std::uint16_t>(~ones_sum(data, initial));
}

// Pseudo-header sums (RFC 793 §3.1 / RFC 768 for IPv4, RFC 8200 §8.1 for IPv6),
// unfolded, to pass as `initial` to ones_sum over the transport header and payload.
[[nodiscard]] std::uint32_t pseudo_header_sum(const IpAddr& src, const IpAddr& dst, std::uint8_t protocol,
                                              std::uint32_t l4_length);

// Checksum of a transport segment, pseudo-header included. For UDP over IPv4 a
// computed zero is sent as 0xffff (RFC 768); transport_checksum does that mapping.
[[nodiscard]] std::uint16_t transport_checksum(const IpAddr& src, const IpAddr& dst, std::uint8_t protocol, Bytes segment);

// True when `segment` (checksum field included) sums to 0xffff with its pseudo-header.
[[nodiscard]] bool transport_checksum_ok(const IpAddr& src, const IpAddr& dst, std::uint8_t protocol, Bytes segment);

// RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), for one 16-bit field changing from m to m'.
[[nodiscard]] std::uint16_t checksum_update16(std::uint16_t checksum, std::uint16_t old_word, std::uint16_t new_word);

// The same for a 32-bit field, as two 16-bit words.
[[nodiscard]] std::uint16_t checksum_update32(std::uint16_t checksum, std::uint32_t old_value, std::uint32_t new_value);

}  // namespace ms::wire
