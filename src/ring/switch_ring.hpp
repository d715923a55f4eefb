// Contract: the switch's side of one port ring, hardened against the application.
//
// The switch keeps the ring geometry and its own indices (hwcur: the head it last
// accepted; hwtail: the tail it last stored) in private memory. On each sync it reads
// every application-owned index exactly once and checks it:
//   - head and cur lie in [0, n);
//   - head lies in the window [hwcur, hwtail] (it only moves forward, never past tail);
//   - cur lies in [head, hwtail];
//   - tail, which only the switch writes, still holds hwtail.
// Each slot is loaded once into a local copy, and its length, offset and flags are
// checked against the region before any byte is touched; a slot chain (abi.hpp) must
// start with kSlotSegment, carry no unknown flag and end within kMaxChainSlots. The first violation latches a
// RingFault: the ring stops (sync returns 0) and the caller fails the port.
#pragma once

#include <array>
#include <span>
#include <string_view>

#include "ring/app_ring.hpp"

namespace ms::ring {

enum class RingFault : std::uint8_t {
    none,
    head_out_of_range,   // head >= n
    head_outside_window, // head moved backwards or past tail
    cur_out_of_range,    // cur >= n or outside [head, tail]
    tail_overwritten,    // the application stored into tail
    slot_too_long,       // slot length beyond kMaxFrameSize (or, on tx, below 14; or an empty payload slot)
    slot_bad_offset,     // slot buffer not a buffer of this region, or a reference past the data area
    slot_bad_flags,      // an unknown flag, a chain not started by kSlotSegment, or a segment flag inside one
    chain_too_long,      // a slot chain longer than kMaxChainSlots, or than the ring can hold
    chain_stalled,       // a slot chain left half published for longer than the switch waits
    count_
};
inline constexpr std::size_t kRingFaultCount = static_cast<std::size_t>(RingFault::count_);
[[nodiscard]] std::string_view to_string(RingFault f);

// The switch's private indices of one ring, as a hand-over carries them.
struct RingIndices {
    std::uint32_t hwcur = 0;
    std::uint32_t hwtail = 0;
};

class alignas(kCacheLine) SwitchRing {
public:
    SwitchRing(const Region& region, std::uint32_t ring);

    [[nodiscard]] RingIndices indices() const { return {hwcur_, hwtail_}; }
    // Takes up the indices a previous daemon kept for this ring; false (and the ring
    // fails) if they do not fit it.
    [[nodiscard]] bool restore(RingIndices at);

    [[nodiscard]] RingFault fault() const { return fault_; }
    [[nodiscard]] bool failed() const { return fault_ != RingFault::none; }

protected:
    // Reads and checks head, cur and tail once; returns the new head, or latches a fault.
    [[nodiscard]] bool read_head(std::uint32_t& head);
    // Loads slot i once and checks it; returns false (fault latched) if it is bad.
    [[nodiscard]] bool load_slot(std::uint32_t i, Slot& out, std::uint32_t min_len, std::uint32_t max_len = kMaxFrameSize);
    // Checks a slot already copied: its length in [min_len, max_len], its offset a buffer of
    // this region.
    [[nodiscard]] bool buffer_slot_ok(const Slot& out, std::uint32_t min_len, std::uint32_t max_len);
    // Loads a chain's payload slot once: a buffer of the region, or a reference to any
    // bytes of the data area.
    [[nodiscard]] bool load_payload_slot(std::uint32_t i, Slot& out);
    void latch(RingFault f) {
        if (fault_ == RingFault::none) fault_ = f;
    }

    std::uint8_t* base_;
    RingControl* ctl_;
    Slot* slots_;
    std::uint64_t buffers_begin_;
    std::uint64_t buffers_end_;
    std::uint64_t data_begin_;
    std::uint64_t data_end_;
    std::uint32_t n_;
    std::uint32_t hwcur_;
    std::uint32_t hwtail_;
    RingFault fault_ = RingFault::none;
};

// One frame an application transmits, as it lies in its shared memory: the switch
// copies the head before it validates it; payload pieces are only ever copied out.
struct TxFrame {
    wire::Bytes head;            // the first slot's bytes
    std::uint16_t flags = 0;     // the first slot's flags
    std::uint16_t gso_size = 0;  // the first slot's, for a super-segment
    std::uint32_t slots = 0;     // slots the frame spans
    std::uint32_t piece_count = 0;
    std::array<wire::Bytes, kMaxChainSlots - 1> pieces;  // the chain's later slots

