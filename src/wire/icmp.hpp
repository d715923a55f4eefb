// Contract: ICMP (RFC 792) messages: a view that checks the header's length, and the
// header's writer (echo requests and replies in tools and tests).
#pragma once

#include "wire/bytes.hpp"
#include "wire/result.hpp"

namespace ms::wire {

inline constexpr std::size_t kIcmpHeaderLen = 8;

class IcmpV4View {
public:
    IcmpV4View() = default;
    static Result<IcmpV4View> parse(Bytes message);

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

}  // namespace ms::wire
