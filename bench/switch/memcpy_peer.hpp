// Contract: the upper bound for the switch benchmark: the same thread layout as the rig's
// rx mode (a driver thread feeding and draining, one forwarding thread), but the
// forwarding thread only copies each frame from one ring to another, with no parsing,
// validation or lookup.
#pragma once

#include <cstdint>

namespace ms::bench {

struct MemcpyResult {
    std::uint64_t frames = 0;
    double seconds = 0;
};

[[nodiscard]] MemcpyResult run_memcpy_peer(std::uint16_t frame_size, double seconds, double warmup_seconds);

}  // namespace ms::bench
