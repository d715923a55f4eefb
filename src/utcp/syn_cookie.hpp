// Contract: SYN cookies (RFC 4987 §3.6), as Linux makes them. When a listener's SYN queue
// is full, the stack answers a SYN with a SYN,ACK whose ISS encodes what the connection
// needs, and keeps no state; the ACK that completes the handshake brings it back (SEG.ACK
// - 1), and the connection is made from it if it verifies. The ISS is
//   H1(4-tuple) + the peer's ISN + (count << 24) + ((H2(4-tuple, count) + MSS index) mod 2^24)
// with SipHash-2-4 keyed per stack (libsodium) and `count` a clock of 64-second ticks;
// a cookie is good for two ticks. The peer's window scale, SACK and ECN go into the low
// six bits of our TSval, which the ACK echoes; without timestamps the connection has none
// of them (as in Linux).
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "utcp/secrets.hpp"
#include "utcp/seq.hpp"
#include "utcp/tuple.hpp"

namespace ms::utcp {

// What a cookie carries.
struct CookieOptions {
    std::uint16_t mss = 536;
    std::optional<std::uint8_t> window_scale;  // the peer's; only with timestamps
    bool sack = false;                         // only with timestamps
    bool ecn = false;                          // only with timestamps
};

class SynCookies {
public:
    // The MSS values a cookie can name (Linux's table for IPv4).
    static constexpr std::array<std::uint16_t, 4> kMssTable = {536, 1300, 1440, 1460};
    static constexpr std::uint32_t kTickMs = 64'000;
    static constexpr std::uint32_t kTicksValid = 2;
    static constexpr std::uint32_t kTsBits = 6;  // low TSval bits: 4 window scale, SACK, ECN

    explicit SynCookies(const SecretKey& key) : key_(key) {}  // secrets.hpp draws one

    // The ISS for a SYN from `peer_isn` with `mss`, at `now_us`; the MSS it encodes is the
    // largest in the table not above `mss`.
    [[nodiscard]] Seq32 make(const FourTuple& t, Seq32 peer_isn, std::uint16_t mss, std::uint64_t now_us) const;
    // The MSS a cookie names if `iss` (SEG.ACK - 1) is one we made for this 4-tuple and
    // peer ISN (SEG.SEQ - 1) within the last two ticks.
    [[nodiscard]] std::optional<std::uint16_t> check(const FourTuple& t, Seq32 peer_isn, Seq32 iss,
                                                     std::uint64_t now_us) const;

    // Our TSval for the SYN,ACK: `tsval` with its low bits replaced by the options, never
    // above `tsval` (so that later TSvals stay ahead of it).
    [[nodiscard]] static std::uint32_t encode_options(std::uint32_t tsval, const CookieOptions& o);
    // The options an echoed TSval carries; window scale 15 means none.
    [[nodiscard]] static CookieOptions decode_options(std::uint32_t tsecr, std::uint16_t mss);

private:
    [[nodiscard]] std::uint32_t hash(const FourTuple& t, std::uint32_t count) const;

    SecretKey key_;
};

}  // namespace ms::utcp
