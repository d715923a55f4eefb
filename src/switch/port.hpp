// Contract: a switch port as the switch holds it: its shared region, and for each ring
// pair the switch-side ring views, the two eventfds and the counters. A port is failed,
// for good, the first time one of its rings latches a RingFault; a failed port is
// neither polled nor delivered to, and the fault is counted on the ring that saw it.
#pragma once

#include <atomic>
#include <memory>
#include <vector>

#include "ring/region.hpp"
#include "ring/switch_ring.hpp"
#include "switch/counters.hpp"
#include "switch/registry.hpp"

namespace ms::sw {

struct Port;

struct PortRing {
    PortRing(Port& owner_port, const ring::Region& region, PortId port_id, std::uint32_t pair_index,
             std::uint32_t owner_worker)
        : port_object(&owner_port), port(port_id), pair(pair_index), owner(owner_worker), tx(region, pair_index),
          rx(region, pair_index) {}

    Port* port_object;
    PortId port;
    std::uint32_t pair;
    std::uint32_t owner;    // index of the worker that polls tx and fills rx
    ring::SwitchTxRing tx;
    ring::SwitchRxRing rx;
    ring::EventFd to_switch;  // the application kicks the switch
    ring::EventFd to_app;     // the switch kicks the application
    RingStats stats;
};

struct Port {
    // `failed_flag` lives in the switch's dense array of flags, one byte per port, so
    // that the per-frame check never misses the cache however many ports there are.
    Port(PortId port_id, ring::Region port_region, std::atomic<bool>& failed_flag)
        : id(port_id), region(std::move(port_region)), failed(failed_flag) {}

    PortId id;
    ring::Region region;
    std::vector<std::unique_ptr<PortRing>> rings;
    std::atomic<bool>& failed;

    // Records the fault of `r` (latched in its ring views) and fails the port.
    void fail(PortRing& r, ring::RingFault fault) {
        r.stats.faults[static_cast<std::size_t>(fault)].add();
        failed.store(true, std::memory_order_relaxed);
    }
    [[nodiscard]] bool is_failed() const { return failed.load(std::memory_order_relaxed); }
};

}  // namespace ms::sw
