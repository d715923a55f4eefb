#include "utcp/syn_cookie.hpp"

#include <sodium.h>

#include <cstring>

#include "utcp/clock.hpp"

namespace ms::utcp {
namespace {

constexpr std::uint32_t kCountMask = 0xff;
constexpr std::uint32_t kDataMask = 0xffffff;
constexpr std::uint32_t kNoWindowScale = 0xf;
constexpr std::uint32_t kSackBit = 1u << 4;
constexpr std::uint32_t kEcnBit = 1u << 5;

}  // namespace

// count = UINT32_MAX: H1, which depends on the 4-tuple alone.
std::uint32_t SynCookies::hash(const FourTuple& t, std::uint32_t count) const {
    std::array<std::uint8_t, 40> input{};
    std::memcpy(input.data(), t.local.bytes.data(), 16);
    std::memcpy(input.data() + 16, t.remote.bytes.data(), 16);
    std::memcpy(input.data() + 32, &t.local_port, 2);
    std::memcpy(input.data() + 34, &t.remote_port, 2);
    std::memcpy(input.data() + 36, &count, 4);
    std::uint8_t out[crypto_shorthash_BYTES];
    crypto_shorthash(out, input.data(), input.size(), key_.data());
    std::uint32_t h;
    std::memcpy(&h, out, sizeof h);
    return h;
}

Seq32 SynCookies::make(const FourTuple& t, Seq32 peer_isn, std::uint16_t mss, std::uint64_t now_us) const {
    std::uint32_t index = 0;
    while (index + 1 < kMssTable.size() && kMssTable[index + 1] <= mss) ++index;
    const auto count = static_cast<std::uint32_t>(ms_from_us(now_us) / kTickMs) & kCountMask;
    const std::uint32_t data = (hash(t, count) + index) & kDataMask;
    return Seq32(hash(t, UINT32_MAX) + peer_isn.value() + (count << 24) + data);
}

std::optional<std::uint16_t> SynCookies::check(const FourTuple& t, Seq32 peer_isn, Seq32 iss, std::uint64_t now_us) const {
    const std::uint32_t diff = iss.value() - hash(t, UINT32_MAX) - peer_isn.value();
    const std::uint32_t count = diff >> 24;
    const auto now = static_cast<std::uint32_t>(ms_from_us(now_us) / kTickMs) & kCountMask;
    if (((now - count) & kCountMask) >= kTicksValid) return std::nullopt;  // too old (or from the future)
    const std::uint32_t index = (diff - hash(t, count)) & kDataMask;
    if (index >= kMssTable.size()) return std::nullopt;
    return kMssTable[index];
}

std::uint32_t SynCookies::encode_options(std::uint32_t tsval, const CookieOptions& o) {
    std::uint32_t bits = o.window_scale ? std::min<std::uint32_t>(*o.window_scale, 14) : kNoWindowScale;
    if (o.sack) bits |= kSackBit;
    if (o.ecn) bits |= kEcnBit;
    const std::uint32_t mask = (1u << kTsBits) - 1;
    std::uint32_t out = (tsval & ~mask) | bits;
    if (out > tsval) out -= mask + 1;
    return out;
}

CookieOptions SynCookies::decode_options(std::uint32_t tsecr, std::uint16_t mss) {
    CookieOptions o;
    o.mss = mss;
    const std::uint32_t scale = tsecr & kNoWindowScale;
    if (scale != kNoWindowScale) o.window_scale = static_cast<std::uint8_t>(scale);
    o.sack = (tsecr & kSackBit) != 0;
    o.ecn = (tsecr & kEcnBit) != 0;
    return o;
}

}  // namespace ms::utcp
