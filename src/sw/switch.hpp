// Contract: the switch (docs/DESIGN.md §4). It owns the ports, the registry and the worker
// threads, and forwards between the ports and a Nic. Each ring pair and each NIC queue
// is owned by exactly one worker, so every ring has one producer and one consumer and
// the data path takes no locks. A worker busy-polls while there is traffic and, after
// `spin_rounds` empty rounds, arms every need-wakeup flag it owns and sleeps in epoll:
// an idle switch uses no CPU.
//
// Ports attach and detach at any time, from a control thread. The set of ports is an
// immutable Topology, replaced as a whole and read by the workers lock-free (qsbr.hpp);
// a detached port's memory is freed only once no worker can still be using it.
// Destination ids are stable for a port's life: port p's ring r is destination
// nic_queues + p * max_ring_pairs + r.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/result.hpp"
#include "sw/forwarder.hpp"
#include "sw/nic.hpp"
#include "sw/port.hpp"
#include "sw/qsbr.hpp"
#include "sw/registry.hpp"
#include "sw/validator.hpp"

namespace ms::sw {

struct SwitchConfig {
    std::uint32_t workers = 1;
    std::uint32_t max_ports = 1024;
    std::uint32_t max_ring_pairs = 8;   // per port
    std::uint32_t batch = 256;          // frames taken from one source at a time
    std::uint32_t spin_rounds = 2000;   // empty polling rounds before sleeping
    std::uint32_t inbox_depth = 1024;   // frames between two workers
    int sleep_timeout_ms = 100;         // upper bound on one sleep, in case a kick is lost
    std::uint32_t chain_wait_limit_ms = 1000;  // how long a half-published tx chain may wait
    std::uint32_t mtu = ring::kMaxFrameSize - 18;  // the interface's; frames from ports must fit it
    FaultSpec fault;                    // applied to frames delivered to ports; off by default
    bool huge_pages = false;            // ask for transparent huge pages on port rings (DESIGN §12)
};

enum class SwitchError : std::uint8_t {
    no_workers,      // SwitchConfig::workers is 0
    bad_max_ports,   // max_ports out of 1..kMaxPorts
    bad_ring_pairs,  // max_ring_pairs out of 1..ring::kMaxRingPairs
    bad_batch,       // batch out of 1..kMaxBatch
    no_nic_queues,   // the NIC has no queues
    epoll,           // a worker's sleep set could not be made, or refused a port's eventfd
    port_geometry,   // a port's ring pairs, slots or data area out of range
    full,            // max_ports ports are attached
    port_memory,     // the port's region could not be made (memfd, mmap)
};

// The cause, and the message a user sees (with the bounds, or the system's reason).
struct SwitchFailure {
    SwitchError error;
    std::string detail;
};

struct PortConfig {
    std::uint32_t ring_pairs = 1;
    std::uint32_t slots_per_ring = 1024;
    std::uint64_t data_bytes = 0;  // the region's data area
};

// What the per-frame path needs about a port, dense by PortId: its rx rings are the
// destinations first_dest .. first_dest + ring_count - 1; ring_count 0 means no port.
struct PortRoute {
    std::uint32_t first_dest = 0;
    std::uint32_t ring_count = 0;
};

struct Topology {
    std::vector<Destination> destinations;
    std::vector<PortRoute> routes;                       // by PortId
    std::vector<std::vector<PortRing*>> rings_by_worker;
};

// A port as a hand-over carries it to the next daemon (docs/DESIGN.md §6, "Hand-over"):
// its memory, and each ring pair's eventfds, private indices and counters.
struct PortState {
    struct RingPair {
        int to_switch_fd = -1;
        int to_app_fd = -1;
        ring::RingIndices tx;
        ring::RingIndices rx;
        StatsSnapshot stats;
    };
    PortId id = kNoPort;
    std::uint32_t generation = 0;
    bool failed = false;
    int region_fd = -1;
    std::vector<RingPair> rings;
};

class Worker;

class Switch {
public:
    // Checks the configuration and makes the workers (not started).
    [[nodiscard]] static base::Result<std::unique_ptr<Switch>, SwitchFailure> create(Nic& nic, SwitchConfig config);
    ~Switch();
    Switch(const Switch&) = delete;
    Switch& operator=(const Switch&) = delete;

    // Before or after start(). Fails with full when max_ports are attached, port_geometry
    // for a geometry out of range, or port_memory and epoll when the system refuses.
    [[nodiscard]] base::Result<PortId, SwitchFailure> attach_port(const PortConfig& config);
    // Removes the port, its claims and its memory. False if there is no such port.
    bool detach_port(PortId id);
    // Takes up a port a previous daemon handed over, at its id (its descriptors are the
    // switch's from now on, closed on failure). Fails with port_geometry if its memory or
    // indices do not fit, full if the id is taken or beyond max_ports.
    [[nodiscard]] base::Result<PortId, SwitchFailure> adopt_port(PortState state);
    // The ports as a hand-over carries them; the descriptors stay the switch's. Call with
    // the workers stopped.
    [[nodiscard]] std::vector<PortState> hand_over_ports() const;
    // Starts the workers; after stop() they may start again.
    void start();
    void stop();

