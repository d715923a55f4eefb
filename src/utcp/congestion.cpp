#include "utcp/congestion.hpp"

#include <algorithm>

namespace ms::utcp {
namespace {

// RFC 6928: an initial window of min(10*MSS, max(2*MSS, 14600)).
std::uint32_t initial_window(std::uint32_t smss) { return std::min(10 * smss, std::max(2 * smss, 14600u)); }

// RFC 5681 §3.1 eqn. 4: ssthresh = max(FlightSize / 2, 2*SMSS).
std::uint32_t half_flight(std::uint32_t flight, std::uint32_t smss) { return std::max(flight / 2, 2 * smss); }

class NewReno final : public CongestionControl {
public:
    explicit NewReno(std::uint32_t smss) : cwnd_(initial_window(smss)) {}

    [[nodiscard]] std::string_view name() const override { return "newreno"; }
    [[nodiscard]] std::uint32_t cwnd() const override { return cwnd_; }
    [[nodiscard]] std::uint32_t ssthresh() const override { return ssthresh_; }

    void on_ack(std::uint32_t acked, std::uint32_t smss) override {
        if (cwnd_ < ssthresh_) {
            // RFC 5681 §3.1 slow start with byte counting (RFC 3465). Batching receivers
            // (ours, and Linux with GRO) send stretch ACKs, so the whole amount counts,
            // as in Linux, rather than RFC 3465's L = 2 SMSS, which would slow slow start.
            cwnd_ = std::min(cwnd_ + acked, std::max(ssthresh_, cwnd_));
        } else {
            // Congestion avoidance: about one SMSS per RTT, counted in bytes.
            avoidance_bytes_ += acked;
            if (avoidance_bytes_ >= cwnd_) {
                avoidance_bytes_ -= cwnd_;
                cwnd_ += smss;
            }
        }
    }
    void on_enter_recovery(std::uint32_t flight, std::uint32_t smss) override {
        // RFC 6582 §3.2 step 2 (RFC 5681 §3.2 steps 2 and 3): halve, then inflate by the
        // three segments that the duplicate ACKs say have left the network.
        ssthresh_ = half_flight(flight, smss);
        cwnd_ = ssthresh_ + 3 * smss;
    }
    void on_dup_ack_in_recovery(std::uint32_t smss) override { cwnd_ += smss; }  // §3.2 step 3
    void on_partial_ack(std::uint32_t acked, std::uint32_t smss) override {
        // RFC 6582 §3.2 step 5: deflate by the amount acknowledged, then add back one SMSS
        // if that amount was at least one SMSS.
        cwnd_ = cwnd_ > acked ? cwnd_ - acked : smss;
        if (acked >= smss) cwnd_ += smss;
        cwnd_ = std::max(cwnd_, smss);
    }
    void on_exit_recovery(std::uint32_t flight, std::uint32_t smss) override {
        // RFC 6582 §3.2 step 6, option 1: min(ssthresh, max(FlightSize, SMSS) + SMSS).
        cwnd_ = std::min(ssthresh_, std::max(flight, smss) + smss);
        avoidance_bytes_ = 0;
    }
    void on_rto(std::uint32_t flight, std::uint32_t smss) override {
        // RFC 5681 §3.1 eqns. 4 and 5: loss window of one segment.
        ssthresh_ = half_flight(flight, smss);
        cwnd_ = smss;
        avoidance_bytes_ = 0;
    }
    void on_idle_restart(std::uint32_t smss) override { cwnd_ = std::min(cwnd_, initial_window(smss)); }

private:
    std::uint32_t cwnd_;
    std::uint32_t ssthresh_ = 0xffffffff;  // RFC 5681 §3.1: arbitrarily high at first
    std::uint32_t avoidance_bytes_ = 0;
};

}  // namespace

std::unique_ptr<CongestionControl> make_congestion_control(CongestionAlgorithm algorithm, std::uint32_t smss) {
    switch (algorithm) {
        case CongestionAlgorithm::new_reno:
            break;
    }
    return std::make_unique<NewReno>(smss);
}

}  // namespace ms::utcp
