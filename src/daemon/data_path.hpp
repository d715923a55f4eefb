// Contract: what the control plane needs of the data path below the switch (docs/DESIGN.md §6):
// mirroring claims into the XDP program, the attachment's modes and counters, and the
// kernel's routes and neighbours. multistackd implements it over the real interface
// (NicDataPath: XDP, AF_XDP and rtnetlink); the control-protocol fuzzer and tests
// implement it in memory, so that the control plane runs without root or a NIC.
#pragma once

#include <cstdint>
#include <optional>

#include "netlink/netlink.hpp"
#include "sw/registry.hpp"

namespace ms::daemon {

struct DataPathStatus {
    bool xdp_native = false;  // false: generic (SKB) mode
    bool zero_copy = false;
    std::size_t queues = 0;
    std::uint64_t to_switch = 0;  // frames the XDP program sent to the switch
    std::uint64_t to_kernel = 0;  // and to the kernel
    bool segmentation_offload = false;  // super-segments go to the interface's GSO
    // Restarts and upgrades (docs/DESIGN.md §6, "Restarts and upgrades").
    std::uint64_t held = 0;            // claimed frames dropped while no daemon took them
    std::uint32_t restarts = 0;        // daemons on this interface that took over from one that died
    std::uint32_t upgrades = 0;        // and from one that left on purpose
    std::uint64_t first_start_s = 0;   // CLOCK_REALTIME seconds of the first of them
    std::uint32_t adopted_waiting = 0;  // claims left by the last daemon, not yet proved again
};

class DataPath {
public:
    virtual ~DataPath() = default;
    // Mirrors a claim into the kernel's claim map; false (errno set) if it refused it.
    [[nodiscard]] virtual bool mirror_claim(const sw::ClaimKey& claim) = 0;
    virtual void unmirror_claim(const sw::ClaimKey& claim) = 0;
    // How many claims the kernel's claim map can hold (the per-user budgets fit in it).
    [[nodiscard]] virtual std::uint32_t claim_capacity() const = 0;
    [[nodiscard]] virtual DataPathStatus status() const = 0;
    // Called every kHeartbeatMs: marks the daemon alive for the claims' outage limit, and
    // drops claims a previous daemon left that nobody proved in time (their number).
    virtual std::size_t beat() = 0;
    static constexpr int kHeartbeatMs = 100;
    // The next hop towards `dst` through the interface; nothing if there is no route.
    [[nodiscard]] virtual std::optional<wire::IpAddr> next_hop(const wire::IpAddr& dst) = 0;
    [[nodiscard]] virtual netlink::NeighbourState neighbour(const wire::IpAddr& next_hop, wire::MacAddr& mac) = 0;
};

}  // namespace ms::daemon
