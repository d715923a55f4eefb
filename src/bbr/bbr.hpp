// Contract: BBR (version 3, as draft-ietf-ccwg-bbr-06 specifies it), a congestion control
// that applications ship with them instead of waiting for their kernel: the algorithm is
// UTCP's CongestionControl interface from outside src/utcp, registered by name ("bbr")
// with a stack's CongestionRegistry (algorithm()). It models the path from delivery rate
// samples (utcp/delivery_rate.hpp: it needs SACK, which gives them; without SACK it
// keeps the initial window and backs off on loss) as a maximum bandwidth (windowed over
// two probing cycles) and a minimum RTT (windowed over 10 s), sends at the model's rate
// (the connection paces to pacing_rate(): utcp/pacer.hpp), and bounds what is in flight
// by a multiple of the model's BDP. The phases: Startup (doubling each round) until the
// bandwidth stops growing or loss is high; Drain; ProbeBW's cycle of DOWN, CRUISE,
// REFILL and UP, with waits that let Reno and CUBIC flows share; ProbeRTT every 5 s. Loss
// (over 2 % of a round's flight) and a probe that went too high bound the model from
// above (inflight_longterm) and for a round from below (bw_shortterm and
// inflight_shortterm, cut by beta 0.7). In UTCP's fast recovery, PRR paces the
// retransmissions toward BBR's cwnd (ssthresh() is the cwnd).
#pragma once

#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <utility>

#include "utcp/congestion.hpp"

namespace ms::bbr {

// The phases, as msctl shows them.
enum class BbrPhase : std::uint8_t {
    startup,
    drain,
    probe_bw_down,
    probe_bw_cruise,
    probe_bw_refill,
    probe_bw_up,
    probe_rtt
};
[[nodiscard]] const char* to_string(BbrPhase p);
// The phase in at most 11 characters, as msctl shows it: startup, drain, bw_down,
// bw_cruise, bw_refill, bw_up, probe_rtt.
[[nodiscard]] const char* short_name(BbrPhase p);

// A windowed maximum over a count (rounds or cycles) with the best value of each of the
// last `window` counts kept (Kathleen Nichols' filter, as Linux's lib/minmax keeps
// three samples; here the windows are two or ten, so the last ten are kept exactly).
class WindowedMax {
public:
    std::uint64_t update(std::uint64_t value, std::uint64_t count, std::uint64_t window);
    [[nodiscard]] std::uint64_t get() const { return best_; }
    void reset() { *this = {}; }

private:
    static constexpr std::size_t kSlots = 10;
    std::uint64_t values_[kSlots] = {};
    std::uint64_t counts_[kSlots] = {};
    std::uint64_t best_ = 0;
};

class Bbr final : public utcp::CongestionControl {
public:
    explicit Bbr(std::uint32_t smss);
    [[nodiscard]] std::string_view name() const override { return "bbr"; }
    [[nodiscard]] std::uint32_t cwnd() const override { return cwnd_; }
    [[nodiscard]] std::uint32_t ssthresh() const override { return cwnd_; }
    [[nodiscard]] std::uint64_t pacing_rate() const override { return pacing_rate_; }
    // ProbeRTT's low flight is the algorithm's, not the path's (the draft's
    // MarkConnectionAppLimited in BBRHandleProbeRTT).
    [[nodiscard]] bool holds_sender_back() const override { return phase_ == BbrPhase::probe_rtt; }
    [[nodiscard]] utcp::CcModel model() const override {
        return {.bandwidth = bw_, .min_rtt_us = min_rtt_us_ == UINT32_MAX ? 0 : min_rtt_us_, .phase = short_name(phase_)};
    }
    void on_every_ack(const utcp::CcSample& s) override;
    void on_ack(const utcp::CcSample& s) override;
    void on_enter_recovery(const utcp::CcSample& s) override;
    void on_dup_ack_in_recovery(const utcp::CcSample&) override {}
    void on_partial_ack(const utcp::CcSample&) override {}
    void on_exit_recovery(const utcp::CcSample& s) override;
    void on_rto(const utcp::CcSample& s) override;
    void on_ecn(const utcp::CcSample& s) override;
    void on_idle_restart(const utcp::CcSample& s) override;

    // The model, for msctl and tests.
    [[nodiscard]] BbrPhase phase() const { return phase_; }
    [[nodiscard]] std::uint64_t bandwidth() const { return bw_; }  // bytes per second
    [[nodiscard]] std::uint64_t max_bandwidth() const { return max_bw_.get(); }
    [[nodiscard]] std::uint32_t min_rtt_us() const { return min_rtt_us_; }
    [[nodiscard]] std::uint64_t round_count() const { return round_count_; }

private:
    static constexpr std::uint64_t kInfinite = std::numeric_limits<std::uint64_t>::max();

    // The draft's UpdateModelAndState and UpdateControlParameters, in its order.
    void update_round(const utcp::RateSample& rs);
    void update_latest_delivery_signals(const utcp::RateSample& rs);
    void update_congestion_signals(const utcp::RateSample& rs);
    void update_ack_aggregation(const utcp::RateSample& rs, std::uint64_t now_us);
    void check_full_bw_reached(const utcp::RateSample& rs);
    void check_startup_high_loss(const utcp::RateSample& rs);
    void check_drain_done(const utcp::RateSample& rs, std::uint64_t now_us);
    void update_probe_bw_cycle_phase(const utcp::RateSample& rs, std::uint64_t now_us);
    bool adapt_long_term_model(const utcp::RateSample& rs, std::uint64_t now_us);
    void update_min_rtt(const utcp::RateSample& rs, std::uint64_t now_us);
    void check_probe_rtt(const utcp::RateSample& rs, std::uint64_t now_us);
    void set_pacing_rate(double gain);
    void set_cwnd(const utcp::RateSample& rs);

