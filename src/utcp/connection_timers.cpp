// Connection, the timers' part: the retransmission timer with its other modes (persist,
// RACK's reorder timer, the tail loss probe), the delayed ACK, keepalive and the
// FIN_WAIT_2 timeout, and arming them after each output (RFC 6298, RFC 8985 §8,
// RFC 9293 §3.8.6.1, RFC 1122 §4.2.3.6).
#include <algorithm>

#include "utcp/connection.hpp"

namespace ms::utcp {

using namespace wire::tcpflag;

// Timers

void Connection::on_timer(TimerKind kind, std::uint64_t now_ms) {
    now_ms_ = now_ms;
    switch (kind) {
        case TimerKind::retransmit:
            switch (rtx_mode_) {
                case RtxMode::persist: return on_persist_timeout(now_ms);
                case RtxMode::reorder: return on_reorder_timeout(now_ms);
                case RtxMode::loss_probe:
                    loss_probe_due_ = true;
                    return wake();
                case RtxMode::retransmit: return on_retransmit_timeout(now_ms);
            }
            return;
        case TimerKind::delayed_ack:
            return owe_ack();
        case TimerKind::idle:
            return on_idle_timeout(now_ms);
    }
}

// RFC 6298 §5.4 to §5.7 and RFC 5681 §3.1: back off, shrink to one segment, and resend
// from SND.UNA.
void Connection::on_retransmit_timeout(std::uint64_t now_ms) {
    const bool handshake = state_ == State::syn_sent || (state_ == State::syn_received && snd().una == snd().iss);
    const std::uint32_t limit = handshake ? options_.max_syn_retransmits : options_.max_retransmits;
    if (++retransmits_in_row_ > limit) return time_out();
    ++stats_.timeouts;
    rtt_.back_off();
    rtt_sampler_.forget();  // Karn's rule
    if (!handshake) recovery_->on_rto(ack_context(now_ms), *cc_);
    if (handshake || recovery_->rewinds_on_rto()) sender_.rewind();
    if (mss_search_.probing()) return settle_mss_probe(true);  // the probe, not the path, was lost
    // Black-hole detection: only when what goes again is larger than the lower MSS.
    const auto mss = handshake ? std::nullopt : mss_after_timeouts(retransmits_in_row_, tuple().local.family, smss_);
    if (mss && flight() > *mss) {
        ++stats_.mss_lowered_by_timeouts;
        if (sack_ok_) mss_search_.start(*mss, static_cast<std::uint16_t>(smss_ - 1));  // RACK tells a lost probe
        lower_mss(*mss);
    }
    wake();
}

// RACK's reorder timer (RFC 8985 §6.2 step 5): segments it waited for are now lost.
void Connection::on_reorder_timeout(std::uint64_t now_ms) {
    rtx_mode_ = RtxMode::retransmit;
    note_verdict(recovery_->on_reorder_timeout(ack_context(now_ms), *cc_));
    wake();
}

// RFC 9293 §3.8.6.1: probe a zero window, backing off like the RTO, for as long as
// the peer keeps answering. A window that is open but too small for silly-window
// avoidance gets the override of RFC 1122 §4.2.3.4 instead: send what fits.
void Connection::on_persist_timeout(std::uint64_t now_ms) {
    if (snd().wnd > 0) {
        rtx_mode_ = RtxMode::retransmit;
        force_send_ = true;
        return wake();
    }
    probe_due_ = true;
    ++stats_.window_probes;
    rtt_.back_off();
    arm(rtx_timer_, now_ms + rtt_.rto());
    wake();
}

// Keepalive (RFC 1122 §4.2.3.6) while synchronised; the FIN_WAIT_2 timeout otherwise.
void Connection::on_idle_timeout(std::uint64_t now_ms) {
    if (state_ == State::fin_wait_2) return finish();
    if (!options_.keepalive || (state_ != State::established && state_ != State::close_wait)) return;
    if (now_ms - last_recv_ms_ < options_.keepalive_idle_ms && keepalive_sent_ == 0) {
        return arm(idle_timer_, last_recv_ms_ + options_.keepalive_idle_ms);
    }
    if (keepalive_sent_ >= options_.keepalive_probes) return time_out();
    ++keepalive_sent_;
    ++stats_.keepalive_probes;
    keepalive_due_ = true;
    arm(idle_timer_, now_ms + options_.keepalive_interval_ms);
    wake();
}

// The retransmission timer runs while data is in flight (RFC 6298 §5.1), as RACK's
// reorder timer or the tail loss probe when recovery wants one (RFC 8985 §8); with nothing
// in flight and data held back (a zero window, or one too small to use), the same timer
// persists (§3.8.6.1, RFC 1122 §4.2.3.4).
void Connection::arm_timers(std::uint64_t now_ms) {
    if (rtx_mode_ == RtxMode::persist) {
        if (!rtx_timer_.pending()) arm(rtx_timer_, now_ms + rtt_.rto());
        return;
    }
    if (flight() > 0) {
        RtxMode mode = RtxMode::retransmit;
        std::uint64_t at = now_ms + rtt_.rto();
        const AckContext ctx = ack_context(now_ms);
        if (const auto reorder = recovery_->reorder_deadline()) {
            mode = RtxMode::reorder;
            at = *reorder;
        } else if (const auto pto = recovery_->probe_timeout(
                       ctx, rtt_.has_sample() ? std::optional(rtt_.srtt()) : std::nullopt, rtt_.rto())) {
            mode = RtxMode::loss_probe;
            at = now_ms + *pto;
        }
        const bool moved = mode == RtxMode::reorder && at != rtx_deadline_ms_;
        if (!rtx_timer_.pending() || mode != rtx_mode_ || moved) {
            rtx_mode_ = mode;
            rtx_deadline_ms_ = at;
            arm(rtx_timer_, at);
        }
    } else if (sender_.unsent() && synchronized()) {
        rtx_mode_ = RtxMode::persist;
        arm(rtx_timer_, now_ms + rtt_.rto());
    } else {
        rtx_mode_ = RtxMode::retransmit;
        disarm(rtx_timer_);
    }
}

}  // namespace ms::utcp
