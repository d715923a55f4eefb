// Contract: initial sequence numbers, RFC 6528 §3: ISN = M + F(localip, localport,
// remoteip, remoteport, secretkey), where M is a clock that ticks every 4 microseconds
// and F is a keyed hash: SipHash-2-4 from libsodium (crypto_shorthash), with a random
// key per stack. Time is injected, like everywhere in UTCP. Tests may substitute a
// fixed source to make sequence numbers predictable.
#pragma once

#include <array>
#include <cstdint>
#include <functional>

#include "utcp/seq.hpp"
#include "utcp/tuple.hpp"

namespace ms::utcp {

class IsnGenerator {
public:
    IsnGenerator();  // random key
    explicit IsnGenerator(const std::array<std::uint8_t, 16>& key) : key_(key) {}
    [[nodiscard]] Seq32 operator()(const FourTuple& tuple, std::uint64_t now_ms) const;

private:
    std::array<std::uint8_t, 16> key_{};
};

// What the stack calls for a new connection's ISS.
using IsnSource = std::function<Seq32(const FourTuple&, std::uint64_t now_ms)>;

}  // namespace ms::utcp