    // ProbeBW.
    void enter_probe_bw(std::uint64_t now_us);
    void start_down(std::uint64_t now_us);
    void start_cruise();
    void start_refill();
    void start_up(const utcp::RateSample& rs);
    bool time_to_probe_bw(std::uint64_t now_us);
    [[nodiscard]] bool time_to_cruise(const utcp::RateSample& rs) const;
    bool time_to_go_down(const utcp::RateSample& rs);
    void raise_inflight_longterm_slope();
    void probe_inflight_longterm_upward(const utcp::RateSample& rs);
    void handle_inflight_too_high(const utcp::RateSample& rs, std::uint64_t now_us);
    [[nodiscard]] static bool inflight_too_high(const utcp::RateSample& rs);
    void exit_probe_rtt(std::uint64_t now_us);

    // The model's volumes.
    [[nodiscard]] std::uint64_t bdp_multiple(std::uint64_t bw, double gain) const;
    [[nodiscard]] std::uint64_t quantization_budget(std::uint64_t inflight) const;
    [[nodiscard]] std::uint64_t inflight(std::uint64_t bw, double gain) const;
    [[nodiscard]] std::uint64_t inflight_with_headroom() const;
    [[nodiscard]] std::uint64_t target_inflight() const;
    [[nodiscard]] std::uint64_t probe_rtt_cwnd() const;
    [[nodiscard]] bool probing_bw() const;
    [[nodiscard]] bool in_probe_bw() const;
    void start_round() { next_round_delivered_ = delivered_; }
    void reset_full_bw();
    void reset_short_term_model();
    void save_cwnd();
    void note_loss();

    std::uint32_t smss_;
    std::uint32_t cwnd_;
    std::uint32_t initial_cwnd_;
    std::uint32_t prior_cwnd_ = 0;
    std::uint64_t pacing_rate_;
    std::uint64_t send_quantum_;
    bool in_recovery_ = false;
    bool started_ = false;           // the first ACK came
    bool has_rate_samples_ = false;  // SACK gives rate samples: the model runs
    BbrPhase phase_ = BbrPhase::startup;
    double pacing_gain_;
    double cwnd_gain_;

    // Connection totals, as the rate samples give them.
    std::uint64_t delivered_ = 0;
    std::uint32_t in_flight_ = 0;

    // The model.
    WindowedMax max_bw_;
    std::uint64_t bw_ = 0;
    std::uint64_t bw_shortterm_ = kInfinite;
    std::uint64_t inflight_longterm_ = kInfinite;
    std::uint64_t inflight_shortterm_ = kInfinite;
    std::uint64_t bw_latest_ = 0;
    std::uint64_t inflight_latest_ = 0;
    WindowedMax extra_acked_;
    std::uint64_t extra_acked_interval_start_us_ = 0;
    std::uint64_t extra_acked_delivered_ = 0;
    std::uint32_t min_rtt_us_ = UINT32_MAX;
    std::uint64_t min_rtt_stamp_us_ = 0;
    std::uint32_t probe_rtt_min_delay_us_ = UINT32_MAX;
    std::uint64_t probe_rtt_min_stamp_us_ = 0;
    bool probe_rtt_expired_ = false;
    std::uint64_t probe_rtt_done_stamp_us_ = 0;
    bool probe_rtt_round_done_ = false;
    bool idle_restart_ = false;

    // Rounds.
    std::uint64_t round_count_ = 0;
    bool round_start_ = false;
    std::uint64_t next_round_delivered_ = 0;
    std::uint64_t loss_round_delivered_ = 0;
    bool loss_round_start_ = false;
    bool loss_in_round_ = false;
    std::uint64_t lost_in_round_ = 0;     // bytes deemed lost this loss round (Startup's exit)
    std::uint64_t loss_events_in_round_ = 0;
    std::uint64_t drain_start_round_ = 0;

    // Startup.
    std::uint64_t full_bw_ = 0;
    std::uint32_t full_bw_count_ = 0;
    bool full_bw_now_ = false;
    bool full_bw_reached_ = false;

    // ProbeBW.
    enum class AckPhase : std::uint8_t { init, refilling, probe_starting, probe_feedback, probe_stopping };
    AckPhase ack_phase_ = AckPhase::init;
    std::uint64_t cycle_stamp_us_ = 0;
    std::uint64_t cycle_count_ = 0;
    std::uint64_t bw_probe_wait_us_ = 0;
    std::uint64_t rounds_since_probe_up_ = 0;
    std::uint32_t bw_probe_up_rounds_ = 0;
    std::uint64_t bw_probe_up_acked_ = 0;
    std::uint64_t probe_up_acked_per_inc_ = kInfinite;
    bool bw_probe_sample_ = false;
    bool prev_probe_too_high_ = false;
    bool prev_probe_precautionary_ = false;
    std::minstd_rand random_;
};

// The name and factory to give a stack's CongestionRegistry (LoopOptions::congestion_algorithms).
[[nodiscard]] std::pair<std::string, utcp::CongestionRegistry::Factory> algorithm();

}  // namespace ms::bbr
