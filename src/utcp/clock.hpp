// Contract: UTCP's time. Time is injected (docs/DESIGN.md §7): nothing in UTCP reads a
// clock; `now` is microseconds from an epoch the caller chooses, and every send time,
// RTT and timer deadline of the stack counts microseconds too. What users set and what
// standards put on the wire keeps milliseconds (the timeouts of ConnOptions and
// StackConfig, RFC 7323's timestamps); these convert at the point of use.
#pragma once

#include <cstdint>

namespace ms::utcp {

inline constexpr std::uint64_t kMicrosPerMilli = 1000;

[[nodiscard]] constexpr std::uint64_t us_from_ms(std::uint64_t ms) { return ms * kMicrosPerMilli; }
[[nodiscard]] constexpr std::uint64_t ms_from_us(std::uint64_t us) { return us / kMicrosPerMilli; }

}  // namespace ms::utcp
