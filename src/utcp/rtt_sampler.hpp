// Contract: RTT samples for the RTO (RFC 6298 §3, Karn's rule), in microseconds. One
// segment end is timed at a time; a sample comes when an ACK covers it. A retransmission
// of anything up to the timed end voids the timing, so no sample ever comes from a
// retransmitted segment; voided() says so until a new segment is timed.
#pragma once

#include <cstdint>
#include <optional>

#include "utcp/seq.hpp"

namespace ms::utcp {

class RttSampler {
public:
    // A segment [seq, seq + len) went out at `now_us`; `retransmit` if any of it had gone before.
    void on_send(Seq32 seq, std::uint32_t len, bool retransmit, std::uint64_t now_us) {
        if (len == 0) return;
        if (retransmit) {
            if (timed_end_ && *timed_end_ > seq) forget();
        } else if (!timed_end_) {
            timed_end_ = seq + len;
            timed_at_ = now_us;
            voided_ = false;
        }
    }
    // The sample an ACK up to `ack` gives, if it covers the timed segment.
    [[nodiscard]] std::optional<std::uint32_t> on_ack(Seq32 ack, std::uint64_t now_us) {
        if (!timed_end_ || ack < *timed_end_) return std::nullopt;
        timed_end_.reset();
        return static_cast<std::uint32_t>(now_us - timed_at_);
    }
    // The timed segment may be resent (fast retransmit, RTO): no sample from it.
    void forget() {
        timed_end_.reset();
        voided_ = true;
    }
    // Karn's rule voided the last timing and no segment is timed since.
    [[nodiscard]] bool voided() const { return voided_ && !timed_end_; }

private:
    std::optional<Seq32> timed_end_;
    std::uint64_t timed_at_ = 0;
    bool voided_ = false;
};

}  // namespace ms::utcp
