// Contract: the control loop's timers: monotonic, non-blocking timerfds that its epoll
// set watches. Arming and draining never block and never fail in a way the loop could act
// on, so they report nothing.
#pragma once

namespace ms::daemon {

// A new timer, disarmed; -1 (errno set) if the kernel refuses one.
[[nodiscard]] int open_timer();
// Fires every `nanoseconds` from now on; 0 disarms.
void set_period(int timer, long nanoseconds);
// Reads the expirations that made the timer readable.
void drain_timer(int timer);

}  // namespace ms::daemon
