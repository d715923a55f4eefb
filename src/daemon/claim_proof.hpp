// Contract: reads the 3-tuple a kernel socket is bound to (DESIGN §3). The socket is the
// proof that the kernel gave its owner that tuple: it must be a TCP or UDP socket of
// AF_INET or AF_INET6 (checked with SO_DOMAIN, SO_TYPE and SO_PROTOCOL) and bound to a
// port (getsockname). An IPv4-mapped IPv6 address is read as IPv4.
#pragma once

#include <optional>
#include <string>

#include "switch/registry.hpp"

namespace ms::daemon {

// The claimed tuple, or nothing with the reason in `why`.
[[nodiscard]] std::optional<sw::ClaimKey> prove_claim(int fd, std::string& why);

}  // namespace ms::daemon
