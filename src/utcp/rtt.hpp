// Contract: the retransmission timer's value, RFC 6298. Samples come from one timed
// segment at a time and never from a retransmitted one (Karn's rule, §3; the caller
// enforces it). The RTO doubles on each expiry (§5.5) up to a maximum and is clamped
// to a configurable minimum (§2.4 says 1 s; Linux uses 200 ms, and so do we by default).
// Everything is in microseconds (clock.hpp): an RTT of tens of microseconds is measured
// as it is, not rounded to a millisecond.
#pragma once

#include <algorithm>
#include <cstdint>

namespace ms::utcp {

inline constexpr std::uint64_t kInitialRtoUs = 1'000'000;  // RFC 6298 §2.1: 1 s before any sample

class RttEstimator {
public:
    RttEstimator(std::uint64_t min_rto_us, std::uint64_t max_rto_us, std::uint64_t initial_rto_us)
        : min_rto_(min_rto_us), max_rto_(max_rto_us), rto_(initial_rto_us) {}

    // RFC 6298 §2.2 (first sample) and §2.3 (later ones), with alpha 1/8 and beta 1/4,
    // kept in fixed point: srtt_ and rttvar_ are in 1/8 µs and 1/4 µs units.
    void sample(std::uint32_t rtt_us) {
        const std::int64_t r = rtt_us;
        if (!has_sample_) {
            srtt8_ = r * 8;
            rttvar4_ = r * 2;  // R/2, in quarters
            has_sample_ = true;
        } else {
            const std::int64_t err = r - srtt8_ / 8;
            rttvar4_ += (err < 0 ? -err : err) - rttvar4_ / 4;
            srtt8_ += err;
        }
        backoff_ = 0;
        update();
    }
    // §5.5: back off the timer after an expiry.
    void back_off() {
        if (backoff_ < 16) ++backoff_;
    }
    void set_min_rto(std::uint64_t us) {
        min_rto_ = us;
        update();
    }

    [[nodiscard]] std::uint64_t rto() const { return std::min<std::uint64_t>(rto_ << backoff_, max_rto_); }
    [[nodiscard]] std::uint32_t srtt() const { return static_cast<std::uint32_t>(srtt8_ / 8); }
    [[nodiscard]] std::uint32_t rttvar() const { return static_cast<std::uint32_t>(rttvar4_ / 4); }
    [[nodiscard]] std::uint32_t backoff() const { return backoff_; }
    [[nodiscard]] bool has_sample() const { return has_sample_; }
    [[nodiscard]] std::int64_t srtt8() const { return srtt8_; }
    [[nodiscard]] std::int64_t rttvar4() const { return rttvar4_; }
    // A moved connection (connection_image.hpp): the estimate it had.
    void resume(std::int64_t srtt8, std::int64_t rttvar4) {
        srtt8_ = srtt8;
        rttvar4_ = rttvar4;
        has_sample_ = true;
        backoff_ = 0;
        update();
    }

private:
    // §2.3: RTO = SRTT + max(G, K*RTTVAR) with K = 4 and a clock granularity G of 1 µs.
    void update() {
        if (!has_sample_) return;
        const std::int64_t rto = srtt8_ / 8 + std::max<std::int64_t>(1, rttvar4_);
        rto_ = std::clamp<std::uint64_t>(static_cast<std::uint64_t>(rto), min_rto_, max_rto_);
    }

    std::uint64_t min_rto_;
    std::uint64_t max_rto_;
    std::uint64_t rto_;
    std::int64_t srtt8_ = 0;
    std::int64_t rttvar4_ = 0;
    std::uint32_t backoff_ = 0;
    bool has_sample_ = false;
};

}  // namespace ms::utcp
