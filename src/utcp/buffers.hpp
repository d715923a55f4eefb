// Contract: a connection's byte buffers, which hold memory only while they hold bytes:
// a buffer takes its array from the stack's BufferPool when the first byte comes and
// gives it back when it drains, so an idle connection costs its TCB alone (as an idle
// socket in Linux holds no skbs), and the pool keeps drained arrays for reuse (no
// allocation per burst). SendBuffer holds bytes from SND.UNA onwards: written by the
// application at the tail (copied into its ring, or by reference to immutable memory
// the application pins), read by the sender at any offset, and dropped from the head
// as they are acknowledged. RecvBuffer holds bytes from RCV.NXT onwards, and also the
// out-of-order segments that arrive inside the receive window, placed at their final
// offset; a bounded list of ranges (kMaxRanges) says which bytes beyond the in-order
// part are present, so out-of-order memory is the window itself and nothing more.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "wire/bytes.hpp"

namespace ms::utcp {

// Two spans, because a ring's contents may wrap around its end.
struct SplitBytes {
    wire::Bytes first;
    wire::Bytes second;
    [[nodiscard]] std::size_t size() const { return first.size() + second.size(); }
};

// Where buffers' arrays come from, and drained buffers' arrays, by size, for the next
// buffer that fills. Send buffers take theirs from the shared area (the port's data
// area, which the switch reads in place: their bytes leave by reference) while it has
// room, and from the heap after. Of the heap's arrays at most kKeepPerSize of each size
// are kept (the rest go back to the allocator), so memory is bounded by the busiest
// moment's need, not by the number of connections; the shared area's arrays all stay
// listed for reuse, but those beyond kKeepPerSize give their pages back.
class BufferPool {
public:
    static constexpr std::size_t kKeepPerSize = 64;
    BufferPool() = default;
    ~BufferPool();
    BufferPool(const BufferPool&) = delete;
    BufferPool& operator=(const BufferPool&) = delete;

    void set_shared_area(wire::MutBytes area) { area_ = area; }
    // Carves from `area` from now on (the loop attached again to a new port, whose data
    // area it is). Arrays and blocks of the old area stay valid while their owners hold
    // them (the caller keeps it mapped), and are dropped, not reused, when they come back.
    void move_shared_area(wire::MutBytes area);
    // An array of `bytes` (uninitialised); `shared`: from the shared area if it has room.
    [[nodiscard]] std::uint8_t* take(std::size_t bytes, bool shared);
    void give(std::uint8_t* data, std::size_t bytes);
    // A block of `bytes` for the application's immutable data (a file cache), from the
    // shared area while it has room, so that Connection::send_reference() bytes leave by
    // reference; else from the heap. When its last owner drops it, a block of the area
    // gives its pages back and stays listed for the next block that fits in it (so a
    // cache reloaded at about its size alternates between two blocks); the pool must
    // outlive every owner.
    [[nodiscard]] std::shared_ptr<std::uint8_t[]> take_block(std::size_t bytes);
    [[nodiscard]] std::size_t kept() const;
    [[nodiscard]] bool in_shared_area(const std::uint8_t* p) const {
        return !area_.empty() && p >= area_.data() && p < area_.data() + area_.size();
    }

private:
    struct FreeList {
        std::size_t size;
        bool shared;
        std::vector<std::uint8_t*> arrays;
    };
    std::vector<std::uint8_t*>& free_list(std::size_t bytes, bool shared);

