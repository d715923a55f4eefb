// Contract: a switch port as the switch holds it: its shared region, and for each ring
// pair the switch-side ring views, the two eventfds and the counters. A port is failed,
// for good, the first time one of its rings latches a RingFault; a failed port is
// neither polled nor delivered to, and the fault is counted on the ring that saw it.
#pragma once

#include <atomic>
#include <cstring>
#include <memory>
#include <vector>

#include "ring/region.hpp"
#include "ring/switch_ring.hpp"
#include "sw/counters.hpp"
#include "sw/fault.hpp"
#include "sw/frame_queue.hpp"
#include "sw/registry.hpp"

namespace ms::sw {

struct Port;

struct PortRing {
    PortRing(Port& owner_port, const ring::Region& region, PortId port_id, std::uint32_t pair_index,
             std::uint32_t owner_worker)
        : port_object(&owner_port),
          port(port_id),
          pair(pair_index),
          owner(owner_worker),
          tx(region, pair_index),
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
    // While a capture runs (msctl capture), the owner worker copies every frame the ring
    // carries into this queue; null otherwise. The switch owns the queue.
    std::atomic<FrameQueue*> tap{nullptr};
    Counter tap_overflows;  // frames a full capture queue could not take
    // Set when the switch runs with --fault: what is delivered to rx passes through it.
    std::unique_ptr<FaultInjector> fault;
    // When the owner worker first found tx's current chain half published (0: none waits).
    std::uint64_t chain_waiting_since_ns = 0;
};

enum class TapDirection : std::uint32_t { to_application = 0, from_application = 1 };

// Copies one frame into the ring's capture queue, if a capture runs. A frame longer
// than a queue cell cannot occur (every staged frame is at most kMaxFrameSize), but
// were it to, it is counted as an overflow, never written past the cell.
inline void tap_frame(PortRing& r, wire::Bytes frame, TapDirection direction) {
    FrameQueue* q = r.tap.load(std::memory_order_acquire);
    if (!q) return;
    FrameCell& cell = q->producer_cell(0);
    if (q->space() == 0 || !cell.store(frame)) {
        r.tap_overflows.add();
        return;
    }
    cell.tag = static_cast<std::uint32_t>(direction);
    q->commit(1);
}

struct Port {
    // `failed_flag` lives in the switch's dense array of flags, one byte per port, so
    // that the per-frame check never misses the cache however many ports there are.
    Port(PortId port_id, std::uint32_t port_generation, ring::Region port_region, std::atomic<bool>& failed_flag)
        : id(port_id), generation(port_generation), region(std::move(port_region)), failed(failed_flag) {}

    PortId id;
    // Unique for the switch's life: a port id is reused, a generation never is, so that
    // frames in flight for a detached port never reach the next owner of its id.
    std::uint32_t generation;
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
