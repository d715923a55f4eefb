// Contract: delivery rate estimation, as the IETF's BBR draft assumes it (the draft of
// Cheng and Cardwell, "Delivery Rate Estimation"). Each transmission of a segment records
// how much the connection had delivered by then and when, when the current flight began,
// what was in flight, and whether the application was the limit. When segments are
// delivered (acknowledged or SACKed), the most recently sent of them yields one sample per
// ACK: the bytes delivered since it went, over the longer of its send and ACK intervals,
// so that neither a burst of sends nor an ACK compressed in a queue overstates the rate.
// A sample whose interval is shorter than the minimum RTT is dropped as too noisy. The
// estimator keeps totals (bytes delivered and lost) that algorithms count rounds by.
#pragma once

#include <algorithm>
#include <cstdint>

namespace ms::utcp {

// What a transmission recorded (kept with the segment on the scoreboard).
struct SendStamp {
    std::uint64_t delivered = 0;     // the connection's delivered bytes when it went
    std::uint64_t delivered_us = 0;  // when those bytes were delivered
    std::uint64_t first_sent_us = 0; // when the flight it went in began
    std::uint64_t lost = 0;          // the connection's lost bytes when it went
    std::uint32_t in_flight = 0;     // bytes in flight once it went (tx_in_flight)
    bool app_limited = false;        // the application, not the network, limited the sender
};

// One ACK's sample.
struct RateSample {
    std::uint64_t delivery_rate = 0;    // bytes per second; 0: no valid sample on this ACK
    std::uint64_t delivered = 0;        // bytes delivered over the interval
    std::uint64_t interval_us = 0;
    std::uint64_t prior_delivered = 0;  // the connection's delivered bytes when the sampled segment went
    std::uint64_t tx_lost = 0;          // bytes lost since the sampled segment went
    std::uint32_t tx_in_flight = 0;     // bytes in flight when it went
    std::uint32_t newly_acked = 0;      // bytes this ACK delivered
    std::uint32_t newly_lost = 0;       // bytes this ACK deemed lost
    std::uint32_t in_flight = 0;        // bytes in flight after the ACK
    std::uint32_t rtt_us = 0;           // the sampled segment's RTT; 0: none (or ambiguous: resent)
    std::uint64_t total_delivered = 0;  // the connection's delivered bytes after the ACK
    bool has_data = false;              // something was delivered: the fields above are set
    bool app_limited = false;
    [[nodiscard]] bool valid() const { return delivery_rate > 0; }
};

class DeliveryRate {
public:
    // A transmission at `now_us`, with `in_flight` bytes outstanding before it.
    [[nodiscard]] SendStamp on_send(std::uint32_t len, std::uint32_t in_flight, std::uint64_t now_us) {
        if (in_flight == 0) first_sent_us_ = delivered_us_ = now_us;  // a new flight
        return {.delivered = delivered_,
                .delivered_us = delivered_us_,
                .first_sent_us = first_sent_us_,
                .lost = lost_,
                .in_flight = in_flight + len,
                .app_limited = app_limited_until_ != 0};
    }
    // A segment of `len` bytes sent at `sent_us` with `stamp` was delivered at `now_us`;
    // `resent`: some transmission before the last one, whose ACK this may be, so its
    // RTT is ambiguous (Karn) and none is sampled.
    void on_delivered(std::uint32_t len, std::uint64_t sent_us, const SendStamp& stamp, std::uint64_t now_us,
                      bool resent = false) {
        delivered_ += len;
        delivered_us_ = now_us;
        sample_.newly_acked += len;
        if (!has_prior_ || stamp.delivered >= sample_.prior_delivered) {
            has_prior_ = true;
            sample_.prior_delivered = stamp.delivered;
            sample_.tx_in_flight = stamp.in_flight;
            sampled_lost_ = stamp.lost;  // tx_lost is taken after this ACK's losses are marked
            sample_.app_limited = stamp.app_limited;
            sample_.rtt_us = resent ? 0 : static_cast<std::uint32_t>(now_us - sent_us);
            send_elapsed_us_ = sent_us - stamp.first_sent_us;
            ack_elapsed_us_ = now_us - stamp.delivered_us;
            first_sent_us_ = sent_us;  // the next flight is measured from here
        }
    }
    // `len` bytes deemed lost.
    void on_lost(std::uint32_t len) {
        lost_ += len;
        sample_.newly_lost += len;
    }
    // The sender ran out of data with `in_flight` bytes out: what goes from now on is
    // marked, until an ACK delivers beyond those bytes (the bubble is gone; Linux's
    // tcp_rate_gen, the draft's "C.delivered > C.app_limited"). With nothing in flight,
    // the next send is marked too.
    void on_app_limited(std::uint32_t in_flight) { app_limited_until_ = std::max<std::uint64_t>(delivered_ + in_flight, 1); }

    // The sample of the ACK just processed (then a new one begins).
    [[nodiscard]] RateSample take(std::uint32_t in_flight, std::uint32_t min_rtt_us) {
        RateSample s = sample_;
        s.in_flight = in_flight;
        s.total_delivered = delivered_;
        s.has_data = has_prior_;
        if (has_prior_) {
            s.tx_lost = lost_ - sampled_lost_;
            s.delivered = delivered_ - s.prior_delivered;
            s.interval_us = std::max(send_elapsed_us_, ack_elapsed_us_);
            const bool too_short = s.interval_us == 0 || (min_rtt_us != UINT32_MAX && s.interval_us < min_rtt_us);
            s.delivery_rate = too_short ? 0 : s.delivered * 1'000'000 / s.interval_us;
        }
        sample_ = {};
        has_prior_ = false;
        if (app_limited_until_ != 0 && delivered_ > app_limited_until_) app_limited_until_ = 0;
        return s;
    }

    [[nodiscard]] std::uint64_t delivered() const { return delivered_; }
    [[nodiscard]] std::uint64_t lost() const { return lost_; }
    [[nodiscard]] bool app_limited() const { return app_limited_until_ != 0; }

private:
    std::uint64_t delivered_ = 0;
    std::uint64_t delivered_us_ = 0;
    std::uint64_t first_sent_us_ = 0;
    std::uint64_t lost_ = 0;
    std::uint64_t app_limited_until_ = 0;  // 0: not app-limited; else delivered_ at which it ends
    RateSample sample_;
    bool has_prior_ = false;
    std::uint64_t sampled_lost_ = 0;  // the sampled segment's SendStamp::lost
    std::uint64_t send_elapsed_us_ = 0;
    std::uint64_t ack_elapsed_us_ = 0;
};

}  // namespace ms::utcp
