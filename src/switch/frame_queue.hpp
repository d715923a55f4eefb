// Contract: a single-producer, single-consumer queue of frames in switch-owned memory.
// It carries frames between the switch's own threads (one worker to another) and
// between the in-memory NIC and a worker. Both sides are trusted, so nothing is
// re-checked. Capacity is a power of two; indices run free and wrap at 2^32.
// Producer: space(), cell(k), commit(n). Consumer: available(), cell(k), release(n).
#pragma once

#include <atomic>
#include <bit>
#include <cstdint>
#include <memory>
#include <stdexcept>

#include "ring/abi.hpp"

namespace ms::sw {

struct FrameCell {
    std::uint32_t tag = 0;  // free for the user: a destination id, a sequence number
    std::uint16_t len = 0;
    std::uint8_t data[ring::kBufferSize - 8];
};
static_assert(sizeof(FrameCell) == ring::kBufferSize);

class FrameQueue {
public:
    explicit FrameQueue(std::uint32_t capacity)
        : cells_(std::make_unique<FrameCell[]>(capacity)), mask_(capacity - 1) {
        if (!std::has_single_bit(capacity)) throw std::invalid_argument("FrameQueue capacity must be a power of two");
    }

    [[nodiscard]] std::uint32_t capacity() const { return mask_ + 1; }

    // Producer side.
    [[nodiscard]] std::uint32_t space() const {
        return capacity() - (tail_.load(std::memory_order_relaxed) - head_.load(std::memory_order_acquire));
    }
    [[nodiscard]] FrameCell& producer_cell(std::uint32_t k) {
        return cells_[(tail_.load(std::memory_order_relaxed) + k) & mask_];
    }
    void commit(std::uint32_t n) { tail_.store(tail_.load(std::memory_order_relaxed) + n, std::memory_order_release); }

    // Consumer side.
    [[nodiscard]] std::uint32_t available() const {
        return tail_.load(std::memory_order_acquire) - head_.load(std::memory_order_relaxed);
    }
    [[nodiscard]] const FrameCell& consumer_cell(std::uint32_t k) const {
        return cells_[(head_.load(std::memory_order_relaxed) + k) & mask_];
    }
    void release(std::uint32_t n) { head_.store(head_.load(std::memory_order_relaxed) + n, std::memory_order_release); }

private:
    std::unique_ptr<FrameCell[]> cells_;
    std::uint32_t mask_;
    alignas(64) std::atomic<std::uint32_t> head_{0};  // consumer
    alignas(64) std::atomic<std::uint32_t> tail_{0};  // producer
};

}  // namespace ms::sw