    std::vector<FreeList> free_;  // few sizes: a list
    std::vector<std::pair<std::uint8_t*, std::size_t>> free_blocks_;  // take_block's, in the area
    // Whether `p` lies in an area the pool carved from before move_shared_area().
    [[nodiscard]] bool in_old_area(const std::uint8_t* p) const;
    wire::MutBytes area_;
    std::vector<wire::MutBytes> old_areas_;
    std::size_t area_used_ = 0;   // the shared area is carved from its start, never compacted
};

class ByteRing {
public:
    // `capacity` is rounded up to a power of two; without a pool, arrays come from and
    // go back to the allocator. `shared`: ask the pool for the shared area.
    explicit ByteRing(std::size_t capacity, BufferPool* pool = nullptr, bool shared = false);
    ~ByteRing();
    ByteRing(const ByteRing&) = delete;
    ByteRing& operator=(const ByteRing&) = delete;
    [[nodiscard]] std::size_t capacity() const { return mask_ + 1; }
    // Whether it holds an array now (for tests and memory accounting).
    [[nodiscard]] bool holds_memory() const { return data_ != nullptr; }

protected:
    // Gives the array back; only when no byte is held.
    void release();
    // Copies `data` to logical position `pos` (modulo capacity).
    void write_at(std::uint64_t pos, wire::Bytes data);
    // Copies out `out.size()` bytes from logical position `pos`.
    void read_at(std::uint64_t pos, wire::MutBytes out) const;
    [[nodiscard]] SplitBytes view_at(std::uint64_t pos, std::size_t len) const;

private:
    std::uint8_t* data_ = nullptr;  // null while empty
    std::size_t mask_;
    BufferPool* pool_;
    bool shared_;
};

class SendBuffer : public ByteRing {
public:
    // Its bytes may leave by reference: the pool's shared area, where there is one.
    // `capacity` bounds every byte held, copied or referenced.
    SendBuffer(std::size_t capacity, BufferPool* pool = nullptr) : ByteRing(capacity, pool, true) {}
    // Appends as much of `data` as fits, copied; returns how much.
    std::size_t append(wire::Bytes data);
    // Appends as much of `data` as fits, by reference: those bytes must not change while
    // `pin` lives, and the buffer holds `pin` until they are acknowledged.
    std::size_t append_reference(wire::Bytes data, std::shared_ptr<const void> pin);
    // Up to `len` bytes starting `offset` bytes after the head (SND.UNA), in at most two
    // contiguous spans: fewer bytes than `len` where more spans would be needed (copied
    // bytes beside referenced ones).
    [[nodiscard]] SplitBytes view(std::size_t offset, std::size_t len) const;
    void consume(std::size_t len);
    [[nodiscard]] std::size_t size() const { return size_; }
    [[nodiscard]] std::size_t room() const { return capacity() - size_; }
    // Bytes now held by reference (for tests and counters).
    [[nodiscard]] std::size_t referenced() const;

private:
    // A run of bytes in stream order: copied (ref null: the next bytes of the ring) or
    // referenced.
    struct Extent {
        std::size_t len;
        const std::uint8_t* ref;
        std::shared_ptr<const void> pin;
    };
    [[nodiscard]] SplitBytes view_extents(std::size_t offset, std::size_t len) const;

    std::uint64_t ring_head_ = 0;  // copied bytes: [ring_head_, ring_tail_) of the ring
    std::uint64_t ring_tail_ = 0;
    std::size_t size_ = 0;
    [[nodiscard]] bool has_extents() const { return extents_ && !extents_->empty(); }

    // Null or empty while every byte held is a copied one (the common case costs nothing
    // more: the list is allocated on the first reference); otherwise covers every byte
    // held, the front one from front_done_ on.
    std::unique_ptr<std::deque<Extent>> extents_;
    std::size_t front_done_ = 0;
};

class RecvBuffer : public ByteRing {
public:
    static constexpr std::size_t kMaxRanges = 16;
    using ByteRing::ByteRing;

    // Bytes ready for the application.
    [[nodiscard]] std::size_t readable() const { return in_order_; }
    // Free space past everything readable: what the window may offer.
    [[nodiscard]] std::size_t room() const { return capacity() - in_order_; }
    // Stores `data` at `offset` bytes past RCV.NXT (0: in order). Returns how many bytes
    // became readable (RCV.NXT advances by that much), or -1 if an out-of-order range
    // could not be kept (the range list is full or the data is past the room).
    std::int64_t insert(std::size_t offset, wire::Bytes data);
    std::size_t read(wire::MutBytes out);
    [[nodiscard]] SplitBytes peek() const { return view_at(read_pos_, in_order_); }
    void consume(std::size_t len);
    [[nodiscard]] bool has_out_of_order() const { return range_count_ != 0; }
    // Out-of-order ranges as offsets past RCV.NXT, for tests and SACK.
    [[nodiscard]] std::span<const std::pair<std::size_t, std::size_t>> ranges() const {
        return {ranges_.data(), range_count_};
    }
    // The bytes of an out-of-order range (offsets past RCV.NXT, as ranges() gives them).
    [[nodiscard]] SplitBytes out_of_order(std::size_t begin, std::size_t end) const {
        return view_at(read_pos_ + in_order_ + begin, end - begin);
    }

private:
    bool add_range(std::size_t begin, std::size_t end);
    std::size_t absorb_ranges();
    void release_if_empty() {
        if (in_order_ == 0 && range_count_ == 0) release();
    }

    std::uint64_t read_pos_ = 0;  // logical position of the first readable byte
    std::size_t in_order_ = 0;    // readable bytes; RCV.NXT is at read_pos_ + in_order_
    // Out-of-order ranges [begin, end) as offsets from RCV.NXT, sorted and disjoint.
    std::array<std::pair<std::size_t, std::size_t>, kMaxRanges> ranges_{};
    std::size_t range_count_ = 0;
};

}  // namespace ms::utcp
