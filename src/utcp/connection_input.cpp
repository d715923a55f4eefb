// Connection, the arrival part: what a segment does to a synchronised connection, in the
// order of RFC 9293 §3.10.7.4 (sequence check, PAWS, RST, ACK, ECN, text, FIN), and
// the ACK's effects on the send half, recovery, RTT and congestion control.
#include <algorithm>

#include "utcp/connection.hpp"

namespace ms::utcp {

using namespace wire::tcpflag;

// Segment arrival

void Connection::note_arrival(std::uint64_t now_us) {
    now_us_ = now_us;
    ++stats_.segments_in;
    timing_.last_recv_us = now_us;
    timing_.keepalive_sent = 0;
}

void Connection::on_segment(const Segment& in, std::uint64_t now_us) {
    note_arrival(now_us);
    if (state_ == State::syn_sent) return on_segment_syn_sent(in, now_us);
    if (state_ == State::closed || state_ == State::time_wait) return;

    Segment seg = in;
    // A retransmitted SYN (or the SYN,ACK of a simultaneous open) in SYN_RECEIVED: its
    // SYN is an old octet; answer with our SYN,ACK again and process the rest (§3.10.7.4).
    if (state_ == State::syn_received && seg.has(syn) && seg.seq == rcv().irs && !seg.has(rst)) {
        seg.flags &= static_cast<std::uint8_t>(~syn);
        seg.seq = seg.seq + 1;
        owe_ack();
    }
    // RFC 5961 §4.2: a SYN in a synchronised state draws a challenge ACK, whatever its
    // sequence number.
    if (seg.has(syn)) return send_challenge_ack(now_us);
    if (agreed_.ts.too_old(seg)) {  // RFC 7323 §5.3 R1: PAWS; acknowledged and dropped
        ++stats_.paws_rejected;
        return owe_ack();
    }
    if (!receiver_.acceptable(seg)) {
        // §3.10.7.4 first check: answer with an ACK unless it is a RST. A zero window
        // still takes valid ACKs (the "special allowance").
        if (seg.has(rst)) return;
        owe_ack();
        receiver_.note_duplicate(seg);
        const bool zero_window_ack = rcv().wnd() == 0 && seg.seq == rcv().nxt && seg.has(ack);
        if (zero_window_ack && check_ack(seg, now_us)) process_ack(seg, now_us);
        return;
    }
    agreed_.ts.note(seg, agreed_.last_ack_sent);  // RFC 7323 §5.3 R3
    if (seg.has(rst)) return on_rst(seg, now_us);
    if (!seg.has(ack)) return;  // §3.10.7.4 fifth check: drop a segment without ACK
    if (!check_ack(seg, now_us)) return;
    process_ack(seg, now_us);
    if (state_ == State::closed || state_ == State::time_wait) return;
    process_ecn(seg, now_us);
    process_text(seg);
    if (seg.has(fin) && receiver_.note_fin(seg)) wake();
    if (receiver_.fin_due()) process_fin(now_us);
}

bool Connection::on_train_segment(const Segment& seg, std::uint64_t now_us) {
    if (state_ != State::established || seg.seq != rcv().nxt || !receiver_.acceptable(seg)) return false;
    note_arrival(now_us);
    update_send_window(seg);  // the same window: only SND.WL1 moves, as in full processing
    take_text(seg);
    // It may fill the last hole before a FIN that came out of order (on_segment's tail).
    if (receiver_.fin_due()) process_fin(now_us);
    return true;
}

// RFC 5961 §3.2: only a RST at exactly RCV.NXT resets; one elsewhere in the window
// draws a challenge ACK, which a genuine peer answers with an exact RST.
void Connection::on_rst(const Segment& seg, std::uint64_t now_us) {
    if (seg.seq != rcv().nxt) return send_challenge_ack(now_us);
    switch (state_) {
        case State::syn_received:  // §3.10.7.4: a passive open just goes away
        case State::closing:
        case State::last_ack: finish(); break;
        default: fail(ConnError::reset);
    }
}

// RFC 3168 §6.1.2 and §6.1.3.
void Connection::process_ecn(const Segment& seg, std::uint64_t now_us) {
    if (!ecn_.on) return;
    if (seg.has(cwr)) ecn_.ece_due = false;  // the peer has backed off
    if (seg.ce) {
        ++stats_.ce_received;
        ecn_.ece_due = true;
        owe_ack();  // tell the sender at once
    }
    // Back off once per window of data, and not on top of a loss recovery.
    if (seg.has(ece) && snd().una > ecn_.recover && !recovery_->in_recovery()) {
        cc_->on_ecn(ack_context(now_us).sample(0));
        ecn_.recover = snd().max;
        ecn_.cwr_due = true;
        ++stats_.ecn_reductions;
    }
}

void Connection::send_challenge_ack(std::uint64_t now_us) {
    if (!host_.challenge_ack_allowed(now_us)) return;
    ++stats_.challenge_acks;
    owe_ack();
}

// §3.10.7.4 fifth check, with the ACK-range test of RFC 5961 §5.2.
bool Connection::check_ack(const Segment& seg, std::uint64_t now_us) {
    if (state_ == State::syn_received) {
        if (!(seg.ack > snd().una && seg.ack <= snd().max)) {
            host_.reply_rst(route_, seg);
            return false;
        }
        update_send_window(seg);
        enter(State::established, now_us);
        return true;
    }
    if (seg.ack > snd().max) {  // acknowledges something not yet sent
        owe_ack();
        return false;
    }
    if (seg.ack < snd().una - snd().max_wnd) {  // RFC 5961 §5.2: too old to be genuine
        send_challenge_ack(now_us);
        return false;
    }
    return true;
}

void Connection::process_ack(const Segment& seg, std::uint64_t now_us) {
    AckInput in{.srtt_us = rtt_.has_sample() ? rtt_.srtt() : 0};
    std::uint32_t rtt_us = 0;
    Acked acked;
    if (seg.ack > snd().una) {
        acked = sender_.on_new_ack(seg.ack);
        // Samples in microseconds from Karn's timed segment (RFC 6298 §3). The timestamps'
        // millisecond echo (RFC 7323 §4) is far coarser than a datacenter path: it samples
        // only where Karn's rule left no timing (a retransmission), as Linux falls back to it.
        auto sample = rtt_sampler_.on_ack(seg.ack, now_us);
        if (!sample && rtt_sampler_.voided()) sample = agreed_.ts.rtt_us(seg, now_us);
        if (sample) {
            take_rtt_sample(*sample);
            rtt_us = *sample;
        }
        timing_.retransmits_in_row = 0;
        soft_error_ = ConnError::none;  // the path works again (Linux clears sk_err_soft here too)
        in.acked = acked.bytes;
    } else if (seg.ack == snd().una && is_duplicate_ack(seg)) {
        ++stats_.dup_acks_in;
        in.duplicate = true;
    }
    if (agreed_.sack && seg.options) in.sacks = {seg.options->sack_blocks.data(), seg.options->sack_count};
    if (in.acked > 0 || in.duplicate || !in.sacks.empty()) {
        in.ctx = ack_context(now_us);
        in.ctx.rtt_us = rtt_us;
        note_verdict(recovery_->on_ack(in, *cc_));
    }
    if (mss_.search.probing()) settle_mss_probe(false);
    if (in.acked > 0) {
        disarm(timing_.rtx);  // RFC 6298 §5.3: restarted by output() while data is in flight
        if (!app_.write_closed) app_.events |= event::writable;
        wake();
        if (acked.fin) on_our_fin_acked(now_us);
    }
    update_send_window(seg);
}

void Connection::note_verdict(const AckVerdict& v) {
    if (v.recovery_started) {
        rtt_sampler_.forget();  // Karn: the timed segment may be the one resent
        ++stats_.fast_retransmits;
    }
    if (v.wake) wake();
}

void Connection::take_rtt_sample(std::uint32_t us) {
    rtt_.sample(us);
    recovery_->on_rtt_sample(us);
}

AckContext Connection::ack_context(std::uint64_t now_us) const {
    return {.una = snd().una, .max = snd().max, .flight = flight(), .smss = mss_.smss, .now_us = now_us};
}

// RFC 5681 §2: what counts as a duplicate ACK; recovery decides what it means.
bool Connection::is_duplicate_ack(const Segment& seg) const {
    return seg.payload.empty() && !seg.has(fin) && snd().max > snd().una &&
           (std::uint32_t{seg.wnd} << snd().wnd_shift) == snd().wnd;
}

// §3.10.7.4, ESTABLISHED ACK processing (the window part: sender.hpp). A window that
// opens ends the persist timer.
void Connection::update_send_window(const Segment& seg) {
    const WindowUpdate update = sender_.update_window(seg);
    if (!update.taken) return;
    if (update.grew) wake();
    if (snd().wnd > 0 && timing_.rtx_mode == RtxMode::persist) {
        timing_.rtx_mode = RtxMode::retransmit;
        disarm(timing_.rtx);
        sender_.window_opened();
    }
}

void Connection::on_our_fin_acked(std::uint64_t now_us) {
    switch (state_) {
        case State::fin_wait_1: return enter(State::fin_wait_2, now_us);
        case State::closing: return enter(State::time_wait, now_us);
        case State::last_ack: return finish();
        default: return;
    }
}

// §3.10.7.4 seventh check (receiver.hpp does the placing and the ACK policy).
void Connection::process_text(const Segment& seg) {
    if (seg.payload.empty() || !receiving()) return;
    take_text(seg);
}

void Connection::take_text(const Segment& seg) {
    const TextOutcome text = receiver_.on_text(seg, options_.ack_every, app_.user_closed);
    if (!text.stored) return;
    wake();
    if (text.out_of_order) {
        ++stats_.out_of_order;
        if (text.dropped) ++stats_.ooo_dropped;
        return;
    }
    stats_.bytes_in += text.in_order;
    app_.events |= event::readable;
}

// §3.10.7.4 eighth check.
void Connection::process_fin(std::uint64_t now_us) {
    receiver_.take_fin();
    app_.events |= event::peer_closed | event::readable;
    wake();
    switch (state_) {
        case State::syn_received:
        case State::established: return enter(State::close_wait, now_us);
        case State::fin_wait_1: return enter(State::closing, now_us);
        case State::fin_wait_2: return enter(State::time_wait, now_us);
        default: return;
    }
}

}  // namespace ms::utcp
