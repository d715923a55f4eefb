// Contract: the switch's view of a NIC attachment. A NIC has one or more queues; each
// queue is owned by one worker and has a receive side (frames from the wire, in memory
// the switch may read but applications never see) and a transmit side. The AF_XDP
// attachment (src/nic) and the in-memory MemoryNic below implement it.
#pragma once

#include <memory>
#include <vector>

#include "ring/region.hpp"
#include "sw/frame_queue.hpp"
#include "wire/bytes.hpp"
#include "wire/segmentation.hpp"

namespace ms::sw {

// What became of a super-segment handed to a NIC's segmentation offload.
enum class SuperTx : std::uint8_t {
    sent,
    busy,   // no room now (a full socket buffer): the caller keeps it and tries later
    failed  // the kernel refused it; it is lost (counted by the caller)
};

class NicQueue {
public:
    virtual ~NicQueue() = default;

    // Frames received and not yet released; frame(k) stays valid until rx_release.
    [[nodiscard]] virtual std::uint32_t rx_available() = 0;
    [[nodiscard]] virtual wire::Bytes rx_frame(std::uint32_t k) = 0;
    virtual void rx_release(std::uint32_t n) = 0;

    // Room to transmit; tx_buffer(k) has kBufferSize bytes; tx_commit sends n frames.
    [[nodiscard]] virtual std::uint32_t tx_space() = 0;
    [[nodiscard]] virtual wire::MutBytes tx_buffer(std::uint32_t k) = 0;
    virtual void tx_set_length(std::uint32_t k, std::uint16_t len) = 0;
    virtual void tx_commit(std::uint32_t n) = 0;

    // Segmentation offload: true if tx_super hands a super-segment to the interface's own
    // GSO/TSO (docs/DESIGN.md §4); false, and the switch cuts super-segments into frames itself.
    [[nodiscard]] virtual bool offloads_segmentation() const { return false; }
    // Sends one validated super-segment, after every frame committed before it.
    [[nodiscard]] virtual SuperTx tx_super(const wire::SuperSegment&) { return SuperTx::failed; }

    // A descriptor that becomes readable when frames arrive, for the worker's epoll;
    // arm_wakeup() asks for it and returns true if frames are already there.
    [[nodiscard]] virtual int wakeup_fd() const = 0;
    [[nodiscard]] virtual bool arm_wakeup() = 0;
    virtual void disarm_wakeup() = 0;
};

class Nic {
public:
    virtual ~Nic() = default;
    [[nodiscard]] virtual std::size_t queue_count() const = 0;
    [[nodiscard]] virtual NicQueue& queue(std::size_t i) = 0;
    [[nodiscard]] virtual wire::MacAddr mac() const = 0;
};

// An in-memory NIC for tests and the in-process benchmark. The "wire" side, the far
// end of each queue, is driven by a test or generator thread: inject() frames that the
// switch will receive, and collect() frames that the switch transmitted.
class MemoryNic final : public Nic {
public:
    MemoryNic(std::size_t queues, std::uint32_t depth, wire::MacAddr mac);
    ~MemoryNic() override;
    MemoryNic(const MemoryNic&) = delete;
    MemoryNic& operator=(const MemoryNic&) = delete;

    [[nodiscard]] std::size_t queue_count() const override { return queues_.size(); }
    [[nodiscard]] NicQueue& queue(std::size_t i) override;
    [[nodiscard]] wire::MacAddr mac() const override { return mac_; }

    // Wire side of queue q (one thread per queue).
    [[nodiscard]] FrameQueue& to_switch(std::size_t q);    // inject: producer
    [[nodiscard]] FrameQueue& from_switch(std::size_t q);  // collect: consumer
    // Kicks the owning worker if it sleeps; call after committing to to_switch(q).
    void kick(std::size_t q);

private:
    class MemoryQueue;
    std::vector<std::unique_ptr<MemoryQueue>> queues_;
    wire::MacAddr mac_;
};

}  // namespace ms::sw
