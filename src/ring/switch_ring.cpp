#include "ring/switch_ring.hpp"

namespace ms::ring {

std::string_view to_string(RingFault f) {
    switch (f) {
        case RingFault::none: return "none";
        case RingFault::head_out_of_range: return "head_out_of_range";
        case RingFault::head_outside_window: return "head_outside_window";
        case RingFault::cur_out_of_range: return "cur_out_of_range";
        case RingFault::tail_overwritten: return "tail_overwritten";
        case RingFault::slot_too_long: return "slot_too_long";
        case RingFault::slot_bad_offset: return "slot_bad_offset";
        case RingFault::slot_bad_flags: return "slot_bad_flags";
        case RingFault::chain_too_long: return "chain_too_long";
        case RingFault::chain_stalled: return "chain_stalled";
        case RingFault::count_: break;
    }
    return "unknown";
}

SwitchRing::SwitchRing(const Region& region, std::uint32_t ring)
    : base_(region.base()),
      ctl_(&region.control(ring)),
      slots_(region.slots(ring).data()),
      buffers_begin_(region.layout().buffers_offset),
      buffers_end_(region.layout().sockets_offset),
      data_begin_(region.layout().data_offset),
      data_end_(region.layout().data_offset + region.layout().data_size),
      n_(region.layout().slots_per_ring),
      // The switch sets the ring up (Region::create), so these are its own values.
      hwcur_(load_acquire(ctl_->head)),
      hwtail_(load_acquire(ctl_->tail)) {}

bool SwitchRing::restore(RingIndices at) {
    if (at.hwcur >= n_ || at.hwtail >= n_) {
        latch(RingFault::head_out_of_range);
        return false;
    }
    hwcur_ = at.hwcur;
    hwtail_ = at.hwtail;
    return true;
}

bool SwitchRing::read_head(std::uint32_t& head) {
    if (failed()) return false;
    const std::uint32_t h = load_acquire(ctl_->head);
    const std::uint32_t c = load_acquire(ctl_->cur);
    const std::uint32_t t = load_acquire(ctl_->tail);
    const std::uint32_t window = ring_distance(hwcur_, hwtail_, n_);
    if (h >= n_) latch(RingFault::head_out_of_range);
    else if (ring_distance(hwcur_, h, n_) > window) latch(RingFault::head_outside_window);
    else if (c >= n_ || ring_distance(h, c, n_) > ring_distance(h, hwtail_, n_)) latch(RingFault::cur_out_of_range);
    else if (t != hwtail_) latch(RingFault::tail_overwritten);
    if (failed()) return false;
    head = h;
    return true;
}

bool SwitchRing::load_slot(std::uint32_t i, Slot& out, std::uint32_t min_len, std::uint32_t max_len) {
    // One copy of the slot, so the application cannot change it between check and use.
    std::memcpy(&out, &slots_[i], sizeof out);
    return buffer_slot_ok(out, min_len, max_len);
}

bool SwitchRing::buffer_slot_ok(const Slot& out, std::uint32_t min_len, std::uint32_t max_len) {
    if (out.len > max_len || out.len < min_len) {
        latch(RingFault::slot_too_long);
        return false;
    }
    const std::uint64_t off = out.offset;
    if (off < buffers_begin_ || off >= buffers_end_ || (off - buffers_begin_) % kBufferSize != 0) {
        latch(RingFault::slot_bad_offset);
        return false;
    }
    return true;
}

std::uint32_t SwitchTxRing::sync() {
    std::uint32_t head;
    if (!read_head(head)) return 0;
    return ring_distance(hwcur_, head, n_);
}

bool SwitchRing::load_payload_slot(std::uint32_t i, Slot& out) {
    std::memcpy(&out, &slots_[i], sizeof out);
    const std::uint64_t off = out.offset;
    if (off < data_begin_ || off >= data_end_) return buffer_slot_ok(out, 1, kBufferSize);  // the same copy
    if (out.len == 0) {
        latch(RingFault::slot_too_long);
        return false;
    }
    if (out.len > data_end_ - off) {
        latch(RingFault::slot_bad_offset);
        return false;
    }
    return true;
}

TxFrameStatus SwitchTxRing::frame(std::uint32_t k, TxFrame& out) {
    constexpr std::uint32_t kMinFrame = 14;  // an Ethernet header
    Slot s;
    if (!load_slot(ring_advance(hwcur_, k, n_), s, kMinFrame)) return TxFrameStatus::fault;
    const bool chained = (s.flags & kSlotMore) != 0;
    if ((s.flags & ~kSlotKnownFlags) != 0 || (chained && (s.flags & kSlotSegment) == 0)) {
        latch(RingFault::slot_bad_flags);
        return TxFrameStatus::fault;
    }
    out.head = {base_ + s.offset, s.len};
    out.flags = s.flags;
    out.gso_size = s.gso_size;
    out.slots = 1;
    out.piece_count = 0;
    return chained ? TxFrameStatus::chained : TxFrameStatus::ready;
}

TxFrameStatus SwitchTxRing::read_chain(std::uint32_t k, std::uint32_t pending, TxFrame& out) {
    Slot s;
    s.flags = kSlotMore;
    while ((s.flags & kSlotMore) != 0) {
        if (out.slots == kMaxChainSlots || out.slots == n_ - 1) {
            latch(RingFault::chain_too_long);
            return TxFrameStatus::fault;
        }
        if (k + out.slots >= pending) {
            incomplete_head_ = ring_advance(hwcur_, pending, n_);
            return TxFrameStatus::incomplete;
        }
        // Payload-only slots may fill their whole buffer, or refer to the data area.
        if (!load_payload_slot(ring_advance(hwcur_, k + out.slots, n_), s)) return TxFrameStatus::fault;
        if ((s.flags & ~kSlotMore) != 0) {
            latch(RingFault::slot_bad_flags);
            return TxFrameStatus::fault;
        }
        out.pieces[out.piece_count++] = {base_ + s.offset, s.len};
        ++out.slots;
    }
    incomplete_head_ = kNoHead;
    return TxFrameStatus::ready;
}

bool SwitchTxRing::release(std::uint32_t count) {
    if (count == 0 || failed()) return false;
    hwcur_ = ring_advance(hwcur_, count, n_);
    hwtail_ = hwcur_ == 0 ? n_ - 1 : hwcur_ - 1;  // netmap: tail stays one behind head
    store_release(ctl_->tail, hwtail_);
    // Dekker with AppRing::prepare_to_sleep, as for the rx ring.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    return load_acquire(ctl_->kick_app) != 0;
}

bool SwitchTxRing::prepare_to_sleep() {
    if (failed()) return false;
    store_release(ctl_->kick_switch, 1);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    std::uint32_t head;
    if (!read_head(head) || head == hwcur_ || head == incomplete_head_) return false;
    wake();
    return true;
}

std::uint32_t SwitchRxRing::sync() {
    std::uint32_t head;
    if (!read_head(head)) return 0;
    hwcur_ = head;
    // [hwtail, head - 1) is free: one slot stays empty so full and empty differ.
    known_room_ = n_ - 1 - ring_distance(head, hwtail_, n_);
    return known_room_;
}

wire::MutBytes SwitchRxRing::buffer(std::uint32_t k) {
    Slot s;
    if (!load_slot(ring_advance(hwtail_, k, n_), s, 0)) return {};
    return {base_ + s.offset, kBufferSize};
}

void SwitchRxRing::set_length(std::uint32_t k, std::uint16_t len) {
    Slot& s = slots_[ring_advance(hwtail_, k, n_)];
    s.len = len;
    s.flags = 0;
}

void SwitchRxRing::publish(std::uint32_t count) {
    if (count == 0 || failed()) return;
    hwtail_ = ring_advance(hwtail_, count, n_);
    known_room_ -= count;
    store_release(ctl_->tail, hwtail_);
}

}  // namespace ms::ring
