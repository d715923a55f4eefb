// Contract: the 4-tuple that names a TCP connection (or a UDP flow), from the local
// stack's point of view, and its hash for the connection tables.
#pragma once

#include <cstdint>
#include <functional>

#include "wire/bytes.hpp"

namespace ms::utcp {

struct FourTuple {
    wire::IpAddr local;
    wire::IpAddr remote;
    std::uint16_t local_port = 0;
    std::uint16_t remote_port = 0;
    friend bool operator==(const FourTuple&, const FourTuple&) = default;
};

struct FourTupleHash {
    std::size_t operator()(const FourTuple& t) const {
        // A multiplicative mix of every word: cheap on every segment. Unkeyed, so a peer
        // that picks its ports could lengthen chains; the SYN queue limit bounds how many
        // entries one listener can make.
        std::uint64_t h = (std::uint64_t{t.local_port} << 16) | t.remote_port;
        for (int i = 0; i < 2; ++i) {
            h = (h ^ t.local.word(i)) * 0x9e3779b97f4a7c15ull;
            h = (h ^ t.remote.word(i)) * 0x9e3779b97f4a7c15ull;
        }
        return static_cast<std::size_t>(h ^ (h >> 29));
    }
};

}  // namespace ms::utcp
