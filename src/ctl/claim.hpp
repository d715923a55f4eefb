// Contract: a claim's 3-tuple (protocol, address, port) as the daemon and the client
// library handle it, and its conversions to and from the protocol's fixed layout
// (ctl::Tuple, protocol.hpp).
#pragma once

#include <cstdint>

#include "ctl/protocol.hpp"
#include "wire/bytes.hpp"

namespace ms::ctl {

struct Claim {
    std::uint8_t protocol = 0;
    wire::IpAddr addr;
    std::uint16_t port = 0;
    friend bool operator==(const Claim&, const Claim&) = default;
};

[[nodiscard]] Tuple to_tuple(const Claim& c);
[[nodiscard]] Claim from_tuple(const Tuple& t);

}  // namespace ms::ctl
