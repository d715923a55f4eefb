// Contract: the second pass of VALE-style batch forwarding (docs/DESIGN.md §4), for one worker.
// The first pass (Worker) classifies a whole batch and calls stage() once per frame that
// survives, naming its destination. flush() then visits each destination once: it
// reserves room, copies every frame chained to it, publishes once and kicks once. A
// destination owned by another worker is reached through that worker's inbox, so that
// every ring keeps a single producer and no lock is taken. The cost per frame does not
// depend on how many destinations exist: only destinations touched by the batch are
// visited.
#pragma once

#include <functional>
#include <vector>

#include "sw/frame_queue.hpp"
#include "sw/nic.hpp"
#include "sw/port.hpp"

namespace ms::sw {

inline constexpr std::uint32_t kMaxBatch = 512;

// Where a destination id leads. Neither ring nor nic: the id is vacant (its port was
// detached while frames for it were in flight), and frames for it are dropped.
struct Destination {
    Port* port = nullptr;          // for a port ring
    PortRing* ring = nullptr;      // for a port ring
    NicQueue* nic = nullptr;       // for a NIC transmit queue
    RingStats* stats = nullptr;    // where delivery is counted
    std::uint32_t owner = 0;       // the worker that may produce into it
    std::uint32_t generation = 0;  // of the port (Port::generation); 0 for a NIC queue
};

class Forwarder {
public:
    using KickWorker = std::function<void(std::uint32_t worker)>;

    // `destination_count` bounds every destination id the worker will stage.
    Forwarder(std::uint32_t self, std::size_t destination_count, std::vector<FrameQueue*> outboxes, KickWorker kick_worker,
              RingStats& handoff_stats);

    // The destination table of the current topology; call at each quiescent point.
    void set_destinations(const std::vector<Destination>& destinations) { destinations_ = &destinations; }

    // Copies a frame the switch must not read in place (a port's tx buffer) into
    // switch-owned memory that stays valid until flush().
    [[nodiscard]] wire::Bytes copy_in(wire::Bytes frame);
    // Chains one frame to a destination. `frame` must stay valid until flush(). A frame
    // longer than ring::kMaxFrameSize is dropped here (counted as oversize): every
    // frame that reaches any queue, ring or NIC passes this one bound.
    void stage(wire::Bytes frame, std::uint32_t dest);
    // Cuts a validated super-segment into frames in switch memory (checksums computed
    // while copying) and chains them to `dest`; `tap`: also show them to its capture.
    // Call right after flush(), with only the super-segment's header copied in since, so
    // that they fit (static_asserts in forwarder.cpp).
    void stage_super(const wire::SuperSegment& s, std::uint32_t dest, PortRing* tap);
    // Takes one frame that another worker handed over in an inbox cell. Every field of
    // the cell is checked: a destination id out of range, or one whose generation has
    // changed since (its port detached, the id maybe reused), drops the frame.
    void stage_handed_over(const FrameCell& cell);
    // Delivers everything staged; returns how many frames left this worker.
    std::uint32_t flush();
    // Delivers what a ring's fault injector has ready now (frames it delayed or held).
    std::uint32_t release_faulty(PortRing& r);
    // Kicks the applications that sleep on rings published to since the last call.
    void kick_sleepers();

private:
    struct Staged {
        const std::uint8_t* data;
        std::uint16_t len;
        std::uint32_t next;  // next frame for the same destination, or kEnd
    };
    static constexpr std::uint32_t kEnd = 0xffffffff;

    std::uint32_t deliver_to_port(const Destination& d, std::uint32_t first, std::uint32_t count);
    // Writes a frame into the k-th free slot of a port's rx ring; false on a bad slot.
    bool put_rx(PortRing& r, std::uint32_t k, wire::Bytes frame);
    // Publishes n frames (bytes in all) or, if the ring latched a fault, fails the port
    // and returns false.
    bool finish_rx(PortRing& r, std::uint32_t n, std::uint64_t bytes);
    std::uint32_t deliver_to_nic(const Destination& d, std::uint32_t first);
    std::uint32_t deliver_to_inbox(std::uint32_t owner, std::uint32_t dest, std::uint32_t first);
    void drop_rest(RingStats& stats, DropReason reason, std::uint32_t from);
    void prefetch(std::uint32_t dest) const;

    std::uint32_t self_;
    const std::vector<Destination>* destinations_ = nullptr;
    std::vector<FrameQueue*> outboxes_;  // by worker; null for self
    KickWorker kick_worker_;
    RingStats& handoff_stats_;  // this worker's own: drops on a full inbox or a vacant destination

    std::vector<Staged> frames_;
    std::uint32_t count_ = 0;
    std::vector<std::uint32_t> head_;  // by destination: first staged frame, or kEnd
    std::vector<std::uint32_t> tail_;
    std::vector<std::uint32_t> length_;  // by destination: frames chained
    std::vector<std::uint32_t> touched_;
    std::vector<PortRing*> published_;  // port rings that got frames in this flush
    std::vector<bool> outbox_used_;
    std::unique_ptr<std::uint8_t[]> arena_;
    std::size_t arena_used_ = 0;
};

}  // namespace ms::sw
