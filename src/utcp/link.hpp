// Contract: where a stack's frames go. A Link hands out tx buffers one at a time, takes
// each frame's length, and makes the batch visible in flush(): one publish (one
// possible kick) per batch, as DESIGN §4 asks. MemoryLink keeps frames in memory for
// tests; PortLink (port_link.hpp) writes into a MultiStack port's tx ring.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "wire/bytes.hpp"

namespace ms::utcp {

class Link {
public:
    virtual ~Link() = default;
    // A buffer for the next frame, or an empty span when the ring is full.
    virtual wire::MutBytes next_tx_buffer() = 0;
    // The frame in the buffer last handed out is `len` bytes long.
    virtual void commit_tx(std::size_t len) = 0;
    // Publishes every committed frame.
    virtual void flush() = 0;
};

class MemoryLink final : public Link {
public:
    using Frame = std::vector<std::uint8_t>;
    explicit MemoryLink(std::size_t capacity = 1u << 20) : capacity_(capacity) {}

    wire::MutBytes next_tx_buffer() override {
        if (pending_.size() + sent_.size() >= capacity_) return {};
        pending_.emplace_back(kFrameRoom);
        return pending_.back();
    }
    void commit_tx(std::size_t len) override { pending_.back().resize(len); }
    void flush() override {
        for (Frame& f : pending_) sent_.push_back(std::move(f));
        pending_.clear();
    }
    // Frames flushed so far, oldest first; the caller takes them.
    std::vector<Frame> take() { return std::exchange(sent_, {}); }
    void set_capacity(std::size_t frames) { capacity_ = frames; }

private:
    static constexpr std::size_t kFrameRoom = 2048;
    std::size_t capacity_;
    std::vector<Frame> pending_;
    std::vector<Frame> sent_;
};

}  // namespace ms::utcp
