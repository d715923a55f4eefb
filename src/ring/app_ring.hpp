// Contract: the application's side of one ring pair (abi.hpp). The application trusts
// the switch, so these helpers check nothing beyond their preconditions. Producer and
// consumer steps are batched: reserve or peek many slots, then publish or release once.
// Kicks follow the need-wakeup rule: a side that sleeps sets its kick flag, then
// re-checks; the other side, after moving an index, kicks only if the flag is set.
#pragma once

#include <atomic>

#include "ring/region.hpp"
#include "wire/bytes.hpp"

namespace ms::ring {

// Loads and stores on shared indices; the only way either side touches them.
inline std::uint32_t load_acquire(std::uint32_t& field) {
    return std::atomic_ref<std::uint32_t>(field).load(std::memory_order_acquire);
}
inline void store_release(std::uint32_t& field, std::uint32_t value) {
    std::atomic_ref<std::uint32_t>(field).store(value, std::memory_order_release);
}

// Base for the two directions: geometry and addressing of one ring.
class AppRing {
public:
    AppRing(const Region& region, std::uint32_t ring);

    [[nodiscard]] std::uint32_t size() const { return n_; }
    // Marks this side asleep (kick_app) and returns true if the ring moved meanwhile,
    // in which case the caller should not sleep. Pair with wake().
    [[nodiscard]] bool prepare_to_sleep();
    void wake() { store_release(ctl_->kick_app, 0); }

protected:
    [[nodiscard]] Slot& slot(std::uint32_t i) const { return slots_[i]; }
    [[nodiscard]] std::uint8_t* buffer_of(const Slot& s) const { return base_ + s.offset; }
    // Moves head (and cur with it) forward and kicks the switch if it asked.
    void advance_head(std::uint32_t count, const EventFd* kick);
    // Slots in [head, tail): free room on a tx ring, frames on an rx ring.
    [[nodiscard]] std::uint32_t ready() const { return ring_distance(head_, load_acquire(ctl_->tail), n_); }

    std::uint8_t* base_;
    RingControl* ctl_;
    Slot* slots_;
    std::uint32_t n_;
    std::uint32_t head_;  // our copy of the head we own
};

class AppTxRing : public AppRing {
public:
    AppTxRing(const Region& region, std::uint32_t pair, const EventFd* kick_switch = nullptr)
        : AppRing(region, tx_ring(pair)), kick_(kick_switch), home_(region.layout().buffer_offset(tx_ring(pair), 0)) {}

    // Free slots now available from head.
    [[nodiscard]] std::uint32_t space() const { return ready(); }
    // Buffer of the k-th free slot, its home buffer (a reference may have pointed the
    // slot elsewhere); the frame length is given by set_length.
    [[nodiscard]] wire::MutBytes buffer(std::uint32_t k) const {
        const std::uint32_t i = ring_advance(head_, k, n_);
        Slot& s = slot(i);
        s.offset = static_cast<std::uint32_t>(home_ + std::uint64_t{i} * kBufferSize);
        return {buffer_of(s), kBufferSize};
    }
    // Points the k-th free slot at `len` bytes of the data area (a chain's payload slot).
    void set_reference(std::uint32_t k, std::uint64_t region_offset, std::uint16_t len, std::uint16_t flags) {
        Slot& s = slot(ring_advance(head_, k, n_));
        s.offset = static_cast<std::uint32_t>(region_offset);
        s.len = len;
        s.flags = flags;
        s.gso_size = 0;
    }
    void set_length(std::uint32_t k, std::uint16_t len) { set_slot(k, len, 0, 0); }
    // A slot of a chain (abi.hpp): `flags` are kSlot* bits, `gso_size` the first slot's.
    void set_slot(std::uint32_t k, std::uint16_t len, std::uint16_t flags, std::uint16_t gso_size) {
        Slot& s = slot(ring_advance(head_, k, n_));
        s.len = len;
        s.flags = flags;
        s.gso_size = gso_size;
    }
    // Makes the first `count` free slots visible to the switch, and kicks it if asleep.
    void publish(std::uint32_t count) { advance_head(count, kick_); }

private:
    const EventFd* kick_;
    std::uint64_t home_;  // slot 0's home buffer
};

class AppRxRing : public AppRing {
public:
    AppRxRing(const Region& region, std::uint32_t pair) : AppRing(region, rx_ring(pair)) {}

    [[nodiscard]] std::uint32_t available() const { return ready(); }
    [[nodiscard]] wire::Bytes frame(std::uint32_t k) const {
        const Slot& s = slot(ring_advance(head_, k, n_));
        return {buffer_of(s), s.len};
    }
    // Gives `count` consumed slots back to the switch, which never waits for rx room.
    void release(std::uint32_t count) { advance_head(count, nullptr); }
};

}  // namespace ms::ring
