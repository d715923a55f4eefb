#include "utcp/recovery.hpp"

#include <algorithm>
#include <utility>

namespace ms::utcp {
namespace {

// RFC 5681 §3.2 / RFC 6675 §2: three duplicate ACKs (or SACKed segments) mean loss.
constexpr std::uint32_t kDupThresh = 3;
// RFC 8985 §7.2: the worst-case delayed-ACK time added to a lone segment's PTO.
constexpr std::uint64_t kWorstCaseDelayedAckUs = 200'000;
// RFC 8985 §7.2: the PTO before the first RTT sample.
constexpr std::uint64_t kInitialProbeUs = 1'000'000;
// Added to 2 SRTT, as Linux adds TCP_TIMEOUT_MIN_US: the peer's ACK may wait for its
// own loop (a busy receiver, a thousand connections in one turn) beyond what the SRTT
// says, and a probe then repairs nothing. Microsecond SRTTs keep the rest exact.
constexpr std::uint64_t kProbeSlackUs = 2'000;

}  // namespace

std::unique_ptr<LossRecovery> make_loss_recovery(bool sack) {
    if (sack) return std::make_unique<RackRecovery>();
    return std::make_unique<NewRenoRecovery>();
}

// ---------------------------------------------------------------------------------------
// NewReno

AckVerdict NewRenoRecovery::on_ack(const AckInput& ack, CongestionControl& cc) {
    if (ack.acked > 0) {
        on_new_ack(ack.ctx, ack.acked, cc);
        return {};
    }
    if (ack.duplicate) return on_duplicate_ack(ack.ctx, cc);
    return {};
}

void NewRenoRecovery::on_new_ack(const AckContext& ctx, std::uint32_t acked, CongestionControl& cc) {
    dup_acks_ = 0;
    if (in_recovery_ && ctx.una >= recover_) {
        in_recovery_ = false;  // RFC 6582 §3.2 step 6: a full acknowledgment
        cc.on_exit_recovery(ctx.sample(acked));
    } else if (in_recovery_) {
        cc.on_partial_ack(ctx.sample(acked));  // step 5: resend the next hole at once
        retransmit_una_ = true;
    } else {
        cc.on_ack(ctx.sample(acked));
    }
}

// RFC 5681 §3.2, with RFC 6582 §3.2 step 1: no new recovery for losses from before the
// last recovery point.
AckVerdict NewRenoRecovery::on_duplicate_ack(const AckContext& ctx, CongestionControl& cc) {
    if (in_recovery_) {
        cc.on_dup_ack_in_recovery(ctx.sample(0));
        return {.wake = true};
    }
    if (++dup_acks_ != kDupThresh || ctx.una <= recover_) return {.wake = dup_acks_ < kDupThresh};  // RFC 3042
    in_recovery_ = true;
    recover_ = ctx.max;
    cc.on_enter_recovery(ctx.sample(0));
    retransmit_una_ = true;
    ++stats_.lost_segments;
    return {.recovery_started = true, .wake = true};
}

void NewRenoRecovery::on_rto(const AckContext& ctx, CongestionControl& cc) {
    cc.on_rto(ctx.sample(0));
    in_recovery_ = false;
    retransmit_una_ = false;
    recover_ = ctx.max;
    dup_acks_ = 0;
}

std::optional<Resend> NewRenoRecovery::next_resend(const AckContext& ctx, std::uint32_t) {
    if (!std::exchange(retransmit_una_, false)) return std::nullopt;
    return Resend{ctx.una, UINT32_MAX};
}

// RFC 3042 limited transmit: the first two duplicate ACKs each let one new segment go
// beyond cwnd, so that a small window still draws the third duplicate ACK.
std::uint32_t NewRenoRecovery::send_room(const AckContext& ctx, std::uint32_t cwnd) const {
    const std::uint32_t limit = cwnd + (in_recovery_ ? 0 : std::min(dup_acks_, 2u) * ctx.smss);
    return limit > ctx.flight ? limit - ctx.flight : 0;
}

// ---------------------------------------------------------------------------------------
// RACK-TLP with SACK-based recovery and PRR

void RackRecovery::on_sent(Seq32 seq, std::uint32_t len, std::uint64_t now_us) {
    board_.on_send(seq, len, now_us, rate_.on_send(len, board_.in_flight(), now_us));
    if (fast_recovery_) {
        prr_out_ += len;
        send_quota_ -= std::min(send_quota_, len);
    }
}

// RFC 8985 §6.2 step 2, with step 3's reordering detection.
std::uint32_t RackRecovery::on_delivered(const SentSegment& s, std::uint64_t now_us) {
    const auto rtt = static_cast<std::uint32_t>(now_us - s.sent_us);
    // A retransmitted segment acknowledged sooner than the minimum RTT was acknowledged
    // for its first transmission: no information on when the resend arrived.
    if (s.ever_resent && rtt < min_rtt_us_ && min_rtt_us_ != UINT32_MAX) return 0;
    if (!s.ever_resent) min_rtt_us_ = std::min(min_rtt_us_, rtt);
    if (s.sent_order > rack_order_) {
        rack_sent_us_ = s.sent_us;
        rack_order_ = s.sent_order;
        rack_rtt_us_ = rtt;
    }
    if (!s.ever_resent && s.end() < highest_delivered_) {
        reordering_seen_ = true;
        ++stats_.reordering;
    }
    highest_delivered_ = Seq32::max(highest_delivered_, s.end());
    return rtt;
}

// §6.2 step 4.
std::uint32_t RackRecovery::reorder_window(std::uint32_t srtt_us) const {
    if (!reordering_seen_ && (in_recovery() || board_.sacked_segments() >= kDupThresh)) return 0;
    const std::uint32_t min_rtt = min_rtt_us_ == UINT32_MAX ? 0 : min_rtt_us_;
    return std::min(min_rtt / 4, srtt_us ? srtt_us : min_rtt);
}

void RackRecovery::detect_losses(std::uint64_t now_us, std::uint32_t srtt_us) {
    reorder_deadline_.reset();
    if (rack_order_ == 0) return;
    const std::uint32_t reo_wnd = reorder_window(srtt_us);
    std::uint64_t latest = 0;
    for (SentSegment& s : board_.segments()) {
        if (s.sacked || (s.lost && !s.resent)) continue;
        if (s.sent_order >= rack_order_) continue;  // sent after the latest delivered one
        const std::uint64_t due = s.sent_us + rack_rtt_us_ + reo_wnd;
        if (due <= now_us) {
            if (board_.mark_lost(s)) {
                ++stats_.lost_segments;
                rate_.on_lost(s.len);
            }
        } else {
            latest = std::max(latest, due);
        }
    }
    if (latest) reorder_deadline_ = latest;
}

AckVerdict RackRecovery::on_ack(const AckInput& ack, CongestionControl& cc) {
    AckContext ctx = ack.ctx;
    last_srtt_us_ = ack.srtt_us;
    if (ack.acked > 0) probe_outstanding_ = false;  // the probe (or data after it) arrived
    const auto note = [&](const SentSegment& s) {
        if (const std::uint32_t rtt = on_delivered(s, ctx.now_us)) ctx.rtt_us = rtt;  // an RTT sample each ACK
        rate_.on_delivered(s.len, s.sent_us, s.stamp, ctx.now_us, s.ever_resent);
    };
    // RFC 6937 §3: DeliveredData = the change in SND.UNA plus the change in SACKed bytes
    // (data SACKed before and acknowledged now is not delivered twice).
    const std::uint32_t sacked_before = board_.sacked_bytes();
    board_.on_cumulative_ack(ctx.una, note);
    board_.on_sack(ack.sacks, ctx.una, ctx.max, note);
    const std::uint32_t delivered = ack.acked + board_.sacked_bytes() - sacked_before;
    detect_losses(ctx.now_us, ack.srtt_us);
    const RateSample rate = rate_.take(board_.in_flight(), min_rtt_us_);
    ctx.rate = &rate;
    if (delivered > 0 || rate.newly_lost > 0) cc.on_every_ack(ctx.sample(delivered));
    if (cc.holds_sender_back()) rate_.on_app_limited(board_.in_flight());

    if ((fast_recovery_ || loss_recovery_) && ctx.una >= recover_) {  // RFC 6675 §5: recovery ends
        if (fast_recovery_) cc.on_exit_recovery(ctx.sample(delivered));
        fast_recovery_ = loss_recovery_ = false;
    }
    if (loss_recovery_ || (!fast_recovery_ && board_.lost_bytes() == 0)) {
        if (delivered > 0) cc.on_ack(ctx.sample(delivered));  // slow start after an RTO, or plain growth
        return {.wake = delivered > 0};
    }
    return react_to_losses(ctx, cc, delivered);
}

AckVerdict RackRecovery::react_to_losses(const AckContext& ctx, CongestionControl& cc, std::uint32_t delivered) {
    AckVerdict v{.wake = true};
    if (!fast_recovery_) {
        if (board_.lost_bytes() == 0) return {};
        fast_recovery_ = true;
        recover_ = ctx.max;
        cc.on_enter_recovery(ctx.sample(delivered));
        recover_fs_ = std::max(ctx.flight, ctx.smss);
        prr_delivered_ = prr_out_ = 0;
        v.recovery_started = true;
    }
    reduce(ctx, delivered, cc.ssthresh());
    return v;
}

// RFC 6937 §3.1 with PRR-SSRB: how much may go on this ACK.
void RackRecovery::reduce(const AckContext& ctx, std::uint32_t delivered, std::uint32_t ssthresh) {
    prr_delivered_ += delivered;
    const std::uint32_t pipe = board_.pipe(ctx.flight);
    std::int64_t sndcnt;
    if (pipe > ssthresh) {
        const std::uint64_t allowed = (prr_delivered_ * ssthresh + recover_fs_ - 1) / recover_fs_;
        sndcnt = static_cast<std::int64_t>(allowed) - static_cast<std::int64_t>(prr_out_);
    } else {
        const std::int64_t unsent = static_cast<std::int64_t>(prr_delivered_) - static_cast<std::int64_t>(prr_out_);
        const std::int64_t limit = std::max<std::int64_t>(unsent, delivered) + ctx.smss;
        sndcnt = std::min<std::int64_t>(static_cast<std::int64_t>(ssthresh) - pipe, limit);
    }
    // The first retransmission of a recovery always goes (Linux does the same).
    if (prr_out_ == 0) sndcnt = std::max<std::int64_t>(sndcnt, ctx.smss);
    send_quota_ = static_cast<std::uint32_t>(std::max<std::int64_t>(sndcnt, 0));
}

AckVerdict RackRecovery::on_reorder_timeout(const AckContext& ctx, CongestionControl& cc) {
    detect_losses(ctx.now_us, last_srtt_us_);
    if (loss_recovery_) return {.wake = true};
    return react_to_losses(ctx, cc, 0);
}

// RFC 6675 §5.1 and RFC 8985 §6.3: every segment not SACKed is lost; slow start resends
// them, SACKed ones never.
void RackRecovery::on_rto(const AckContext& ctx, CongestionControl& cc) {
    cc.on_rto(ctx.sample(0));
    const std::uint32_t before = board_.lost_bytes();
    board_.mark_all_lost();
    if (board_.lost_bytes() > before) {
        ++stats_.lost_segments;
        rate_.on_lost(board_.lost_bytes() - before);
    }
    fast_recovery_ = false;
    loss_recovery_ = true;
    recover_ = ctx.max;
    reorder_deadline_.reset();
    probe_outstanding_ = false;
}

void RackRecovery::on_mss_lowered(std::uint32_t max_len) { stats_.lost_segments += board_.split_larger_than(max_len); }

std::optional<Resend> RackRecovery::next_resend(const AckContext& ctx, std::uint32_t cwnd) {
    SentSegment* s = board_.next_to_resend();
    if (!s) return std::nullopt;
    if (fast_recovery_ ? send_quota_ == 0 : board_.pipe(ctx.flight) >= cwnd) return std::nullopt;
    return Resend{s->start, s->len};
}

std::uint32_t RackRecovery::send_room(const AckContext& ctx, std::uint32_t cwnd) const {
    if (fast_recovery_) return send_quota_;
    const std::uint32_t pipe = board_.pipe(ctx.flight);
    return cwnd > pipe ? cwnd - pipe : 0;
}

// RFC 8985 §7.2: PTO = 2 SRTT (1 s before any sample), plus the worst-case delayed ACK
// when one segment is outstanding, never beyond the RTO; none after an RTO or while a
// probe is unanswered. Unlike §7.2 (and Linux), a probe may go in fast recovery too: a
// retransmission lost at the tail of a recovery has no later send whose delivery could
// reveal it (§6.2), and would cost an RTO (at least 200 ms) where the probe, which
// resends the first segment not delivered (probe_segment), costs 2 SRTT.
std::optional<std::uint64_t> RackRecovery::probe_timeout(const AckContext& ctx, std::optional<std::uint32_t> srtt_us,
                                                         std::uint64_t rto_us) const {
    if (loss_recovery_ || probe_outstanding_ || ctx.flight == 0) return std::nullopt;
    const std::uint64_t pto = srtt_us ? 2 * std::uint64_t{*srtt_us} : kInitialProbeUs;
    return std::min(pto + (ctx.flight <= ctx.smss ? kWorstCaseDelayedAckUs : kProbeSlackUs), rto_us);
}

void RackRecovery::on_probe_sent() {
    probe_outstanding_ = true;
    ++stats_.loss_probes;
}

std::optional<Resend> RackRecovery::probe_segment() const {
    const auto& segs = board_.segments();
    if (fast_recovery_) {
        for (const SentSegment& s : segs) {
            if (!s.sacked) return Resend{s.start, s.len};
        }
    }
    if (segs.empty()) return std::nullopt;
    return Resend{segs.back().start, segs.back().len};
}

}  // namespace ms::utcp