    [[nodiscard]] bool segment() const { return (flags & kSlotSegment) != 0; }
    [[nodiscard]] std::span<const wire::Bytes> payload_pieces() const { return {pieces.data(), piece_count}; }
};

enum class TxFrameStatus : std::uint8_t {
    ready,       // `out` describes a whole frame
    chained,     // `out` holds a chain's first slot: read_chain() reads the rest
    incomplete,  // a chain goes on past the published slots: wait for the rest
    fault        // a bad slot: the ring has latched its fault
};

// Consumes what the application transmits.
class SwitchTxRing : public SwitchRing {
public:
    SwitchTxRing(const Region& region, std::uint32_t pair) : SwitchRing(region, tx_ring(pair)) {}

    // Slots now pending, from hwcur up to the application's head.
    [[nodiscard]] std::uint32_t sync();
    // The frame that starts `k` slots past hwcur: a whole frame, or a chain's first slot.
    [[nodiscard]] TxFrameStatus frame(std::uint32_t k, TxFrame& out);
    // The payload slots of the chain whose first slot frame() put in `out`, within the
    // `pending` (sync()) slots.
    [[nodiscard]] TxFrameStatus read_chain(std::uint32_t k, std::uint32_t pending, TxFrame& out);
    // Both at once, for tests and tools. (The switch calls the two itself: with the chain
    // loop inside frame(), the frame-at-a-time path ran 3x slower at 254 ports.)
    [[nodiscard]] TxFrameStatus whole_frame(std::uint32_t k, std::uint32_t pending, TxFrame& out) {
        const TxFrameStatus st = frame(k, out);
        return st == TxFrameStatus::chained ? read_chain(k, pending, out) : st;
    }
    // Returns the first `count` pending slots to the application; true if it sleeps
    // waiting for room and asked for a kick (netmap's txsync wakes a blocked writer).
    [[nodiscard]] bool release(std::uint32_t count);
    // Asks the application for a kick before the switch sleeps; returns true if frames
    // are already pending that the switch can take, in which case it must not sleep. A
    // chain that read_chain() found half published is not such work until the
    // application publishes more. Pair with wake().
    [[nodiscard]] bool prepare_to_sleep();
    void wake() { store_release(ctl_->kick_switch, 0); }
    // True while the last chain read was half published (it waits for the rest).
    [[nodiscard]] bool waiting_for_chain() const { return incomplete_head_ != kNoHead; }
    // Fails the ring (chain_stalled): its half-published chain waited too long.
    void fail_stalled_chain() { latch(RingFault::chain_stalled); }

private:
    static constexpr std::uint32_t kNoHead = UINT32_MAX;
    std::uint32_t incomplete_head_ = kNoHead;  // the head at which a chain was found half published
};

// Fills the application's receive ring.
class SwitchRxRing : public SwitchRing {
public:
    SwitchRxRing(const Region& region, std::uint32_t pair)
        : SwitchRing(region, rx_ring(pair)), home_buffers_(region.layout().buffer_offset(rx_ring(pair), 0)) {}

    // Free slots, from hwtail up to one before the application's head.
    [[nodiscard]] std::uint32_t sync();
    // At least `wanted` free slots if the room known from the last sync allows it, without
    // reading the application's indices (a cache miss per ring); otherwise sync(). Room
    // only grows behind the switch's back, so the cached count is never too large.
    [[nodiscard]] std::uint32_t room(std::uint32_t wanted) { return known_room_ >= wanted ? known_room_ : sync(); }
    // Buffer of the k-th free slot (kBufferSize bytes), or empty on a bad slot.
    [[nodiscard]] wire::MutBytes buffer(std::uint32_t k);
    void set_length(std::uint32_t k, std::uint16_t len);
    // Warms the cache lines the next delivery will touch: the shared tail and the next
    // slot. The forwarder calls it a few destinations ahead, so misses overlap.
    void prefetch() const {
        __builtin_prefetch(&ctl_->tail, 1);
        __builtin_prefetch(&ctl_->kick_app, 0);
        __builtin_prefetch(&slots_[hwtail_], 1);
        __builtin_prefetch(base_ + home_buffers_ + std::uint64_t{hwtail_} * kBufferSize, 1);
    }
    // Makes `count` filled slots visible.
    void publish(std::uint32_t count);
    // True if the application sleeps and asked for a kick. Call after a seq_cst fence
    // that follows publish() (one fence may serve many rings: see Forwarder::flush).
    [[nodiscard]] bool application_asked_for_kick() const { return load_acquire(ctl_->kick_app) != 0; }

private:
    std::uint64_t home_buffers_;  // where slot 0's own buffer is; slots are usually not swapped
    std::uint32_t known_room_ = 0;
};

}  // namespace ms::ring