    [[nodiscard]] Registry& registry() { return registry_; }
    [[nodiscard]] const wire::MacAddr& nic_mac() const { return tx_link_.nic_mac; }
    [[nodiscard]] bool has_port(PortId id) const;
    // The port, for the control thread; it stays valid until detach_port(id). Requires
    // an attached id (has_port): anything else is a caller's bug, and aborts.
    [[nodiscard]] Port& port(PortId id);
    [[nodiscard]] std::vector<PortId> port_ids() const;
    [[nodiscard]] StatsSnapshot port_stats(PortId id) const;
    [[nodiscard]] StatsSnapshot nic_stats() const;
    [[nodiscard]] std::size_t nic_queue_count() const { return nic_.queue_count(); }
    // One NIC queue's counters (rx: frames taken from it; tx: frames given to it), and the
    // worker that owns it. Requires q < nic_queue_count().
    [[nodiscard]] StatsSnapshot nic_queue_stats(std::size_t q) const;
    [[nodiscard]] std::uint32_t nic_queue_worker(std::size_t q) const {
        return static_cast<std::uint32_t>(q % config_.workers);
    }
    // Frames dropped between workers: a full inbox, or a port detached in flight.
    [[nodiscard]] StatsSnapshot handoff_stats() const;
    [[nodiscard]] const SwitchConfig& config() const { return config_; }

    // Capture (msctl capture): a copy of every frame a port sends or receives. At most
    // one capture per port. A capture is named by its ticket, never by the port alone:
    // only the ticket's holder can drain or stop it, and once the port detaches (its id
    // may then be reused by another owner) the ticket names nothing.
    struct CaptureTicket {
        PortId port = kNoPort;
        std::uint64_t id = 0;
    };
    // Nothing if there is no such port or a capture of it runs already.
    [[nodiscard]] std::optional<CaptureTicket> start_capture(PortId id, std::uint32_t depth = 4096);
    // False once the capture has ended (stopped, or its port detached).
    [[nodiscard]] bool capture_running(const CaptureTicket& t) const;
    // Hands the frames captured so far to `sink`; returns how many.
    std::size_t drain_capture(const CaptureTicket& t, const std::function<void(wire::Bytes, TapDirection)>& sink);
    // Frames the capture queue could not take since the capture started.
    [[nodiscard]] std::uint64_t capture_overflows(const CaptureTicket& t) const;
    void stop_capture(const CaptureTicket& t);

private:
    Switch(Nic& nic, SwitchConfig config);

    struct Capture {
        std::uint64_t ticket = 0;
        std::vector<std::unique_ptr<FrameQueue>> queues;  // by ring pair
        std::uint64_t overflows_at_start = 0;
    };
    void stop_capture_locked(PortId id);
    // The capture the ticket names, if it still runs; under control_.
    [[nodiscard]] const Capture* find_capture(const CaptureTicket& t) const;

    friend class Worker;
    [[nodiscard]] std::uint32_t first_dest(PortId id) const {
        return static_cast<std::uint32_t>(nic_.queue_count() + std::size_t{id} * config_.max_ring_pairs);
    }
    [[nodiscard]] std::shared_ptr<const Topology> build_topology() const;
    // Makes port `id`'s ring pairs over `port`'s region, each watched by its owner, and
    // publishes the port; the status that refuses it otherwise.
    base::Result<PortId, SwitchFailure> install_port(std::unique_ptr<Port> port, std::uint32_t ring_pairs,
                                                     std::vector<PortState::RingPair>* handed_over);

    Nic& nic_;
    TxLink tx_link_;  // the NIC's MAC and the MTU, which frames from ports must fit
    SwitchConfig config_;
    Qsbr qsbr_;
    Registry registry_;
    mutable std::mutex control_;                   // serialises attach and detach
    std::vector<std::unique_ptr<Port>> ports_;     // by PortId; null when free
    std::uint32_t generations_ = 0;                // the last Port::generation given, under control_
    std::unique_ptr<std::atomic<bool>[]> failed_;  // by PortId
    std::unique_ptr<RingStats[]> nic_stats_;       // by NIC queue
    Published<Topology> topology_;
    std::map<PortId, Capture> captures_;           // under control_
    std::uint64_t capture_tickets_ = 0;            // the last ticket given, under control_
    std::vector<std::unique_ptr<Worker>> workers_;
    std::vector<std::thread> threads_;
    bool started_ = false;
};

}  // namespace ms::sw
