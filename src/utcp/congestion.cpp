#include "utcp/congestion.hpp"

#include <algorithm>
#include <cmath>

namespace ms::utcp {
namespace {

// RFC 6928: an initial window of min(10*MSS, max(2*MSS, 14600)).
std::uint32_t initial_window(std::uint32_t smss) { return std::min(10 * smss, std::max(2 * smss, 14600u)); }

// RFC 5681 §3.1 eqn. 4: ssthresh = max(FlightSize / 2, 2*SMSS).
std::uint32_t half_flight(std::uint32_t flight, std::uint32_t smss) { return std::max(flight / 2, 2 * smss); }

// RFC 5681 §3.1 congestion avoidance: about one SMSS per RTT, counted in bytes.
class NewReno final : public LossBasedControl {
public:
    explicit NewReno(std::uint32_t smss) : LossBasedControl(smss) {}
    [[nodiscard]] std::string_view name() const override { return "newreno"; }

private:
    std::uint32_t back_off(const CcSample& s) override {
        avoidance_bytes_ = 0;
        return half_flight(s.flight, s.smss);
    }
    void grow(const CcSample& s) override {
        avoidance_bytes_ += s.acked;
        if (avoidance_bytes_ >= cwnd_) {
            avoidance_bytes_ -= cwnd_;
            cwnd_ += s.smss;
        }
    }

    std::uint32_t avoidance_bytes_ = 0;
};

// HyStart++ (RFC 9406 §4.3): leaves slow start when the RTT of a round grows by more than
// an eighth (clamped to [4, 16] ms) over the last round's (RTTs in microseconds), through 5 rounds of
// conservative slow start at a quarter of the growth.
class HyStartPlusPlus {
public:
    static constexpr std::uint32_t kMinRttThreshUs = 4000, kMaxRttThreshUs = 16000, kMinRttDivisor = 8;
    static constexpr std::uint32_t kRttSamples = 8, kCssGrowthDivisor = 4, kCssRounds = 5;

    // The growth slow start may take for `s`; sets `leave` when slow start should end.
    std::uint32_t growth(const CcSample& s, bool& leave) {
        leave = false;
        if (s.una >= window_end_) start_round(s, leave);
        if (s.rtt_us > 0) {
            current_min_ = std::min(current_min_, s.rtt_us);
            ++samples_;
        }
        if (!in_css_ && samples_ >= kRttSamples && current_min_ != kNone && last_min_ != kNone) {
            const std::uint32_t thresh = std::clamp(last_min_ / kMinRttDivisor, kMinRttThreshUs, kMaxRttThreshUs);
            if (current_min_ >= last_min_ + thresh) {
                in_css_ = true;
                css_baseline_ = current_min_;
                css_rounds_ = 0;
            }
        } else if (in_css_ && current_min_ < css_baseline_) {
            in_css_ = false;  // the RTT went down again: the increase was spurious
        }
        return in_css_ ? s.acked / kCssGrowthDivisor : s.acked;
    }
    void reset() { *this = HyStartPlusPlus{}; }

private:
    static constexpr std::uint32_t kNone = UINT32_MAX;

    void start_round(const CcSample& s, bool& leave) {
        window_end_ = s.max;
        last_min_ = current_min_;
        current_min_ = kNone;
        samples_ = 0;
        if (in_css_ && ++css_rounds_ >= kCssRounds) leave = true;
    }

    Seq32 window_end_;
    std::uint32_t last_min_ = kNone, current_min_ = kNone, samples_ = 0;
    bool in_css_ = false;
    std::uint32_t css_baseline_ = kNone, css_rounds_ = 0;
};

// CUBIC (RFC 9438): after a loss, cwnd follows W(t) = C (t - K)^3 + W_max, so that it
// comes back to the window of the loss quickly and probes beyond it slowly, or the
// Reno-friendly estimate (§4.3) where that is larger.
class Cubic final : public LossBasedControl {
public:
    static constexpr double kC = 0.4;     // §5.1
    static constexpr double kBeta = 0.7;  // §4.6
    static constexpr double kAlphaReno = 3 * (1 - kBeta) / (1 + kBeta);  // §4.3

    explicit Cubic(std::uint32_t smss) : LossBasedControl(smss) {}
    [[nodiscard]] std::string_view name() const override { return "cubic"; }

private:
    std::uint32_t back_off(const CcSample& s) override {
        const double cwnd = static_cast<double>(cwnd_) / s.smss;
        // §4.7 fast convergence: give up more when the last loss came at a lower window.
        w_max_ = cwnd < w_max_ ? cwnd * (1 + kBeta) / 2 : cwnd;
        epoch_start_us_ = 0;
        hystart_.reset();
        return std::max(static_cast<std::uint32_t>(cwnd_ * kBeta), 2 * s.smss);
    }

    void slow_start(const CcSample& s) override {
        bool leave = false;
        cwnd_ = std::min(cwnd_ + hystart_.growth(s, leave), std::max(ssthresh_, cwnd_));
        if (leave) ssthresh_ = cwnd_;  // RFC 9406 §4.3: on into congestion avoidance
    }

