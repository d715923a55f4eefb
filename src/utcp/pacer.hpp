// Contract: the pacer of one connection, on earliest departure times (EDT, as Linux's
// TCP paces since 4.20). Each segment or super-segment that leaves pushes the next
// departure time on by its length at the pacing rate; the connection sends nothing
// before that time, and arms a timer for it instead, so that the event loop sleeps until
// the departure and never spins. A rate of 0 paces nothing. As Linux, the first
// kUnpacedSegments of a connection leave at once (the initial window). The schedule
// keeps its own time: a send that leaves late (the loop woke after the departure) does
// not push the ones after it back, up to kCatchUpUs late (or two segments' time), so a
// loop that wakes coarsely still sends at the rate. Linux earns back at most half a
// segment's time, with fq's nanosecond timers below it; UTCP's timers have 32 µs ticks,
// and at 100 Mbit/s a segment takes 120 µs. A super-segment holds at most about a
// millisecond of data at the rate, and never less than two segments (Linux's
// tcp_tso_autosize with sk_pacing_shift 10), so that catching up stays fine-grained.
#pragma once

#include <algorithm>
#include <cstdint>

namespace ms::utcp {

class Pacer {
public:
    static constexpr std::uint32_t kUnpacedSegments = 10;
    static constexpr std::uint64_t kCatchUpUs = 1000;

    // Bytes per second; 0: no pacing.
    void set_rate(std::uint64_t bytes_per_second) { rate_ = bytes_per_second; }
    [[nodiscard]] std::uint64_t rate() const { return rate_; }
    // The next send must wait until next_departure().
    [[nodiscard]] bool holds(std::uint64_t now_us) const { return rate_ != 0 && now_us < next_us_; }
    [[nodiscard]] std::uint64_t next_departure() const { return next_us_; }

    // `bytes` of `segments` segments left at `now_us`.
    void on_sent(std::uint32_t bytes, std::uint32_t segments, std::uint64_t now_us) {
        sent_segments_ += segments;
        if (rate_ == 0 || sent_segments_ <= kUnpacedSegments) return;
        const std::uint64_t length_us = std::uint64_t{bytes} * 1'000'000 / rate_;
        const std::uint64_t catch_up_us = next_us_ == 0 ? 0 : std::max(kCatchUpUs, 2 * length_us);  // none at the start
        next_us_ = std::max(next_us_, now_us - std::min(now_us, catch_up_us)) + length_us;
    }

    // The most payload one super-segment may carry at the rate: segments of `segment`
    // bytes worth about a millisecond, at least two; `room` without pacing.
    [[nodiscard]] std::uint32_t burst_limit(std::uint32_t segment, std::uint32_t room) const {
        if (rate_ == 0 || segment == 0) return room;
        const std::uint64_t per_millisecond = rate_ / 1000;
        const std::uint64_t segments = std::max<std::uint64_t>(per_millisecond / segment, 2);
        return static_cast<std::uint32_t>(std::min<std::uint64_t>(segments * segment, room));
    }

private:
    std::uint64_t rate_ = 0;
    std::uint64_t next_us_ = 0;
    std::uint64_t sent_segments_ = 0;
};

}  // namespace ms::utcp
