#include "daemon/timers.hpp"

#include <sys/timerfd.h>
#include <unistd.h>

#include <cstdint>

namespace ms::daemon {

int open_timer() { return ::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK); }

void set_period(int timer, long nanoseconds) {
    itimerspec spec{};
    spec.it_interval.tv_sec = spec.it_value.tv_sec = nanoseconds / 1'000'000'000;
    spec.it_interval.tv_nsec = spec.it_value.tv_nsec = nanoseconds % 1'000'000'000;
    (void)::timerfd_settime(timer, 0, &spec, nullptr);
}

void drain_timer(int timer) {
    std::uint64_t ticks;
    (void)!::read(timer, &ticks, sizeof ticks);
}

}  // namespace ms::daemon