    void grow(const CcSample& s) override {
        const double mss = s.smss;
        const double cwnd = cwnd_ / mss;
        if (epoch_start_us_ == 0) start_epoch(s, cwnd);
        const double t = static_cast<double>(s.now_us - epoch_start_us_ + s.rtt_us) / 1e6;  // seconds; §4.2: W(t + RTT)
        double target = origin_ + kC * std::pow(t - k_, 3);
        target = std::clamp(target, cwnd, 1.5 * cwnd);  // §4.4: at most 50 % per RTT
        // §4.3: the Reno-friendly window, growing by alpha per window delivered.
        w_est_ += (w_est_ < w_max_ ? kAlphaReno : 1.0) * (s.acked / mss) / cwnd;
        double next = cwnd + (target - cwnd) * (s.acked / mss) / cwnd;
        next = std::max(next, w_est_);
        cwnd_ = std::max(cwnd_, static_cast<std::uint32_t>(next * mss));
    }

    void start_epoch(const CcSample& s, double cwnd) {
        epoch_start_us_ = std::max<std::uint64_t>(s.now_us, 1);
        w_est_ = cwnd;
        if (cwnd < w_max_) {
            k_ = std::cbrt((w_max_ - cwnd) / kC);  // §4.2 eqn. 2
            origin_ = w_max_;
        } else {
            k_ = 0;
            origin_ = cwnd;
        }
    }

    double w_max_ = 0;  // in segments
    double w_est_ = 0;
    double k_ = 0;
    double origin_ = 0;
    std::uint64_t epoch_start_us_ = 0;  // 0: no epoch (none since the last loss)
    HyStartPlusPlus hystart_;
};

}  // namespace

LossBasedControl::LossBasedControl(std::uint32_t smss) : cwnd_(initial_window(smss)) {}

namespace {
// RFC 7661 §4 and RFC 9438 §5.8 (Linux's tcp_is_cwnd_limited): cwnd grows only while it
// limits the sender: in slow start while the flight before the ACK reached half of it,
// after that while it reached it (within a segment). A sender held back by the peer's
// window or by its application would otherwise build a window it never used, and burst
// it when the window opens.
bool cwnd_limited(const CcSample& s, std::uint32_t cwnd, bool in_slow_start) {
    const std::uint64_t before = std::uint64_t{s.flight} + s.acked;
    return in_slow_start ? 2 * before >= cwnd : before + s.smss >= cwnd;
}
}  // namespace

void LossBasedControl::on_ack(const CcSample& s) {
    const bool in_slow_start = cwnd_ < ssthresh_;
    if (!cwnd_limited(s, cwnd_, in_slow_start)) return;
    if (in_slow_start) {
        slow_start(s);
    } else {
        grow(s);
    }
}

// Batching receivers (ours, and Linux with GRO) send stretch ACKs, so the whole amount
// counts, as in Linux, rather than RFC 3465's L = 2 SMSS, which would slow slow start.
void LossBasedControl::slow_start(const CcSample& s) { cwnd_ = std::min(cwnd_ + s.acked, std::max(ssthresh_, cwnd_)); }

// RFC 6582 §3.2 step 2 (RFC 5681 §3.2 steps 2 and 3): back off, then inflate by the
// three segments that the duplicate ACKs say have left the network.
void LossBasedControl::on_enter_recovery(const CcSample& s) {
    ssthresh_ = back_off(s);
    cwnd_ = ssthresh_ + 3 * s.smss;
}

// RFC 6582 §3.2 step 5: deflate by the amount acknowledged, then add back one SMSS if
// that amount was at least one SMSS.
void LossBasedControl::on_partial_ack(const CcSample& s) {
    cwnd_ = cwnd_ > s.acked ? cwnd_ - s.acked : s.smss;
    if (s.acked >= s.smss) cwnd_ += s.smss;
    cwnd_ = std::max(cwnd_, s.smss);
}

// RFC 6582 §3.2 step 6, option 1: min(ssthresh, max(FlightSize, SMSS) + SMSS).
void LossBasedControl::on_exit_recovery(const CcSample& s) {
    cwnd_ = std::min(ssthresh_, std::max(s.flight, s.smss) + s.smss);
}

// RFC 5681 §3.1 eqns. 4 and 5: a loss window of one segment.
void LossBasedControl::on_rto(const CcSample& s) {
    ssthresh_ = back_off(s);
    cwnd_ = s.smss;
}

// RFC 3168 §6.1.2: cwnd and ssthresh as after a loss, but no fast-recovery inflation.
void LossBasedControl::on_ecn(const CcSample& s) {
    ssthresh_ = back_off(s);
    cwnd_ = std::max(ssthresh_, s.smss);
}

void LossBasedControl::on_idle_restart(const CcSample& s) { cwnd_ = std::min(cwnd_, initial_window(s.smss)); }

CongestionRegistry::CongestionRegistry() {
    add("newreno", [](std::uint32_t smss) { return std::make_unique<NewReno>(smss); });
    add("cubic", [](std::uint32_t smss) { return std::make_unique<Cubic>(smss); });
}

bool CongestionRegistry::add(std::string name, Factory make) {
    return factories_.try_emplace(std::move(name), std::move(make)).second;
}

std::unique_ptr<CongestionControl> CongestionRegistry::make(std::string_view name, std::uint32_t smss) const {
    const auto it = factories_.find(name);
    return it == factories_.end() ? nullptr : it->second(smss);
}

std::vector<std::string> CongestionRegistry::names() const {
    std::vector<std::string> out;
    for (const auto& [name, make] : factories_) out.push_back(name);
    return out;
}

}  // namespace ms::utcp
