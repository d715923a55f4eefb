#include "sw/nic.hpp"

#include <atomic>

namespace ms::sw {

class MemoryNic::MemoryQueue final : public NicQueue {
public:
    explicit MemoryQueue(std::uint32_t depth) : rx_(depth), tx_(depth) {}

    std::uint32_t rx_available() override { return rx_.available(); }
    wire::Bytes rx_frame(std::uint32_t k) override {
        return rx_.consumer_cell(k).frame().value_or(wire::Bytes{});  // empty: dropped as malformed
    }
    void rx_release(std::uint32_t n) override { rx_.release(n); }

    std::uint32_t tx_space() override { return tx_.space(); }
    wire::MutBytes tx_buffer(std::uint32_t k) override { return {tx_.producer_cell(k).data, sizeof(FrameCell::data)}; }
    void tx_set_length(std::uint32_t k, std::uint16_t len) override { tx_.producer_cell(k).len = len; }
    void tx_commit(std::uint32_t n) override { tx_.commit(n); }

    int wakeup_fd() const override { return doorbell_.fd(); }
    bool arm_wakeup() override {
        armed_.store(true, std::memory_order_seq_cst);
        return rx_.available() > 0;
    }
    void disarm_wakeup() override {
        armed_.store(false, std::memory_order_relaxed);
        doorbell_.drain();
    }
    void kick() {
        std::atomic_thread_fence(std::memory_order_seq_cst);
        if (armed_.load(std::memory_order_relaxed)) doorbell_.notify();
    }

    FrameQueue rx_;  // wire -> switch
    FrameQueue tx_;  // switch -> wire

private:
    ring::EventFd doorbell_;
    std::atomic<bool> armed_{false};
};

MemoryNic::MemoryNic(std::size_t queues, std::uint32_t depth, wire::MacAddr mac) : mac_(mac) {
    for (std::size_t i = 0; i < queues; ++i) queues_.push_back(std::make_unique<MemoryQueue>(depth));
}

MemoryNic::~MemoryNic() = default;

NicQueue& MemoryNic::queue(std::size_t i) { return *queues_.at(i); }
FrameQueue& MemoryNic::to_switch(std::size_t q) { return queues_.at(q)->rx_; }
FrameQueue& MemoryNic::from_switch(std::size_t q) { return queues_.at(q)->tx_; }
void MemoryNic::kick(std::size_t q) { queues_.at(q)->kick(); }

}  // namespace ms::sw
