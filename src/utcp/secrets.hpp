// Contract: a stack's secret keys, drawn once from libsodium's random source: the key
// of RFC 6528's ISN hash, of the SYN cookies (RFC 4987), of the Fast Open cookies
// (RFC 7413 §4.1.2) and of the IPv6 flow labels (RFC 6437 §3). Drawing them is the one
// step of making a stack that can fail, so it is a function of its own; everything the
// keys are given to is then infallible.
#pragma once

#include <array>
#include <cstdint>

#include "base/result.hpp"

namespace ms::utcp {

using SecretKey = std::array<std::uint8_t, 16>;

struct StackSecrets {
    SecretKey isn{};
    SecretKey syn_cookies{};
    SecretKey fast_open{};
    std::uint64_t flow_label = 0;
};

enum class SecretsError : std::uint8_t {
    no_random_source,  // libsodium could not initialise its random source
};
[[nodiscard]] const char* to_string(SecretsError e);

[[nodiscard]] base::Result<StackSecrets, SecretsError> draw_secrets();

}  // namespace ms::utcp
