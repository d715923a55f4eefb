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
      n_(region.layout().slots_per_ring),
      // The switch sets the ring up (Region::create), so these are its own values.
      hwcur_(load_acquire(ctl_->head)),
      hwtail_(load_acquire(ctl_->tail)) {}

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

bool SwitchRing::load_slot(std::uint32_t i, Slot& out, std::uint32_t min_len) {
    // One copy of the slot, so the application cannot change it between check and use.
    std::memcpy(&out, &slots_[i], sizeof out);
    if (out.len > kMaxFrameSize || out.len < min_len) {
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

wire::Bytes SwitchTxRing::frame(std::uint32_t k) {
    Slot s;
    constexpr std::uint32_t kMinFrame = 14;  // an Ethernet header
    if (!load_slot(ring_advance(hwcur_, k, n_), s, kMinFrame)) return {};
    return {base_ + s.offset, s.len};
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
    if (sync() == 0) return false;
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
    slots_[ring_advance(hwtail_, k, n_)].len = len;
}

void SwitchRxRing::publish(std::uint32_t count) {
    if (count == 0 || failed()) return;
    hwtail_ = ring_advance(hwtail_, count, n_);
    known_room_ -= count;
    store_release(ctl_->tail, hwtail_);
}

}  // namespace ms::ring
