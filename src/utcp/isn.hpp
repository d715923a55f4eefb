// Contract: initial sequence numbers, RFC 6528 §3: ISN = M + F(localip, localport,
// remoteip, remoteport, secretkey), where M is a clock that ticks every 4 microseconds
// and F is a keyed hash: SipHash-2-4 from libsodium (crypto_shorthash), with a random
// key per stack. Time is injected, like everywhere in UTCP. Tests may substitute a
// fixed source to make sequence numbers predictable.
#pragma once

#include <array>
#include <cstdint>
#include <functional>

#include "utcp/secrets.hpp"
#include "utcp/seq.hpp"
#include "utcp/tuple.hpp"

namespace ms::utcp {

class IsnGenerator {
public:
    explicit IsnGenerator(const SecretKey& key) : key_(key) {}  // secrets.hpp draws one
    [[nodiscard]] Seq32 operator()(const FourTuple& tuple, std::uint64_t now_us) const;

private:
    SecretKey key_;
};

// What the stack calls for a new connection's ISS.
using IsnSource = std::function<Seq32(const FourTuple&, std::uint64_t now_us)>;

}  // namespace ms::utcp
