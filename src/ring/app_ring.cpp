#include "ring/app_ring.hpp"

namespace ms::ring {

AppRing::AppRing(const Region& region, std::uint32_t ring)
    : base_(region.base()),
      ctl_(&region.control(ring)),
      slots_(region.slots(ring).data()),
      n_(region.layout().slots_per_ring),
      head_(load_acquire(ctl_->head)) {}

bool AppRing::prepare_to_sleep() {
    store_release(ctl_->kick_app, 1);
    // Dekker: our flag store must be visible before we re-read the switch's index.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (ready() == 0) return false;
    wake();
    return true;
}

void AppRing::advance_head(std::uint32_t count, const EventFd* kick) {
    if (count == 0) return;
    head_ = ring_advance(head_, count, n_);
    // cur first: the switch reads head and then cur, and must never see cur behind head.
    store_release(ctl_->cur, head_);
    store_release(ctl_->head, head_);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (kick && load_acquire(ctl_->kick_switch) != 0) kick->notify();
}

}  // namespace ms::ring
