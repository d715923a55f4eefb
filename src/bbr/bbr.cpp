// BBR (bbr.hpp), in the order of draft-ietf-ccwg-bbr-06's pseudocode. Where the draft's
// pseudocode leaves a gap, the choice and its reason are noted at the place.
#include "bbr/bbr.hpp"

#include <algorithm>
#include <cmath>
#include <memory>

namespace ms::bbr {
namespace {

constexpr double kStartupPacingGain = 2.77;  // 4 ln 2
constexpr double kDefaultCwndGain = 2.0;
constexpr double kDrainPacingGain = 0.5;
constexpr double kDownPacingGain = 0.9;
constexpr double kUpPacingGain = 1.25;
constexpr double kUpCwndGain = 2.25;
constexpr double kProbeRttCwndGain = 0.5;
constexpr double kPacingMargin = 0.99;  // pace 1 % below the model's rate
constexpr double kLossThresh = 0.02;
constexpr double kBeta = 0.7;
constexpr double kHeadroom = 0.15;
constexpr double kFullBwGrowth = 1.25;
constexpr std::uint32_t kFullBwRounds = 3;
constexpr std::uint32_t kStartupFullLossEvents = 6;
constexpr std::uint64_t kMaxBwFilterCycles = 2;
constexpr std::uint64_t kExtraAckedFilterRounds = 10;
constexpr std::uint64_t kProbeRttIntervalUs = 5'000'000;
constexpr std::uint64_t kProbeRttDurationUs = 200'000;
constexpr std::uint64_t kMinRttFilterUs = 10'000'000;
constexpr std::uint64_t kDrainMaxRounds = 3;
constexpr std::uint64_t kRenoCoexistenceMaxRounds = 63;
constexpr std::uint32_t kMaxProbeUpRounds = 30;
constexpr std::uint64_t kSendQuantumMax = 64 * 1024;

std::uint64_t scaled(std::uint64_t v, double gain) { return static_cast<std::uint64_t>(static_cast<double>(v) * gain); }

// A seed per connection: the probe waits must differ between flows (the draft randomises
// them so that flows do not probe in step).
std::uint32_t next_seed() {
    static std::uint32_t counter = 0;
    return std::random_device{}() ^ (++counter * 0x9e3779b9u);
}

}  // namespace

const char* to_string(BbrPhase p) {
    switch (p) {
        case BbrPhase::startup: return "startup";
        case BbrPhase::drain: return "drain";
        case BbrPhase::probe_bw_down: return "probe_bw_down";
        case BbrPhase::probe_bw_cruise: return "probe_bw_cruise";
        case BbrPhase::probe_bw_refill: return "probe_bw_refill";
        case BbrPhase::probe_bw_up: return "probe_bw_up";
        case BbrPhase::probe_rtt: return "probe_rtt";
    }
    return "?";
}

const char* short_name(BbrPhase p) {
    switch (p) {
        case BbrPhase::probe_bw_down: return "bw_down";
        case BbrPhase::probe_bw_cruise: return "bw_cruise";
        case BbrPhase::probe_bw_refill: return "bw_refill";
        case BbrPhase::probe_bw_up: return "bw_up";
        default: return to_string(p);
    }
}

std::uint64_t WindowedMax::update(std::uint64_t value, std::uint64_t count, std::uint64_t window) {
    const std::size_t slot = count % kSlots;
    if (counts_[slot] != count) {
        counts_[slot] = count;
        values_[slot] = 0;
    }
    values_[slot] = std::max(values_[slot], value);
    best_ = 0;
    for (std::size_t k = 0; k < kSlots; ++k) {
        if (counts_[k] + std::min<std::uint64_t>(window, kSlots) > count) best_ = std::max(best_, values_[k]);
    }
    return best_;
}

Bbr::Bbr(std::uint32_t smss)
    : smss_(smss),
      cwnd_(10 * smss),
      initial_cwnd_(10 * smss),
      pacing_rate_(static_cast<std::uint64_t>(kStartupPacingGain * 10 * smss * 1000)),  // the initial window a millisecond
      send_quantum_(2 * smss),
      pacing_gain_(kStartupPacingGain),
      cwnd_gain_(kDefaultCwndGain),
      random_(next_seed()) {}

// --- per ACK -------------------------------------------------------------------------------

void Bbr::on_every_ack(const utcp::CcSample& s) {
    if (!s.rate) return;
    has_rate_samples_ = true;
    const utcp::RateSample& rs = *s.rate;
    const std::uint64_t now = s.now_us;
    if (!rs.has_data) {  // losses only (an ACK that delivered nothing): counted for the round
        if (rs.newly_lost > 0) {
            note_loss();
            lost_in_round_ += rs.newly_lost;
            ++loss_events_in_round_;
        }
        return;
    }
    if (!started_) {  // the filters' stamps start at the first ACK (the draft leaves them unset; Linux: now)
        started_ = true;
        min_rtt_stamp_us_ = probe_rtt_min_stamp_us_ = extra_acked_interval_start_us_ = now;
    }
    delivered_ = rs.total_delivered;
    in_flight_ = rs.in_flight;
    if (min_rtt_us_ == UINT32_MAX && rs.rtt_us > 0) {  // the first RTT: the initial rate from it, as Linux
        pacing_rate_ = static_cast<std::uint64_t>(kStartupPacingGain * initial_cwnd_ * 1e6 / rs.rtt_us);
    }
    if (rs.newly_lost > 0) {
        note_loss();
        lost_in_round_ += rs.newly_lost;
        ++loss_events_in_round_;
        if (bw_probe_sample_ && inflight_too_high(rs)) handle_inflight_too_high(rs, now);
    }
    update_latest_delivery_signals(rs);
    update_congestion_signals(rs);
    update_ack_aggregation(rs, now);
    check_full_bw_reached(rs);
    check_startup_high_loss(rs);
    if (phase_ == BbrPhase::startup && full_bw_reached_) {
        phase_ = BbrPhase::drain;
        pacing_gain_ = kDrainPacingGain;
        cwnd_gain_ = kDefaultCwndGain;
        drain_start_round_ = round_count_;
    }
    check_drain_done(rs, now);
    update_probe_bw_cycle_phase(rs, now);
    update_min_rtt(rs, now);
    check_probe_rtt(rs, now);
    if (loss_round_start_) {  // AdvanceLatestDeliverySignals
        bw_latest_ = rs.delivery_rate;
        inflight_latest_ = rs.delivered;
    }
    bw_ = std::min(max_bw_.get(), bw_shortterm_);
    set_pacing_rate(pacing_gain_);
    send_quantum_ = std::clamp<std::uint64_t>(pacing_rate_ / 1000, 2 * smss_, kSendQuantumMax);
    set_cwnd(rs);
}

void Bbr::update_round(const utcp::RateSample& rs) {
    round_start_ = rs.prior_delivered >= next_round_delivered_;
    if (!round_start_) return;
    next_round_delivered_ = delivered_;
    ++round_count_;
    ++rounds_since_probe_up_;
}

void Bbr::update_latest_delivery_signals(const utcp::RateSample& rs) {
    loss_round_start_ = false;
    bw_latest_ = std::max(bw_latest_, rs.delivery_rate);
    inflight_latest_ = std::max(inflight_latest_, rs.delivered);
    if (rs.prior_delivered >= loss_round_delivered_) {
        loss_round_delivered_ = delivered_;
        loss_round_start_ = true;
    }
}

void Bbr::update_congestion_signals(const utcp::RateSample& rs) {
    update_round(rs);  // UpdateMaxBw
    if (rs.delivery_rate > 0 && (rs.delivery_rate >= max_bw_.get() || !rs.app_limited)) {
        max_bw_.update(rs.delivery_rate, cycle_count_, kMaxBwFilterCycles);
    }
    if (!loss_round_start_) return;
    if (!probing_bw() && loss_in_round_) {  // InitLowerBounds, then LossLowerBounds
        if (bw_shortterm_ == kInfinite) bw_shortterm_ = max_bw_.get();
        if (inflight_shortterm_ == kInfinite) inflight_shortterm_ = cwnd_;
        bw_shortterm_ = std::max(bw_latest_, scaled(bw_shortterm_, kBeta));
        inflight_shortterm_ = std::max(inflight_latest_, scaled(inflight_shortterm_, kBeta));
    }
    loss_in_round_ = false;
}

void Bbr::update_ack_aggregation(const utcp::RateSample& rs, std::uint64_t now_us) {
    std::uint64_t expected = bw_ * (now_us - extra_acked_interval_start_us_) / 1'000'000;
    if (extra_acked_delivered_ <= expected) {
        extra_acked_delivered_ = 0;
        extra_acked_interval_start_us_ = now_us;
        expected = 0;
    }
    extra_acked_delivered_ += rs.newly_acked;
    const std::uint64_t extra = std::min<std::uint64_t>(extra_acked_delivered_ - expected, cwnd_);
    extra_acked_.update(extra, round_count_, full_bw_reached_ ? kExtraAckedFilterRounds : 1);
}

// Growth shows in any sample; a round without it counts only at the round's start.
void Bbr::check_full_bw_reached(const utcp::RateSample& rs) {
    if (full_bw_now_ || rs.app_limited) return;
    if (static_cast<double>(rs.delivery_rate) >= kFullBwGrowth * static_cast<double>(full_bw_)) {
        reset_full_bw();
        full_bw_ = rs.delivery_rate;
        return;
    }
    if (!round_start_) return;
    full_bw_now_ = ++full_bw_count_ >= kFullBwRounds;
    if (full_bw_now_) full_bw_reached_ = true;
}

// The draft gives this rule in prose: Startup ends when a round in recovery lost more than
// 2 % of what was in flight in at least six loss events. UTCP counts the events per loss
// round (each ACK that deemed something lost), as Linux's BBRv3 does.
void Bbr::check_startup_high_loss(const utcp::RateSample& rs) {
    if (phase_ != BbrPhase::startup || !loss_round_start_) return;
    const bool high = in_recovery_ && loss_events_in_round_ >= kStartupFullLossEvents &&
                      static_cast<double>(lost_in_round_) > kLossThresh * static_cast<double>(rs.tx_in_flight);
    lost_in_round_ = loss_events_in_round_ = 0;
    if (!high) return;
    full_bw_reached_ = full_bw_now_ = true;
    inflight_longterm_ = std::max(inflight(bw_, 1.0), inflight_latest_);
}

void Bbr::check_drain_done(const utcp::RateSample& rs, std::uint64_t now_us) {
    (void)rs;
    if (phase_ == BbrPhase::drain &&
        (in_flight_ <= inflight(bw_, 1.0) || round_count_ > drain_start_round_ + kDrainMaxRounds)) {
        enter_probe_bw(now_us);
    }
}

// --- ProbeBW -------------------------------------------------------------------------------

void Bbr::enter_probe_bw(std::uint64_t now_us) {
    cwnd_gain_ = kDefaultCwndGain;
    start_down(now_us);
}

void Bbr::start_down(std::uint64_t now_us) {
    loss_in_round_ = false;  // ResetCongestionSignals
    bw_latest_ = inflight_latest_ = 0;
    probe_up_acked_per_inc_ = kInfinite;
    rounds_since_probe_up_ = random_() % 2;  // PickProbeWait
    bw_probe_wait_us_ = 2'000'000 + random_() % 1'000'000;
    cycle_stamp_us_ = now_us;
    ack_phase_ = AckPhase::probe_stopping;
    start_round();
    phase_ = BbrPhase::probe_bw_down;
    pacing_gain_ = kDownPacingGain;
    cwnd_gain_ = kDefaultCwndGain;
}

void Bbr::start_cruise() {
    phase_ = BbrPhase::probe_bw_cruise;
    pacing_gain_ = 1.0;
    cwnd_gain_ = kDefaultCwndGain;
}

void Bbr::start_refill() {
    reset_short_term_model();
    bw_probe_up_rounds_ = 0;
    bw_probe_up_acked_ = 0;
    prev_probe_precautionary_ = false;
    ack_phase_ = AckPhase::refilling;
    start_round();
    phase_ = BbrPhase::probe_bw_refill;
    pacing_gain_ = 1.0;
    cwnd_gain_ = kDefaultCwndGain;
}

void Bbr::start_up(const utcp::RateSample& rs) {
    ack_phase_ = AckPhase::probe_starting;
    start_round();
    reset_full_bw();
    full_bw_ = rs.delivery_rate;
    phase_ = BbrPhase::probe_bw_up;
    pacing_gain_ = kUpPacingGain;
    cwnd_gain_ = kUpCwndGain;
    raise_inflight_longterm_slope();
}

void Bbr::update_probe_bw_cycle_phase(const utcp::RateSample& rs, std::uint64_t now_us) {
    if (!full_bw_reached_ || rs.newly_acked == 0) return;
    if (adapt_long_term_model(rs, now_us)) return;
    switch (phase_) {
        case BbrPhase::probe_bw_down:
            if (time_to_probe_bw(now_us)) return;
            if (time_to_cruise(rs)) start_cruise();
            return;
        case BbrPhase::probe_bw_cruise: (void)time_to_probe_bw(now_us); return;
        case BbrPhase::probe_bw_refill:
            if (round_start_) {  // one round of refilling
                bw_probe_sample_ = true;
                start_up(rs);
            }
            return;
        case BbrPhase::probe_bw_up:
            if (time_to_go_down(rs)) {
                prev_probe_too_high_ = false;
                start_down(now_us);
            }
            return;
        default: return;
    }
}

bool Bbr::adapt_long_term_model(const utcp::RateSample& rs, std::uint64_t now_us) {
    if (ack_phase_ == AckPhase::probe_starting && round_start_) ack_phase_ = AckPhase::probe_feedback;
    if (ack_phase_ == AckPhase::probe_stopping && round_start_) {
        bw_probe_sample_ = false;
        ack_phase_ = AckPhase::init;
        if (in_probe_bw() && !rs.app_limited) ++cycle_count_;  // AdvanceMaxBwFilter
        if (in_probe_bw() && prev_probe_precautionary_ && !prev_probe_too_high_) {
            start_refill();
            return true;
        }
    }
    (void)now_us;
    if (!inflight_too_high(rs)) {
        if (inflight_longterm_ == kInfinite) return false;
        inflight_longterm_ = std::max<std::uint64_t>(inflight_longterm_, rs.tx_in_flight);
        if (phase_ == BbrPhase::probe_bw_up) probe_inflight_longterm_upward(rs);
    }
    return false;
}

bool Bbr::time_to_probe_bw(std::uint64_t now_us) {
    // IsRenoCoexistenceProbeTime, in segments (the draft compares rounds with bytes).
    const std::uint64_t reno_rounds = std::min(target_inflight() / smss_, kRenoCoexistenceMaxRounds);
    if (now_us > cycle_stamp_us_ + bw_probe_wait_us_ || rounds_since_probe_up_ >= reno_rounds) {
        start_refill();
        return true;
    }
    return false;
}

bool Bbr::time_to_cruise(const utcp::RateSample& rs) const {
    (void)rs;
    if (in_flight_ > inflight_with_headroom()) return false;
    return in_flight_ <= inflight(max_bw_.get(), 1.0);
}

bool Bbr::time_to_go_down(const utcp::RateSample& rs) {
    if (prev_probe_too_high_ && in_flight_ >= inflight_longterm_) {  // precautionary deceleration
        prev_probe_precautionary_ = true;
        return true;
    }
    const bool cwnd_limited = rs.tx_in_flight + smss_ >= cwnd_;
    if (cwnd_limited && cwnd_ >= inflight_longterm_) {
        reset_full_bw();
        full_bw_ = rs.delivery_rate;
    } else if (full_bw_now_) {
        return true;
    }
    return false;
}

void Bbr::raise_inflight_longterm_slope() {
    const std::uint64_t growth = std::uint64_t{1} << bw_probe_up_rounds_;
    bw_probe_up_rounds_ = std::min(bw_probe_up_rounds_ + 1, kMaxProbeUpRounds);
    probe_up_acked_per_inc_ = std::max<std::uint64_t>(cwnd_ / growth, smss_);
}

void Bbr::probe_inflight_longterm_upward(const utcp::RateSample& rs) {
    const bool cwnd_limited = rs.tx_in_flight + smss_ >= cwnd_;
    if (!cwnd_limited || cwnd_ < inflight_longterm_) return;
    bw_probe_up_acked_ += rs.newly_acked;
    if (bw_probe_up_acked_ >= probe_up_acked_per_inc_) {
        const std::uint64_t steps = bw_probe_up_acked_ / probe_up_acked_per_inc_;
        bw_probe_up_acked_ -= steps * probe_up_acked_per_inc_;
        inflight_longterm_ += steps * smss_;
    }
    if (round_start_) raise_inflight_longterm_slope();
}

bool Bbr::inflight_too_high(const utcp::RateSample& rs) {
    return static_cast<double>(rs.tx_lost) > kLossThresh * static_cast<double>(rs.tx_in_flight);
}

void Bbr::handle_inflight_too_high(const utcp::RateSample& rs, std::uint64_t now_us) {
    prev_probe_too_high_ = true;
    bw_probe_sample_ = false;  // react once per probe
    if (!rs.app_limited) {
        inflight_longterm_ = std::max<std::uint64_t>(rs.tx_in_flight, scaled(target_inflight(), kBeta));
    }
    if (phase_ == BbrPhase::probe_bw_up) start_down(now_us);
}

// --- min RTT and ProbeRTT ------------------------------------------------------------------

void Bbr::update_min_rtt(const utcp::RateSample& rs, std::uint64_t now_us) {
    probe_rtt_expired_ = now_us > probe_rtt_min_stamp_us_ + kProbeRttIntervalUs;
    if (rs.rtt_us > 0 && (rs.rtt_us < probe_rtt_min_delay_us_ || probe_rtt_expired_)) {
        probe_rtt_min_delay_us_ = rs.rtt_us;
        probe_rtt_min_stamp_us_ = now_us;
    }
    if (probe_rtt_min_delay_us_ < min_rtt_us_ || now_us > min_rtt_stamp_us_ + kMinRttFilterUs) {
        min_rtt_us_ = probe_rtt_min_delay_us_;
        min_rtt_stamp_us_ = probe_rtt_min_stamp_us_;
    }
}

void Bbr::check_probe_rtt(const utcp::RateSample& rs, std::uint64_t now_us) {
    if (phase_ != BbrPhase::probe_rtt && probe_rtt_expired_ && !idle_restart_) {
        phase_ = BbrPhase::probe_rtt;
        pacing_gain_ = 1.0;
        cwnd_gain_ = kProbeRttCwndGain;
        save_cwnd();
        probe_rtt_done_stamp_us_ = 0;
        ack_phase_ = AckPhase::probe_stopping;
        start_round();
    }
    if (phase_ == BbrPhase::probe_rtt) {
        if (probe_rtt_done_stamp_us_ == 0 && in_flight_ <= probe_rtt_cwnd()) {
            probe_rtt_done_stamp_us_ = now_us + kProbeRttDurationUs;
            probe_rtt_round_done_ = false;
            start_round();
        } else if (probe_rtt_done_stamp_us_ != 0) {
            if (round_start_) probe_rtt_round_done_ = true;
            if (probe_rtt_round_done_ && now_us > probe_rtt_done_stamp_us_) {
                probe_rtt_min_stamp_us_ = now_us;
                cwnd_ = std::max(cwnd_, prior_cwnd_);  // RestoreCwnd
                exit_probe_rtt(now_us);
            }
        }
    }
    if (rs.delivered > 0) idle_restart_ = false;
}

void Bbr::exit_probe_rtt(std::uint64_t now_us) {
    reset_short_term_model();
    if (full_bw_reached_) {
        start_down(now_us);
        start_cruise();
    } else {
        phase_ = BbrPhase::startup;
        pacing_gain_ = kStartupPacingGain;
        cwnd_gain_ = kDefaultCwndGain;
    }
}

// --- control parameters --------------------------------------------------------------------

void Bbr::set_pacing_rate(double gain) {
    if (bw_ == 0) return;  // no bandwidth sample yet: the initial rate stands
    const auto rate = static_cast<std::uint64_t>(gain * static_cast<double>(bw_) * kPacingMargin);
    if (full_bw_reached_ || rate > pacing_rate_) pacing_rate_ = rate;
}

void Bbr::set_cwnd(const utcp::RateSample& rs) {
    const std::uint64_t max_inflight = quantization_budget(bdp_multiple(bw_, cwnd_gain_) +
                                                           extra_acked_.get());  // UpdateMaxInflight
    std::uint64_t cwnd = cwnd_;
    if (full_bw_reached_) {
        cwnd = std::min<std::uint64_t>(cwnd + rs.newly_acked, max_inflight);
    } else if (cwnd < max_inflight || delivered_ < initial_cwnd_) {
        cwnd += rs.newly_acked;
    }
    cwnd = std::max<std::uint64_t>(cwnd, 4 * smss_);  // MinPipeCwnd
    if (phase_ == BbrPhase::probe_rtt) cwnd = std::min(cwnd, probe_rtt_cwnd());  // BoundCwndForProbeRTT
    // BoundCwndForModel.
    std::uint64_t cap = kInfinite;
    if (phase_ == BbrPhase::probe_bw_down || phase_ == BbrPhase::probe_bw_refill || phase_ == BbrPhase::probe_bw_up) {
        cap = inflight_longterm_;
    } else if (phase_ == BbrPhase::probe_bw_cruise || phase_ == BbrPhase::probe_rtt) {
        cap = inflight_with_headroom();
    }
    cap = std::max<std::uint64_t>(std::min(cap, inflight_shortterm_), 4 * smss_);
    cwnd_ = static_cast<std::uint32_t>(std::min<std::uint64_t>({cwnd, cap, UINT32_MAX / 2}));
}

std::uint64_t Bbr::bdp_multiple(std::uint64_t bw, double gain) const {
    if (min_rtt_us_ == UINT32_MAX || bw == 0) return initial_cwnd_;
    return scaled(bw * min_rtt_us_ / 1'000'000, gain);
}

std::uint64_t Bbr::quantization_budget(std::uint64_t inflight) const {
    inflight = std::max<std::uint64_t>({inflight, 3 * send_quantum_, 4 * smss_});
    if (phase_ == BbrPhase::probe_bw_up) inflight += 2 * smss_;
    return inflight;
}

std::uint64_t Bbr::inflight(std::uint64_t bw, double gain) const { return quantization_budget(bdp_multiple(bw, gain)); }

std::uint64_t Bbr::inflight_with_headroom() const {
    if (inflight_longterm_ == kInfinite) return kInfinite;
    const std::uint64_t headroom = std::max<std::uint64_t>(smss_, scaled(inflight_longterm_, kHeadroom));
    return std::max<std::uint64_t>(inflight_longterm_ > headroom ? inflight_longterm_ - headroom : 0, 4 * smss_);
}

// Computed afresh, as Linux does: the draft's BBR.bdp may be stale here.
std::uint64_t Bbr::target_inflight() const { return std::min<std::uint64_t>(inflight(bw_, 1.0), cwnd_); }

std::uint64_t Bbr::probe_rtt_cwnd() const { return std::max<std::uint64_t>(bdp_multiple(bw_, kProbeRttCwndGain), 4 * smss_); }

bool Bbr::probing_bw() const {
    return phase_ == BbrPhase::startup || phase_ == BbrPhase::probe_bw_refill || phase_ == BbrPhase::probe_bw_up;
}

bool Bbr::in_probe_bw() const {
    return phase_ == BbrPhase::probe_bw_down || phase_ == BbrPhase::probe_bw_cruise || phase_ == BbrPhase::probe_bw_refill ||
           phase_ == BbrPhase::probe_bw_up;
}

void Bbr::reset_full_bw() {
    full_bw_ = 0;
    full_bw_count_ = 0;
    full_bw_now_ = false;
}

void Bbr::reset_short_term_model() { bw_shortterm_ = inflight_shortterm_ = kInfinite; }

void Bbr::save_cwnd() { prior_cwnd_ = !in_recovery_ && phase_ != BbrPhase::probe_rtt ? cwnd_ : std::max(prior_cwnd_, cwnd_); }

void Bbr::note_loss() {
    if (!loss_in_round_) loss_round_delivered_ = delivered_;
    loss_in_round_ = true;
}

// --- the connection's other signals ----------------------------------------------------------

// Without rate samples (no SACK) the model cannot run: the window stays as it is, and a
// loss takes it down by beta, as the draft's fallback for a sender without SACK suggests.
void Bbr::on_ack(const utcp::CcSample& s) {
    if (!has_rate_samples_ && cwnd_ < initial_cwnd_) cwnd_ += s.acked;
}

// A recovery the reorder timer starts comes without a rate sample: only a connection that
// never had one (no SACK) backs off here.
void Bbr::on_enter_recovery(const utcp::CcSample&) {
    save_cwnd();
    in_recovery_ = true;
    if (!has_rate_samples_) cwnd_ = static_cast<std::uint32_t>(std::max<std::uint64_t>(scaled(cwnd_, kBeta), 4 * smss_));
}

void Bbr::on_exit_recovery(const utcp::CcSample&) {
    in_recovery_ = false;
    cwnd_ = std::max(cwnd_, prior_cwnd_);  // RestoreCwnd
}

// The draft's "inflight + 1" in bytes: after an RTO everything not SACKed is deemed lost,
// so nothing is in flight and one segment goes. UTCP's recovery after an RTO ends without
// a call (slow start resends), so this is not counted as being in recovery.
void Bbr::on_rto(const utcp::CcSample& s) {
    save_cwnd();
    cwnd_ = s.smss;
    reset_full_bw();
}

// The draft asks that CE marks count as congestion and says no more: here a CE echo is
// a loss event of the round (it bounds the short-term model at the next round start).
void Bbr::on_ecn(const utcp::CcSample&) { note_loss(); }

void Bbr::on_idle_restart(const utcp::CcSample& s) {
    idle_restart_ = true;
    extra_acked_interval_start_us_ = s.now_us;
    if (in_probe_bw()) set_pacing_rate(1.0);
}

std::pair<std::string, utcp::CongestionRegistry::Factory> algorithm() {
    return {"bbr", [](std::uint32_t smss) { return std::make_unique<Bbr>(smss); }};
}

}  // namespace ms::bbr
