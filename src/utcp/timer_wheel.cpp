#include "utcp/timer_wheel.hpp"

#include <algorithm>
#include <bit>
#include <limits>

namespace ms::utcp {

Timer::~Timer() {
    if (wheel_) wheel_->cancel(*this);
}

TimerWheel::TimerWheel(std::uint64_t start_us, std::uint32_t slots, std::uint32_t tick_us)
    : slots_(std::bit_ceil(std::max(slots, 1u)), nullptr),
      mask_(slots_.size() - 1),
      tick_us_(std::max(tick_us, 1u)),
      current_tick_(start_us / tick_us_) {}

TimerWheel::~TimerWheel() {
    for (Timer*& head : slots_) {
        while (head) unlink(*head);
    }
}

void TimerWheel::link(Timer& t) {
    // A deadline already passed lands on the current tick, so the next advance fires it.
    const std::uint64_t tick = std::max(t.deadline_ / tick_us_, current_tick_);
    t.slot_ = static_cast<std::uint32_t>(tick & mask_);
    Timer*& head = slots_[t.slot_];
    if (!head) {
        t.prev_ = t.next_ = &t;
        head = &t;
    } else {
        t.prev_ = head->prev_;
        t.next_ = head;
        head->prev_->next_ = &t;
        head->prev_ = &t;
    }
    t.wheel_ = this;
    ++count_;
    next_ = std::min(next_, t.deadline_);
}

void TimerWheel::unlink(Timer& t) {
    Timer*& head = slots_[t.slot_];
    if (t.next_ == &t) {
        head = nullptr;
    } else {
        t.prev_->next_ = t.next_;
        t.next_->prev_ = t.prev_;
        if (head == &t) head = t.next_;
    }
    t.wheel_ = nullptr;
    t.prev_ = t.next_ = nullptr;
    --count_;
    if (t.deadline_ <= next_) next_known_ = false;
}

void TimerWheel::schedule(Timer& t, std::uint64_t deadline_us) {
    if (t.wheel_) t.wheel_->cancel(t);
    t.deadline_ = deadline_us;
    soonest_scheduled_ = std::min(soonest_scheduled_, deadline_us);
    link(t);
}

void TimerWheel::cancel(Timer& t) {
    if (t.wheel_ == this) unlink(t);
}

std::size_t TimerWheel::advance(std::uint64_t now_us, const Fire& fire) {
    const std::uint64_t last_tick = now_us / tick_us_;
    std::size_t fired = 0;
    // Visit each tick once; after a whole turn every slot has been seen, so a long
    // jump costs at most one turn plus the timers that fire.
    // The current tick is visited again: timers scheduled into it since (a past deadline
    // lands there) must fire now.
    const std::uint64_t end = std::min(last_tick + 1, current_tick_ + slots_.size());
    std::vector<Timer*>& due = due_;  // reused: no allocation per tick once warm
    for (std::uint64_t tick = current_tick_; tick < end; ++tick) {
        Timer* head = slots_[tick & mask_];
        if (!head) continue;
        due.clear();
        Timer* t = head;
        do {
            if (t->deadline_ <= now_us) due.push_back(t);
            t = t->next_;
        } while (t != head);
        std::sort(due.begin(), due.end(), [](const Timer* a, const Timer* b) { return a->deadline_ < b->deadline_; });
        for (Timer* d : due) unlink(*d);
        for (Timer* d : due) {
            fire(*d);
            ++fired;
        }
    }
    current_tick_ = std::max(current_tick_, last_tick);
    return fired;
}

std::uint64_t TimerWheel::next_deadline() const {
    if (!next_known_) {
        next_ = find_next_deadline();
        next_known_ = true;
    }
    return next_;
}

std::uint64_t TimerWheel::find_next_deadline() const {
    std::uint64_t best = std::numeric_limits<std::uint64_t>::max();
    if (count_ == 0) return best;
    // Scan from the current tick: the first non-empty slot within one turn holds the
    // soonest timers unless later turns' timers share it, hence the min over the slot.
    for (std::uint64_t i = 0; i < slots_.size(); ++i) {
        const Timer* head = slots_[(current_tick_ + i) & mask_];
        if (!head) continue;
        const Timer* t = head;
        do {
            best = std::min(best, t->deadline_);
            t = t->next_;
        } while (t != head);
        if (best / tick_us_ <= current_tick_ + i) return best;
    }
    return best;
}

}  // namespace ms::utcp
