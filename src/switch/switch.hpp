// Contract: the switch (DESIGN §4). It owns the ports, the registry and the worker
// threads, and forwards between the ports and a Nic. Ports are added before start();
// each ring pair and each NIC queue is owned by exactly one worker, round-robin, so
// every ring has one producer and one consumer and the data path takes no locks.
// A worker busy-polls while there is traffic and, after `spin_rounds` empty rounds,
// arms every need-wakeup flag it owns and sleeps in epoll: an idle switch uses no CPU.
#pragma once

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "switch/forwarder.hpp"
#include "switch/nic.hpp"
#include "switch/port.hpp"
#include "switch/registry.hpp"

namespace ms::sw {

struct SwitchConfig {
    std::uint32_t workers = 1;
    std::uint32_t max_ports = 1024;
    std::uint32_t batch = 256;          // frames taken from one source at a time
    std::uint32_t spin_rounds = 2000;   // empty polling rounds before sleeping
    std::uint32_t inbox_depth = 1024;   // frames between two workers
    int sleep_timeout_ms = 100;         // upper bound on one sleep, in case a kick is lost
};

struct PortConfig {
    std::uint32_t ring_pairs = 1;
    std::uint32_t slots_per_ring = 1024;
};

class Worker;

class Switch {
public:
    Switch(Nic& nic, SwitchConfig config);
    ~Switch();
    Switch(const Switch&) = delete;
    Switch& operator=(const Switch&) = delete;

    // Before start(). Throws std::length_error beyond max_ports.
    PortId add_port(const PortConfig& config);
    void start();
    void stop();

    [[nodiscard]] Registry& registry() { return registry_; }
    [[nodiscard]] const wire::MacAddr& nic_mac() const { return nic_mac_; }
    [[nodiscard]] std::size_t port_count() const { return ports_.size(); }
    [[nodiscard]] Port& port(PortId id) { return *ports_.at(id); }
    [[nodiscard]] StatsSnapshot port_stats(PortId id) const;
    [[nodiscard]] StatsSnapshot nic_stats() const;
    // Frames dropped because a worker's inbox to another worker was full.
    [[nodiscard]] StatsSnapshot handoff_stats() const;
    [[nodiscard]] const SwitchConfig& config() const { return config_; }

private:
    friend class Worker;
    void build_destinations();

    Nic& nic_;
    wire::MacAddr nic_mac_;
    SwitchConfig config_;
    Registry registry_;
    // What the per-frame path needs about a port, dense by PortId: its rx rings are the
    // destinations first_dest .. first_dest + ring_count - 1.
    struct PortRoute {
        std::uint32_t first_dest = 0;
        std::uint32_t ring_count = 0;
    };

    std::vector<std::unique_ptr<Port>> ports_;
    std::unique_ptr<std::atomic<bool>[]> failed_;  // by PortId
    std::vector<PortRoute> routes_;                // by PortId, built by start()
    std::vector<Destination> destinations_;  // NIC queues first, then port rx rings
    std::unique_ptr<RingStats[]> nic_stats_;  // by NIC queue
    std::vector<std::unique_ptr<Worker>> workers_;
    std::vector<std::thread> threads_;
    bool started_ = false;
};

}  // namespace ms::sw
