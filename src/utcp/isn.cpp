#include "utcp/isn.hpp"

#include <sodium.h>

#include <cstring>

namespace ms::utcp {

Seq32 IsnGenerator::operator()(const FourTuple& tuple, std::uint64_t now_us) const {
    static_assert(crypto_shorthash_KEYBYTES == 16 && crypto_shorthash_BYTES == 8);
    std::array<std::uint8_t, 36> input{};
    std::memcpy(input.data(), tuple.local.bytes.data(), 16);
    std::memcpy(input.data() + 16, tuple.remote.bytes.data(), 16);
    std::memcpy(input.data() + 32, &tuple.local_port, 2);
    std::memcpy(input.data() + 34, &tuple.remote_port, 2);
    std::uint8_t hash[crypto_shorthash_BYTES];
    crypto_shorthash(hash, input.data(), input.size(), key_.data());
    std::uint32_t f;
    std::memcpy(&f, hash, sizeof f);
    const auto m = static_cast<std::uint32_t>(now_us / 4);  // 4 µs ticks
    return Seq32(m + f);
}

}  // namespace ms::utcp
