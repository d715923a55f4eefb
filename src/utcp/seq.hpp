// Contract: TCP sequence numbers (RFC 9293 §3.4) as a type. Arithmetic wraps modulo 2^32
// and comparisons are by signed distance, which is correct while the two numbers are
// less than 2^31 apart (RFC 9293 §3.4, RFC 1982). Raw uint32_t compares are never used
// on sequence numbers; this type is the only way to order them.
#pragma once

#include <cstdint>

namespace ms::utcp {

class Seq32 {
public:
    constexpr Seq32() = default;
    constexpr explicit Seq32(std::uint32_t value) : v_(value) {}

    [[nodiscard]] constexpr std::uint32_t value() const { return v_; }

    constexpr Seq32 operator+(std::uint32_t n) const { return Seq32(v_ + n); }
    constexpr Seq32 operator-(std::uint32_t n) const { return Seq32(v_ - n); }
    constexpr Seq32& operator+=(std::uint32_t n) {
        v_ += n;
        return *this;
    }
    // Signed distance from b to a: positive when a is after b.
    friend constexpr std::int32_t operator-(Seq32 a, Seq32 b) { return static_cast<std::int32_t>(a.v_ - b.v_); }

    friend constexpr bool operator==(Seq32 a, Seq32 b) { return a.v_ == b.v_; }
    friend constexpr bool operator<(Seq32 a, Seq32 b) { return (a - b) < 0; }
    friend constexpr bool operator<=(Seq32 a, Seq32 b) { return (a - b) <= 0; }
    friend constexpr bool operator>(Seq32 a, Seq32 b) { return (a - b) > 0; }
    friend constexpr bool operator>=(Seq32 a, Seq32 b) { return (a - b) >= 0; }

    // start <= x < start + length: the acceptability tests of RFC 9293 §3.10.7.4.
    [[nodiscard]] static constexpr bool in_window(Seq32 x, Seq32 start, std::uint32_t length) {
        return static_cast<std::uint32_t>(x.v_ - start.v_) < length;
    }
    [[nodiscard]] static constexpr Seq32 max(Seq32 a, Seq32 b) { return a < b ? b : a; }
    [[nodiscard]] static constexpr Seq32 min(Seq32 a, Seq32 b) { return a < b ? a : b; }

private:
    std::uint32_t v_ = 0;
};

}  // namespace ms::utcp
