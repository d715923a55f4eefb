// Contract: where a stack's frames go. A Link hands out tx buffers one at a time, takes
// each frame's length, and makes the batch visible in flush(): one publish (one
// possible kick) per batch, as docs/DESIGN.md §4 asks. A link that takes super-segments (a TCP
// header and up to 64 KB of payload, ring/abi.hpp) takes them as a chain of buffers,
// each committed with its slot flags. MemoryLink keeps frames in memory for tests (and,
// asked to take super-segments, cuts them into frames as the switch does);
// PortLink (port_link.hpp) writes into a MultiStack port's tx ring.
#pragma once

#include <cstdint>
#include <optional>
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

    // Super-segments: whether the link takes them, how many buffers it can hand out now,
    // and the commit of one buffer of a chain (flags: ring::kSlot* bits; gso_size on the
    // first). A chain is only started when tx_room() covers all of it.
    [[nodiscard]] virtual bool takes_super_segments() const { return false; }
    [[nodiscard]] virtual std::size_t tx_room() = 0;
    virtual void commit_chained(std::size_t len, std::uint16_t flags, std::uint16_t gso_size) = 0;
    // Payload by reference: where `bytes` lie in the port's data area (ring/abi.hpp), if
    // they do; commit_reference then makes the next slot of a chain point at them.
    [[nodiscard]] virtual std::optional<std::uint64_t> data_reference(wire::Bytes) const { return std::nullopt; }
    virtual void commit_reference(std::uint64_t, std::size_t, std::uint16_t) {}
};

class MemoryLink final : public Link {
public:
    using Frame = std::vector<std::uint8_t>;
    explicit MemoryLink(std::size_t capacity = 1u << 20, bool super_segments = false)
        : capacity_(capacity), super_segments_(super_segments) {}

    wire::MutBytes next_tx_buffer() override {
        if (pending_.size() + sent_.size() >= capacity_) return {};
        pending_.emplace_back(kFrameRoom);
        return pending_.back();
    }
    void commit_tx(std::size_t len) override { pending_.back().resize(len); }
    bool takes_super_segments() const override { return super_segments_; }
    std::size_t tx_room() override {
        const std::size_t used = pending_.size() + sent_.size();
        return used >= capacity_ ? 0 : capacity_ - used;
    }
    // Gathers a chain and, at its end, cuts it into frames with wire::Segmenter.
    void commit_chained(std::size_t len, std::uint16_t flags, std::uint16_t gso_size) override;
    void flush() override {
        for (Frame& f : pending_) sent_.push_back(std::move(f));
        pending_.clear();
    }
    // Frames flushed so far, oldest first; the caller takes them.
    std::vector<Frame> take() { return std::exchange(sent_, {}); }
    void set_capacity(std::size_t frames) { capacity_ = frames; }

    // Super-segments taken so far.
    [[nodiscard]] std::uint64_t super_segments() const { return super_segments_taken_; }

private:
    static constexpr std::size_t kFrameRoom = 2048;
    std::size_t capacity_;
    bool super_segments_;
    std::vector<Frame> pending_;
    std::vector<Frame> sent_;
    Frame chain_;  // the super-segment being gathered
    std::uint16_t chain_gso_ = 0;
    std::uint64_t super_segments_taken_ = 0;
};

}  // namespace ms::utcp
