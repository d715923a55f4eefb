// Contract: one switch worker thread. It owns some NIC queues and, through the current
// Topology, some port ring pairs, and runs the first pass of forwarding for each: take a
// batch, copy port frames into switch memory, validate or classify every frame against
// one registry snapshot, and stage it to its destination; then Forwarder::flush() does
// the second pass. Frames that other workers hand it arrive in its inboxes, already
// validated. Each loop starts with a quiescent point (qsbr.hpp): no pointer into a
// topology or claim table survives from one loop to the next.
#pragma once

#include <array>
#include <atomic>
#include <vector>

#include "sw/forwarder.hpp"
#include "sw/switch.hpp"
#include "sw/validator.hpp"

namespace ms::sw {

class Worker {
public:
    // A worker owning `nic_queues`; fails (epoll) if its sleep set cannot be made.
    [[nodiscard]] static base::Result<std::unique_ptr<Worker>, SwitchFailure> create(Switch& sw, std::uint32_t index,
                                                                                     std::vector<std::size_t> nic_queues);
    ~Worker();
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    // The queue through which `from` hands this worker frames.
    [[nodiscard]] FrameQueue* inbox(std::uint32_t from) { return inboxes_[from].get(); }
    // Call after all workers exist.
    void connect(std::vector<FrameQueue*> outboxes);
    // Adds or removes a descriptor (a port ring's kick eventfd) from the sleep set;
    // safe from the control thread. watch() fails (epoll) if epoll refuses,
    // which Switch::attach_port passes on to its caller.
    [[nodiscard]] base::Result<base::Done, SwitchFailure> watch(int fd);
    void unwatch(int fd);

    void run();
    void request_stop();
    // After run() returned: it may run again.
    void clear_stop() { stop_.store(false, std::memory_order_relaxed); }
    // Wakes the worker if it sleeps (a peer filled its inbox, or the ports changed).
    void kick();
    [[nodiscard]] const RingStats& handoff_stats() const { return handoff_stats_; }

private:
    Worker(Switch& sw, std::uint32_t index, std::vector<std::size_t> nic_queues, int epoll_fd);
    [[nodiscard]] base::Result<base::Done, SwitchFailure> add_to_sleep_set(int fd);

    [[nodiscard]] std::uint32_t poll_once(const Topology& topo, const ClaimTable& claims);
    // Polls every port ring this worker owns, sharing the NIC's room fairly.
    [[nodiscard]] std::uint32_t poll_ports_fairly(const Topology& topo, const ClaimTable& claims);
    [[nodiscard]] std::uint32_t poll_port(PortRing& r, const Topology& topo, const ClaimTable& claims);
    // The frame in tx_frame_: copied, validated and staged (or counted as dropped).
    void forward_frame(PortRing& r, const Topology& topo, const ClaimTable& claims, std::uint64_t& bytes);
    // The super-segment in tx_frame_: validated, then handed to the NIC's segmentation
    // offload or cut into frames here. False if the NIC is busy: it stays in the ring.
    [[nodiscard]] bool forward_super(PortRing& r, const Topology& topo, const ClaimTable& claims, std::uint64_t& bytes);
    [[nodiscard]] std::uint32_t poll_nic(std::size_t queue, const Topology& topo, const ClaimTable& claims);
    [[nodiscard]] std::uint32_t poll_inbox(FrameQueue& q);
    // The destination id for a frame that is to be forwarded; false if the verdict
    // names a port the switch does not have.
    [[nodiscard]] bool route(const Verdict& v, const Topology& topo, std::uint32_t& dest) const;
    // Arms every kick flag and sleeps; false if the sleep ended by its timeout alone.
    bool sleep(const Topology& topo);
    [[nodiscard]] bool arm_all(const Topology& topo);
    // A chain half published waits for the rest, but not for ever: one still incomplete
    // after SwitchConfig::chain_wait_limit_ms fails its port (chain_stalled), so that an
    // application cannot keep a worker polling it.
    void bound_chain_wait(PortRing& r) const;
    void disarm_all(const Topology& topo);

    Switch& sw_;
    std::uint32_t index_;
    std::vector<std::size_t> nic_queues_;
    std::vector<std::unique_ptr<FrameQueue>> inboxes_;  // by sending worker; null for self
    std::unique_ptr<Forwarder> forwarder_;
    std::uint32_t nic_tx_dest_ = 0;  // the NIC queue this worker transmits on
    std::uint32_t nic_room_ = 0;     // what that queue can still take this round
    std::uint32_t port_quota_ = 0;   // what one port ring may take in the first pass of a round
    std::size_t next_first_ring_ = 0;        // the ring a round starts with, rotating
    std::vector<PortRing*> wanting_more_;    // rings that hit their quota this round
    ring::TxFrame tx_frame_;                 // the frame being read from a port's tx ring
    std::array<wire::Bytes, ring::kMaxChainSlots> payload_pieces_;  // a super-segment's payload
    RingStats handoff_stats_;
    ring::EventFd doorbell_;
    int epoll_fd_ = -1;
    std::atomic<bool> asleep_{false};
    std::atomic<bool> stop_{false};
};

}  // namespace ms::sw
