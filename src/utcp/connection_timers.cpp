// Connection, the timers' part: the retransmission timer with its other modes (persist,
// RACK's reorder timer, the tail loss probe), the delayed ACK, keepalive and the
// FIN_WAIT_2 timeout, and arming them after each output (RFC 6298, RFC 8985 §8,
// RFC 9293 §3.8.6.1, RFC 1122 §4.2.3.6).
#include <algorithm>

#include "utcp/connection.hpp"

namespace ms::utcp {

using namespace wire::tcpflag;

// Timers

void Connection::on_timer(TimerKind kind, std::uint64_t now_us) {
    now_us_ = now_us;
    switch (kind) {
        case TimerKind::retransmit:
            switch (timing_.rtx_mode) {
                case RtxMode::persist: return on_persist_timeout(now_us);
                case RtxMode::reorder: return on_reorder_timeout(now_us);
                case RtxMode::loss_probe: due_.loss_probe = true; return wake();
                case RtxMode::retransmit: return on_retransmit_timeout(now_us);
            }
            return;
        case TimerKind::delayed_ack: return owe_ack();
        case TimerKind::idle: return on_idle_timeout(now_us);
        case TimerKind::pace: return wake();  // the next departure is due
    }
}

// RFC 6298 §5.4 to §5.7 and RFC 5681 §3.1: back off, shrink to one segment, and resend
// from SND.UNA.
void Connection::on_retransmit_timeout(std::uint64_t now_us) {
    const bool handshake = state_ == State::syn_sent || (state_ == State::syn_received && snd().una == snd().iss);
    const std::uint32_t limit = handshake ? options_.max_syn_retransmits : options_.max_retransmits;
    if (++timing_.retransmits_in_row > limit) return time_out();
    ++stats_.timeouts;
    rtt_.back_off();
    rtt_sampler_.forget();  // Karn's rule
    if (!handshake) recovery_->on_rto(ack_context(now_us), *cc_);
    if (handshake || recovery_->rewinds_on_rto()) sender_.rewind();
    if (mss_.search.probing()) return settle_mss_probe(true);  // the probe, not the path, was lost
    // Black-hole detection: only when what goes again is larger than the lower MSS.
    const auto mss = handshake ? std::nullopt
                               : mss_after_timeouts(timing_.retransmits_in_row, tuple().local.family, mss_.smss);
    if (mss && flight() > *mss) {
        ++stats_.mss_lowered_by_timeouts;
        if (agreed_.sack) mss_.search.start(*mss, static_cast<std::uint16_t>(mss_.smss - 1));  // RACK tells a lost probe
        lower_mss(*mss);
    }
    wake();
}

// RACK's reorder timer (RFC 8985 §6.2 step 5): segments it waited for are now lost.
void Connection::on_reorder_timeout(std::uint64_t now_us) {
    timing_.rtx_mode = RtxMode::retransmit;
    note_verdict(recovery_->on_reorder_timeout(ack_context(now_us), *cc_));
    wake();
}

// RFC 9293 §3.8.6.1: probe a zero window, backing off like the RTO, for as long as
// the peer keeps answering. A window that is open but too small for silly-window
// avoidance gets the override of RFC 1122 §4.2.3.4 instead: send what fits.
void Connection::on_persist_timeout(std::uint64_t now_us) {
    if (snd().wnd > 0) {
        timing_.rtx_mode = RtxMode::retransmit;
        due_.force_send = true;
        return wake();
    }
    due_.probe = true;
    ++stats_.window_probes;
    rtt_.back_off();
    arm(timing_.rtx, now_us + rtt_.rto());
    wake();
}

// Keepalive (RFC 1122 §4.2.3.6) while synchronised; the FIN_WAIT_2 timeout otherwise.
void Connection::on_idle_timeout(std::uint64_t now_us) {
    if (state_ == State::fin_wait_2) return finish();
    if (!options_.keepalive || (state_ != State::established && state_ != State::close_wait)) return;
    const std::uint64_t idle_limit = us_from_ms(options_.keepalive_idle_ms);
    if (now_us - timing_.last_recv_us < idle_limit && timing_.keepalive_sent == 0) {
        return arm(timing_.idle, timing_.last_recv_us + idle_limit);
    }
    if (timing_.keepalive_sent >= options_.keepalive_probes) return time_out();
    ++timing_.keepalive_sent;
    ++stats_.keepalive_probes;
    due_.keepalive = true;
    arm(timing_.idle, now_us + us_from_ms(options_.keepalive_interval_ms));
    wake();
}

// The retransmission timer runs while data is in flight (RFC 6298 §5.1), as RACK's
// reorder timer or the tail loss probe when recovery wants one (RFC 8985 §8); with nothing
// in flight and data held back (a zero window, or one too small to use), the same timer
// persists (§3.8.6.1, RFC 1122 §4.2.3.4).
void Connection::arm_timers(std::uint64_t now_us) {
    if (timing_.rtx_mode == RtxMode::persist) {
        if (!timing_.rtx.pending()) arm(timing_.rtx, now_us + rtt_.rto());
        return;
    }
    if (flight() > 0) {
        RtxMode mode = RtxMode::retransmit;
        std::uint64_t at = now_us + rtt_.rto();
        const AckContext ctx = ack_context(now_us);
        if (const auto reorder = recovery_->reorder_deadline()) {
            mode = RtxMode::reorder;
            at = *reorder;
        } else if (const auto pto = recovery_->probe_timeout(
                       ctx, rtt_.has_sample() ? std::optional(rtt_.srtt()) : std::nullopt, rtt_.rto())) {
            mode = RtxMode::loss_probe;
            at = now_us + *pto;
        }
        const bool moved = mode == RtxMode::reorder && at != timing_.rtx_deadline_us;
        if (!timing_.rtx.pending() || mode != timing_.rtx_mode || moved) {
            timing_.rtx_mode = mode;
            timing_.rtx_deadline_us = at;
            arm(timing_.rtx, at);
        }
    } else if (sender_.unsent() && synchronized()) {
        timing_.rtx_mode = RtxMode::persist;
        arm(timing_.rtx, now_us + rtt_.rto());
    } else {
        timing_.rtx_mode = RtxMode::retransmit;
        disarm(timing_.rtx);
    }
}

}  // namespace ms::utcp
