// Contract: a single-producer, single-consumer queue of frames in switch-owned memory.
// It carries frames between the switch's own threads (one worker to another, a worker
// to a capture) and between the in-memory NIC and a worker. A cell holds at most
// ring::kMaxFrameSize bytes: store() refuses anything longer, and frame() checks the
// length it reads back, so a bug on one side can never make the other read or write
// past a cell (the cells hold bytes that applications chose). Capacity is a power of
// two: one that is not (a caller's bug) is rounded up to the next (std::bit_ceil; 0
// becomes 1), so capacity() may exceed what was asked. Indices run free and wrap at 2^32.
// Producer: space(), cell(k), commit(n). Consumer: available(), cell(k), release(n).
#pragma once

#include <atomic>
#include <bit>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>

#include "ring/abi.hpp"
#include "wire/bytes.hpp"

namespace ms::sw {

struct FrameCell {
    std::uint32_t tag = 0;         // free for the user: a destination id, a direction
    std::uint32_t generation = 0;  // free for the user: the destination's generation
    std::uint16_t len = 0;
    std::uint8_t data[ring::kMaxFrameSize];

    // Copies `frame` in; false (and the cell unchanged) if it is longer than a cell.
    [[nodiscard]] bool store(wire::Bytes frame) {
        if (frame.size() > sizeof data) return false;
        std::memcpy(data, frame.data(), frame.size());
        len = static_cast<std::uint16_t>(frame.size());
        return true;
    }
    // The frame held, or nothing if the stored length is out of bounds.
    [[nodiscard]] std::optional<wire::Bytes> frame() const {
        if (len > sizeof data) return std::nullopt;
        return wire::Bytes{data, len};
    }
};
static_assert(sizeof(FrameCell::data) == ring::kMaxFrameSize);

class FrameQueue {
public:
    explicit FrameQueue(std::uint32_t capacity)
        : cells_(std::make_unique<FrameCell[]>(std::bit_ceil(capacity))), mask_(std::bit_ceil(capacity) - 1) {}

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
