// Contract: an in-process test rig, the set-up of the paper's Figure 4 in one process.
// A Switch with a MemoryNic and N ports, each port claiming UDP (or TCP)
// 198.18.0.1:(10000 + i). One driver thread plays the applications and the wire:
//   tx: every port sends frames to 198.18.0.2 through the switch to the NIC, and the
//       driver counts what leaves the NIC;
//   rx: the NIC receives frames spread over the N claimed ports, and the driver counts
//       what each port receives.
// Frames are built by PacketBuilder; with `rebuild` every frame is built anew (fresh
// sequence number and checksum), otherwise each buffer is built once and resent as
// pkt-gen does, so that the generator stays off the switch's critical path. The switch
// validates, looks up and copies every frame either way.
#pragma once

#include <cstdint>
#include <string>

#include "pktgen/packet_builder.hpp"

namespace ms::pktgen {

enum class RigMode { tx, rx };

struct RigConfig {
    RigMode mode = RigMode::tx;
    Proto proto = Proto::udp;
    std::uint32_t ports = 1;
    std::uint16_t frame_size = 60;
    std::uint32_t workers = 1;
    std::uint32_t slots_per_ring = 1024;
    bool rebuild = false;
    bool huge_pages = false;  // SwitchConfig::huge_pages
    double seconds = 2.0;
    double warmup_seconds = 0.3;
};

struct RigResult {
    std::uint64_t sent = 0;      // frames the generator offered during the measurement
    std::uint64_t received = 0;  // frames that reached the far side
    std::uint64_t switch_drops = 0;
    std::uint64_t sequence_errors = 0;  // frames received out of each flow's order
    double seconds = 0;
    [[nodiscard]] double mpps() const { return static_cast<double>(received) / seconds / 1e6; }
    // Gbit/s of frame bytes, CRC excluded.
    [[nodiscard]] double gbps(std::uint16_t frame_size) const { return mpps() * frame_size * 8 / 1e3; }
};

// Fails if the rig cannot be set up (no_ports, bad_frame_size, rig_setup).
[[nodiscard]] base::Result<RigResult, PktgenFailure> run_rig(const RigConfig& config);
[[nodiscard]] std::string to_string(RigMode m);

}  // namespace ms::pktgen
