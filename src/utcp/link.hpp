// Contract: where a stack's frames go. A Link hands out tx buffers one at a time, takes
// each frame's length, and makes the batch visible in flush(): one publish (one
// possible kick) per batch, as docs/DESIGN.md §4 asks. A link that takes super-segments
// takes each as its headers, its payload in pieces and a segment size, and decides
// itself how they travel (the port's link lays them out in ring slots, by reference when
// the payload lies in the port's data area: loop/port_link.hpp); the stack knows nothing
// of slots. MemoryLink keeps frames in memory for tests (and, asked to take
// super-segments, cuts them into frames as the switch does).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "utcp/buffers.hpp"
#include "wire/bytes.hpp"

namespace ms::utcp {

// How a super-segment left: not at all (the link is full), or with its payload copied or
// passed by reference.
enum class LinkTx : std::uint8_t { no_room, copied, by_reference };

class Link {
public:
    virtual ~Link() = default;
    // A buffer for the next frame, or an empty span when the ring is full.
    virtual wire::MutBytes next_tx_buffer() = 0;
    // The frame in the buffer last handed out is `len` bytes long.
    virtual void commit_tx(std::size_t len) = 0;
    // Publishes every committed frame.
    virtual void flush() = 0;

    // Whether the link takes super-segments (send_super).
    [[nodiscard]] virtual bool takes_super_segments() const { return false; }
    // A TCP super-segment: `headers` are its Ethernet, IP and TCP headers (the IP length
    // counts the whole payload; the TCP checksum holds the pseudo-header sum only:
    // wire/build.hpp), `payload` follows in two pieces, and whoever cuts it makes segments
    // of `segment_size` payload bytes. All or nothing: no_room takes none of it.
    [[nodiscard]] virtual LinkTx send_super(wire::Bytes headers, const SplitBytes& payload, std::uint16_t segment_size) {
        (void)headers, (void)payload, (void)segment_size;
        return LinkTx::no_room;
    }
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
    // Cuts the super-segment into frames with wire::Segmenter, if they all fit.
    LinkTx send_super(wire::Bytes headers, const SplitBytes& payload, std::uint16_t segment_size) override;
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
    std::uint64_t super_segments_taken_ = 0;
};

}  // namespace ms::utcp
