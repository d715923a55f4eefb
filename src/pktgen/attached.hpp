// Contract: ms-pktgen on a port of a running multistackd (through libmultistack), as
// netmap's pkt-gen runs on a VALE port. tx: claims UDP LOCAL:PORT and sends frames to a
// peer, each built with a fresh sequence number and checksums, as fast as the ring takes
// them. rx: claims UDP LOCAL:PORT and counts what arrives. Both run for a fixed time.
#pragma once

#include <string>

#include "pktgen/packet_builder.hpp"

namespace ms::pktgen {

struct AttachedConfig {
    std::string socket;
    bool transmit = true;
    wire::IpAddr local;
    std::uint16_t local_port = 9000;
    wire::IpAddr peer;
    std::uint16_t peer_port = 9;
    wire::MacAddr peer_mac;
    std::uint16_t frame_size = 60;
    double seconds = 5;
};

struct AttachedResult {
    std::uint64_t frames = 0;  // sent (tx) or received (rx)
    std::uint64_t bytes = 0;
    double seconds = 0;
};

// Fails with the library's message (daemon), or bad_frame_size.
[[nodiscard]] base::Result<AttachedResult, PktgenFailure> run_attached(const AttachedConfig& config);

}  // namespace ms::pktgen
