// Contract: a hashed timing wheel (Varghese and Lauck) for UTCP's timers, so that
// 100k connections cost O(1) per tick and per operation. Time is injected (docs/DESIGN.md §7):
// the wheel never reads a clock; deadlines and `now` are microseconds from an epoch the
// caller chooses (clock.hpp). A timer is a handle owned by the caller (one per connection timer);
// schedule() replaces a pending deadline, cancel() removes it, and advance(now) fires
// every timer whose deadline is at or before `now`, in deadline order within each tick.
// A deadline beyond the wheel's span waits in its slot for as many turns as it needs.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <utility>
#include <vector>

namespace ms::utcp {

class TimerWheel;

class Timer {
public:
    Timer() = default;
    Timer(const Timer&) = delete;
    Timer& operator=(const Timer&) = delete;
    ~Timer();

    [[nodiscard]] bool pending() const { return wheel_ != nullptr; }
    [[nodiscard]] std::uint64_t deadline() const { return deadline_; }

private:
    friend class TimerWheel;
    TimerWheel* wheel_ = nullptr;
    Timer* prev_ = nullptr;
    Timer* next_ = nullptr;
    std::uint64_t deadline_ = 0;
    std::uint32_t slot_ = 0;
};

class TimerWheel {
public:
    using Fire = std::function<void(Timer&)>;

    // `slots` ticks of `tick_us` each make one turn of the wheel (slots round up to a power
    // of two, a tick is at least 1 µs).
    TimerWheel(std::uint64_t start_us, std::uint32_t slots = 4096, std::uint32_t tick_us = 1);
    ~TimerWheel();
    TimerWheel(const TimerWheel&) = delete;
    TimerWheel& operator=(const TimerWheel&) = delete;

    // Arms `t` for `deadline_us` (a past deadline fires at the next advance).
    void schedule(Timer& t, std::uint64_t deadline_us);
    void cancel(Timer& t);
    // Fires, through `fire`, every timer due at or before `now_us`; returns how many.
    // A fired timer is no longer pending; `fire` may schedule it (or others) again.
    std::size_t advance(std::uint64_t now_us, const Fire& fire);
    // The earliest pending deadline, for the event loop's poll_at(); UINT64_MAX if none.
    // Kept between calls: only firing or cancelling the earliest timer makes the next call
    // look again (a walk of up to one turn), so a loop that asks on every turn while only
    // far timers wait (keepalives, TIME_WAIT) does not walk every slot each time.
    [[nodiscard]] std::uint64_t next_deadline() const;
    // The soonest deadline scheduled since the last call (UINT64_MAX: none), in O(1): a
    // thread that sleeps until next_deadline() learns whether it must wake earlier.
    [[nodiscard]] std::uint64_t take_soonest_scheduled() {
        return std::exchange(soonest_scheduled_, std::numeric_limits<std::uint64_t>::max());
    }
    [[nodiscard]] std::size_t size() const { return count_; }

private:
    void link(Timer& t);
    void unlink(Timer& t);
    [[nodiscard]] std::uint64_t find_next_deadline() const;  // walks the slots

    std::vector<Timer*> slots_;  // heads of circular doubly-linked lists
    std::uint64_t mask_;
    std::uint32_t tick_us_;
    std::uint64_t current_tick_;  // the last tick advance() processed
    std::size_t count_ = 0;
    std::uint64_t soonest_scheduled_ = std::numeric_limits<std::uint64_t>::max();
    std::vector<Timer*> due_;
    // next_deadline()'s answer while `next_known_`: link() lowers it, unlinking the timer
    // that holds it forgets it.
    mutable std::uint64_t next_ = std::numeric_limits<std::uint64_t>::max();
    mutable bool next_known_ = true;
};

}  // namespace ms::utcp
