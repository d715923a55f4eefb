// Contract: a connection's byte buffers, which hold memory only while they hold bytes:
// a buffer takes its array from the stack's BufferPool when the first byte comes and
// gives it back when it drains, so an idle connection costs its TCB alone (as an idle
// socket in Linux holds no skbs), and the pool keeps drained arrays for reuse (no
// allocation per burst). SendBuffer holds bytes from SND.UNA onwards: written by the
// application at the tail, read by the sender at any offset, and dropped from the head
// as they are acknowledged. RecvBuffer holds bytes from RCV.NXT onwards, and also the
// out-of-order segments that arrive inside the receive window, placed at their final
// offset; a bounded list of ranges (kMaxRanges) says which bytes beyond the in-order
// part are present, so out-of-order memory is the window itself and nothing more.
#pragma once

#include <array>
#include <cstdint>
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

// Drained buffers' arrays, by size, for the next buffer that fills; at most kKeepPerSize
// of each size are kept (the rest go back to the allocator), so its memory is bounded
// by the busiest moment's need, not by the number of connections.
class BufferPool {
public:
    static constexpr std::size_t kKeepPerSize = 64;
    [[nodiscard]] std::unique_ptr<std::uint8_t[]> take(std::size_t bytes);
    void give(std::unique_ptr<std::uint8_t[]> data, std::size_t bytes);
    [[nodiscard]] std::size_t kept() const;

private:
    std::vector<std::pair<std::size_t, std::vector<std::unique_ptr<std::uint8_t[]>>>> free_;  // few sizes: a list
};

class ByteRing {
public:
    // `capacity` is rounded up to a power of two; without a pool, arrays come from and
    // go back to the allocator.
    explicit ByteRing(std::size_t capacity, BufferPool* pool = nullptr);
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
    std::unique_ptr<std::uint8_t[]> data_;  // null while empty
    std::size_t mask_;
    BufferPool* pool_;
};

class SendBuffer : public ByteRing {
public:
    using ByteRing::ByteRing;
    // Appends as much of `data` as fits; returns how much.
    std::size_t append(wire::Bytes data);
    // `len` bytes starting `offset` bytes after the head (SND.UNA).
    [[nodiscard]] SplitBytes view(std::size_t offset, std::size_t len) const { return view_at(head_ + offset, len); }
    void consume(std::size_t len) {
        head_ += len;
        if (size() == 0) release();
    }
    [[nodiscard]] std::size_t size() const { return tail_ - head_; }
    [[nodiscard]] std::size_t room() const { return capacity() - size(); }

private:
    std::uint64_t head_ = 0;
    std::uint64_t tail_ = 0;
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
