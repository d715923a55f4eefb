#include "utcp/connection.hpp"

#include <algorithm>
#include <utility>

namespace ms::utcp {

using namespace wire::tcpflag;

const char* to_string(State s) {
    static constexpr const char* names[] = {"CLOSED",     "LISTEN",     "SYN_SENT",   "SYN_RECEIVED",
                                            "ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2", "CLOSE_WAIT",
                                            "CLOSING",    "LAST_ACK",   "TIME_WAIT"};
    return names[static_cast<int>(s)];
}

const char* to_string(ConnError e) {
    static constexpr const char* names[] = {"none", "connection refused", "connection reset", "timed out",
                                            "aborted"};
    return names[static_cast<int>(e)];
}

namespace {

// RFC 7323 §2.3: the smallest shift that lets the window field cover the buffer.
std::uint8_t window_shift_for(std::size_t buffer) {
    std::uint8_t shift = 0;
    while (shift < 14 && (buffer >> shift) > 0xffff) ++shift;
    return shift;
}

}  // namespace

Connection::Connection(ConnectionHost& host, const Route& route, const ConnOptions& options, std::uint16_t local_mss)
    : host_(host),
      route_(route),
      options_(options),
      local_mss_(local_mss),
      sndbuf_(options.send_buffer),
      rcvbuf_(options.recv_buffer),
      cc_(make_congestion_control(options.congestion, smss_)),
      rtt_(options.min_rto_ms, options.max_rto_ms, 1000) {  // RFC 6298 §2.1: 1 s before any sample
    for (auto [t, kind] : {std::pair{&rtx_timer_, TimerKind::retransmit}, {&delack_timer_, TimerKind::delayed_ack},
                           {&idle_timer_, TimerKind::idle}}) {
        t->owner = this;
        t->kind = kind;
    }
}

bool Connection::synchronized() const {
    return state_ != State::closed && state_ != State::listen && state_ != State::syn_sent;
}

// ---------------------------------------------------------------------------------------
// Opening (RFC 9293 §3.10.1 and §3.10.7.2)

void Connection::open_active(Seq32 iss, std::uint64_t now_ms) {
    snd.iss = snd.una = snd.nxt = snd.max = iss;
    recover_ = iss;
    rcv.wnd_shift = window_shift_for(rcvbuf_.capacity());
    last_recv_ms_ = now_ms;
    enter(State::syn_sent, now_ms);
    wake();
}

void Connection::open_passive(const Segment& syn, Seq32 iss, std::uint64_t now_ms) {
    snd.iss = snd.una = snd.nxt = snd.max = iss;
    recover_ = iss;
    rcv.irs = syn.seq;
    rcv.nxt = syn.seq + 1;
    rcv.adv_edge = rcv.nxt;
    learn_peer_options(syn);
    // RFC 7323 §2.2: the window of a SYN is never scaled.
    snd.wnd = snd.max_wnd = syn.wnd;
    snd.wl1 = syn.seq;
    snd.wl2 = snd.iss;
    last_recv_ms_ = now_ms;
    enter(State::syn_received, now_ms);
    wake();
}

// RFC 9293 §3.7.1 (MSS, clamped to what our MTU allows) and RFC 7323 §2.2 (scaling is
// on only when both SYNs carry the option; we offer it in ours, or echo the peer's).
void Connection::learn_peer_options(const Segment& syn) {
    const wire::TcpOptions& o = *syn.options;
    smss_ = std::min<std::uint16_t>(o.mss.value_or(536), local_mss_);
    smss_ = std::max<std::uint16_t>(smss_, 64);
    cc_ = make_congestion_control(options_.congestion, smss_);
    peer_window_scale_ = o.window_scale.has_value();
    if (peer_window_scale_) {
        snd.wnd_shift = std::min<std::uint8_t>(*o.window_scale, 14);  // RFC 7323 §2.3: at most 14
        rcv.wnd_shift = window_shift_for(rcvbuf_.capacity());
    } else {
        snd.wnd_shift = rcv.wnd_shift = 0;
    }
    quick_acks_left_ = options_.quick_acks;
}

// ---------------------------------------------------------------------------------------
// Segment arrival

void Connection::on_segment(const Segment& in, std::uint64_t now_ms) {
    ++stats_.segments_in;
    last_recv_ms_ = now_ms;
    keepalive_sent_ = 0;
    if (state_ == State::syn_sent) return on_segment_syn_sent(in, now_ms);
    if (state_ == State::closed || state_ == State::time_wait) return;

    Segment seg = in;
    // A retransmitted SYN (or the SYN,ACK of a simultaneous open) in SYN_RECEIVED: its
    // SYN is an old octet; answer with our SYN,ACK again and process the rest (§3.10.7.4).
    if (state_ == State::syn_received && seg.has(syn) && seg.seq == rcv.irs && !seg.has(rst)) {
        seg.flags &= static_cast<std::uint8_t>(~syn);
        seg.seq = seg.seq + 1;
        ack_now_ = true;
        wake();
    }
    // RFC 5961 §4.2: a SYN in a synchronised state draws a challenge ACK, whatever its
    // sequence number.
    if (seg.has(syn)) return send_challenge_ack(now_ms);
    if (!acceptable(seg)) {
        // §3.10.7.4 first check: answer with an ACK unless it is a RST. A zero window
        // still takes valid ACKs (the "special allowance").
        if (seg.has(rst)) return;
        ack_now_ = true;
        wake();
        const bool zero_window_ack = rcv.wnd() == 0 && seg.seq == rcv.nxt && seg.has(ack);
        if (zero_window_ack && check_ack(seg, now_ms)) process_ack(seg, now_ms);
        return;
    }
    if (seg.has(rst)) return on_rst(seg, now_ms);
    if (!seg.has(ack)) return;  // §3.10.7.4 fifth check: drop a segment without ACK
    if (!check_ack(seg, now_ms)) return;
    process_ack(seg, now_ms);
    if (state_ == State::closed || state_ == State::time_wait) return;
    process_text(seg);
    if (seg.has(fin) && !peer_fin_at_) {
        peer_fin_at_ = seg.seq + static_cast<std::uint32_t>(seg.payload.size());
        if (*peer_fin_at_ != rcv.nxt) {
            ack_now_ = true;  // out of order, like data (RFC 5681 §4.2)
            wake();
        }
    }
    if (peer_fin_at_ && !peer_fin_received_ && rcv.nxt == *peer_fin_at_) process_fin(now_ms);
}

// RFC 9293 §3.10.7.3.
void Connection::on_segment_syn_sent(const Segment& seg, std::uint64_t now_ms) {
    const bool has_ack = seg.has(ack);
    if (has_ack && (seg.ack <= snd.iss || seg.ack > snd.max)) {
        if (!seg.has(rst)) host_.reply_rst(route_, seg);
        return;
    }
    if (seg.has(rst)) {
        if (has_ack) fail(ConnError::refused);  // RFC 5961 §3.2: only with an acceptable ACK
        return;
    }
    if (!seg.has(syn)) return;
    rcv.irs = seg.seq;
    rcv.nxt = seg.seq + 1;
    rcv.adv_edge = rcv.nxt;
    learn_peer_options(seg);
    snd.wnd = snd.max_wnd = seg.wnd;  // RFC 7323 §2.2: unscaled in a SYN
    snd.wl1 = seg.seq;
    snd.wl2 = seg.ack;
    ack_now_ = true;
    wake();
    if (!has_ack) {
        // Simultaneous open: SYN_RECEIVED, and our SYN goes again, now with an ACK.
        snd.nxt = snd.iss;
        disarm(rtx_timer_);
        return enter(State::syn_received, now_ms);
    }
    snd.una = seg.ack;
    if (timed_seq_ && !retransmits_in_row_) rtt_.sample(static_cast<std::uint32_t>(now_ms - timed_at_));
    timed_seq_.reset();
    retransmits_in_row_ = 0;
    disarm(rtx_timer_);
    enter(State::established, now_ms);
    Segment rest = seg;  // data in a SYN,ACK is text after the SYN (§3.10.7.3, sixth step)
    rest.seq = seg.seq + 1;
    process_text(rest);
}

// §3.10.7.4 first check: the four cases of segment length and receive window.
bool Connection::acceptable(const Segment& seg) const {
    const std::uint32_t wnd = rcv.wnd();
    const std::uint32_t len = seg.len();
    if (len == 0) return wnd == 0 ? seg.seq == rcv.nxt : Seq32::in_window(seg.seq, rcv.nxt, wnd);
    if (wnd == 0) return false;
    return Seq32::in_window(seg.seq, rcv.nxt, wnd) || Seq32::in_window(seg.seq + (len - 1), rcv.nxt, wnd);
}

// RFC 5961 §3.2: only a RST at exactly RCV.NXT resets; one elsewhere in the window
// draws a challenge ACK, which a genuine peer answers with an exact RST.
void Connection::on_rst(const Segment& seg, std::uint64_t now_ms) {
    if (seg.seq != rcv.nxt) return send_challenge_ack(now_ms);
    switch (state_) {
        case State::syn_received:  // §3.10.7.4: a passive open just goes away
        case State::closing:
        case State::last_ack:
            finish();
            break;
        default:
            fail(ConnError::reset);
    }
}

void Connection::send_challenge_ack(std::uint64_t now_ms) {
    if (!host_.challenge_ack_allowed(now_ms)) return;
    ++stats_.challenge_acks;
    ack_now_ = true;
    wake();
}

// §3.10.7.4 fifth check, with the ACK-range test of RFC 5961 §5.2.
bool Connection::check_ack(const Segment& seg, std::uint64_t now_ms) {
    if (state_ == State::syn_received) {
        if (!(seg.ack > snd.una && seg.ack <= snd.max)) {
            host_.reply_rst(route_, seg);
            return false;
        }
        update_send_window(seg);
        snd.wl1 = seg.seq;
        snd.wl2 = seg.ack;
        enter(State::established, now_ms);
        return true;
    }
    if (seg.ack > snd.max) {  // acknowledges something not yet sent
        ack_now_ = true;
        wake();
        return false;
    }
    if (seg.ack < snd.una - snd.max_wnd) {  // RFC 5961 §5.2: too old to be genuine
        send_challenge_ack(now_ms);
        return false;
    }
    return true;
}

void Connection::process_ack(const Segment& seg, std::uint64_t now_ms) {
    if (seg.ack > snd.una) {
        const auto acked = static_cast<std::uint32_t>(seg.ack - snd.una);
        const std::uint32_t syn_part = syn_in_flight();
        const bool fin_acked = fin_seq_ && seg.ack > *fin_seq_;
        sndbuf_.consume(std::min<std::size_t>(acked - syn_part - (fin_acked ? 1 : 0), sndbuf_.size()));
        snd.una = seg.ack;
        if (snd.nxt < snd.una) snd.nxt = snd.una;  // after an RTO rewound it
        if (timed_seq_ && seg.ack >= *timed_seq_) {
            rtt_.sample(static_cast<std::uint32_t>(now_ms - timed_at_));
            timed_seq_.reset();
        }
        retransmits_in_row_ = 0;
        dup_acks_ = 0;
        if (in_recovery_ && seg.ack >= recover_) {
            in_recovery_ = false;  // RFC 6582 §3.2 step 6: a full acknowledgment
            cc_->on_exit_recovery(flight(), smss_);
        } else if (in_recovery_) {
            cc_->on_partial_ack(acked, smss_);  // step 5: resend the next hole at once
            retransmit_una_ = true;
        } else {
            cc_->on_ack(acked, smss_);
        }
        disarm(rtx_timer_);  // RFC 6298 §5.3: restarted by output() while data is in flight
        if (!write_closed_) events_ |= event::writable;
        wake();
        if (fin_acked) on_our_fin_acked(now_ms);
    } else if (seg.ack == snd.una) {
        process_dup_ack(seg);
    }
    update_send_window(seg);
}

// RFC 5681 §2 (what counts as a duplicate ACK) and §3.2, with RFC 6582 §3.2 step 1.
void Connection::process_dup_ack(const Segment& seg) {
    const bool duplicate = seg.payload.empty() && !seg.has(fin) && snd.max > snd.una &&
                           (std::uint32_t{seg.wnd} << snd.wnd_shift) == snd.wnd;
    if (!duplicate) return;
    ++stats_.dup_acks_in;
    if (in_recovery_) {
        cc_->on_dup_ack_in_recovery(smss_);
        wake();
        return;
    }
    if (++dup_acks_ != 3 || snd.una <= recover_) return;
    in_recovery_ = true;
    recover_ = snd.max;
    cc_->on_enter_recovery(flight(), smss_);
    retransmit_una_ = true;
    timed_seq_.reset();  // Karn: the timed segment may be the one resent
    ++stats_.fast_retransmits;
    wake();
}

// §3.10.7.4, ESTABLISHED ACK processing: SND.WL1/WL2 keep old segments from
// shrinking the window. Two segments with the same SEQ and ACK cannot be ordered, so a
// reordered old one could shrink the window for good; as Linux does
// (tcp_may_update_window), such a segment may only grow it.
void Connection::update_send_window(const Segment& seg) {
    const std::uint32_t wnd = std::uint32_t{seg.wnd} << snd.wnd_shift;
    const bool newer = snd.wl1 < seg.seq || (snd.wl1 == seg.seq && snd.wl2 < seg.ack);
    const bool same_but_larger = snd.wl1 == seg.seq && snd.wl2 == seg.ack && wnd >= snd.wnd;
    if (!newer && !same_but_larger) return;
    if (wnd > snd.wnd) wake();
    snd.wnd = wnd;
    snd.max_wnd = std::max(snd.max_wnd, wnd);
    snd.wl1 = seg.seq;
    snd.wl2 = seg.ack;
    if (wnd > 0 && persisting_) {
        persisting_ = false;
        disarm(rtx_timer_);
        // The window opened: a probe octet the peer did not take goes again with the
        // data that follows it, instead of waiting for a retransmission timeout.
        if (std::exchange(probe_outstanding_, false)) snd.nxt = snd.una;
    }
}

void Connection::on_our_fin_acked(std::uint64_t now_ms) {
    switch (state_) {
        case State::fin_wait_1: return enter(State::fin_wait_2, now_ms);
        case State::closing: return enter(State::time_wait, now_ms);
        case State::last_ack: return finish();
        default: return;
    }
}

// §3.10.7.4 seventh check: data, trimmed to the window, placed in order or kept out of
// order (RFC 5681 §4.2 and RFC 1122 §4.2.3.2 decide when to ACK).
void Connection::process_text(const Segment& seg) {
    if (seg.payload.empty()) return;
    if (state_ != State::established && state_ != State::fin_wait_1 && state_ != State::fin_wait_2) return;
    wire::Bytes data = seg.payload;
    std::int32_t offset = seg.seq - rcv.nxt;
    if (offset < 0) {  // overlaps what we have: keep only the new part
        const auto old = static_cast<std::size_t>(-offset);
        if (old >= data.size()) return;
        data = data.subspan(old);
        offset = 0;
    }
    const std::uint32_t window = rcv.wnd();
    if (static_cast<std::uint32_t>(offset) >= window) return;
    data = data.first(std::min<std::size_t>(data.size(), window - static_cast<std::uint32_t>(offset)));
    const std::int64_t gained = rcvbuf_.insert(static_cast<std::size_t>(offset), data);
    wake();
    if (offset > 0) {
        ++stats_.out_of_order;
        if (gained < 0) ++stats_.ooo_dropped;
        // RFC 5681 §4.2: a duplicate ACK at once for each out-of-order segment. Batching
        // must not merge them: the sender counts them to detect the loss (§3.2).
        ack_now_ = true;
        ++dup_acks_owed_;
        return;
    }
    const bool filled_hole = static_cast<std::size_t>(gained) > data.size() || rcvbuf_.has_out_of_order();
    rcv.nxt += static_cast<std::uint32_t>(gained);
    stats_.bytes_in += static_cast<std::uint64_t>(gained);
    events_ |= event::readable;
    if (user_closed_) rcvbuf_.consume(rcvbuf_.readable());  // nobody will read it
    ++unacked_segments_;
    if (++segments_since_point_ >= options_.ack_every && ack_point_count_ < ack_points_.size()) {
        ack_points_[ack_point_count_++] = rcv.nxt;
        segments_since_point_ = 0;
    }
    if (filled_hole || unacked_segments_ >= 2) ack_now_ = true;
    if (quick_acks_left_ > 0) {
        --quick_acks_left_;
        ack_now_ = true;
    }
}

// §3.10.7.4 eighth check.
void Connection::process_fin(std::uint64_t now_ms) {
    peer_fin_received_ = true;
    rcv.nxt += 1;
    ack_now_ = true;
    events_ |= event::peer_closed | event::readable;
    wake();
    switch (state_) {
        case State::syn_received:
        case State::established: return enter(State::close_wait, now_ms);
        case State::fin_wait_1: return enter(State::closing, now_ms);
        case State::fin_wait_2: return enter(State::time_wait, now_ms);
        default: return;
    }
}

// ---------------------------------------------------------------------------------------
// State changes

void Connection::enter(State s, std::uint64_t now_ms) {
    state_ = s;
    switch (s) {
        case State::established:
            events_ |= event::established | event::writable;
            if (options_.keepalive) arm(idle_timer_, now_ms + options_.keepalive_idle_ms);
            if (fin_queued_) state_ = State::fin_wait_1;  // closed while the handshake ran
            break;
        case State::fin_wait_2:
            // A FIN_WAIT_2 that the application has left for good must not live forever.
            if (user_closed_) arm(idle_timer_, now_ms + options_.fin_wait_2_timeout_ms);
            break;
        case State::time_wait:
            finish();
            state_ = State::time_wait;
            break;
        default:
            break;
    }
    wake();
}

void Connection::fail(ConnError e) {
    error_ = e;
    events_ |= event::error;
    finish();
}

// The protocol is done with this connection: CLOSED (or TIME_WAIT, which the stack
// turns into a compact record). The stack reaps it after delivering `closed`.
void Connection::finish() {
    state_ = State::closed;
    for (ConnTimer* t : {&rtx_timer_, &delack_timer_, &idle_timer_}) disarm(*t);
    events_ |= event::closed;
    wake();
}

// ---------------------------------------------------------------------------------------
// Application calls (§3.10.2 to §3.10.5)

std::size_t Connection::send(wire::Bytes data) {
    if (!can_send()) return 0;
    const std::size_t n = sndbuf_.append(data);
    if (n > 0) wake();
    return n;
}

std::size_t Connection::recv(wire::MutBytes out) {
    const std::size_t n = rcvbuf_.read(out);
    if (n > 0) app_read();
    return n;
}

void Connection::consume(std::size_t n) {
    rcvbuf_.consume(n);
    if (n > 0) app_read();
}

// Reading opens the window; output() decides whether that deserves an update.
void Connection::app_read() {
    read_since_update_ = true;
    wake();
}

void Connection::shutdown_write() {
    if (write_closed_) return;
    write_closed_ = true;
    fin_queued_ = true;
    switch (state_) {
        case State::established: state_ = State::fin_wait_1; break;
        case State::close_wait: state_ = State::last_ack; break;
        case State::syn_sent: finish(); break;  // §3.10.4: nothing was synchronised
        default: break;  // SYN_RECEIVED: FIN_WAIT_1 once established (enter())
    }
    wake();
}

void Connection::close() {
    if (user_closed_) return;
    user_closed_ = true;
    // RFC 2525 §2.17 (and Linux): closing with unread data tells the peer with a RST
    // that the data was lost, rather than pretending a clean close.
    if (rcvbuf_.readable() > 0) return abort();
    shutdown_write();
    if (state_ == State::fin_wait_2) arm(idle_timer_, last_recv_ms_ + options_.fin_wait_2_timeout_ms);
}

void Connection::abort() {
    user_closed_ = write_closed_ = true;
    if (state_ == State::closed || state_ == State::time_wait) return;
    // §3.10.5: a RST unless nothing was synchronised yet.
    rst_due_ = synchronized();
    error_ = ConnError::aborted;
    finish();
}

void Connection::set_options(const ConnOptions& o) {
    const bool keepalive_changed = o.keepalive != options_.keepalive;
    options_.nodelay = o.nodelay;
    options_.min_rto_ms = o.min_rto_ms;
    options_.max_rto_ms = o.max_rto_ms;
    options_.delayed_ack_ms = o.delayed_ack_ms;
    options_.quick_acks = o.quick_acks;
    options_.max_retransmits = o.max_retransmits;
    options_.keepalive = o.keepalive;
    options_.keepalive_idle_ms = o.keepalive_idle_ms;
    options_.keepalive_interval_ms = o.keepalive_interval_ms;
    options_.keepalive_probes = o.keepalive_probes;
    options_.fin_wait_2_timeout_ms = o.fin_wait_2_timeout_ms;
    rtt_.set_min_rto(o.min_rto_ms);
    if (keepalive_changed && state_ == State::established) {
        if (o.keepalive) {
            arm(idle_timer_, last_recv_ms_ + o.keepalive_idle_ms);
        } else {
            disarm(idle_timer_);
        }
    }
    wake();  // nodelay may release a held segment
}

// ---------------------------------------------------------------------------------------
// Timers

void Connection::on_timer(TimerKind kind, std::uint64_t now_ms) {
    switch (kind) {
        case TimerKind::retransmit:
            return persisting_ ? on_persist_timeout(now_ms) : on_retransmit_timeout();
        case TimerKind::delayed_ack:
            ack_now_ = true;
            return wake();
        case TimerKind::idle:
            return on_idle_timeout(now_ms);
    }
}

// RFC 6298 §5.4 to §5.7 and RFC 5681 §3.1: back off, shrink to one segment, and resend
// from SND.UNA.
void Connection::on_retransmit_timeout() {
    const bool handshake = state_ == State::syn_sent || (state_ == State::syn_received && snd.una == snd.iss);
    const std::uint32_t limit = handshake ? options_.max_syn_retransmits : options_.max_retransmits;
    if (++retransmits_in_row_ > limit) return fail(ConnError::timed_out);
    ++stats_.timeouts;
    rtt_.back_off();
    timed_seq_.reset();  // Karn's rule
    if (!handshake) {
        cc_->on_rto(flight(), smss_);
        in_recovery_ = false;
        retransmit_una_ = false;
        recover_ = snd.max;
        dup_acks_ = 0;
    }
    snd.nxt = snd.una;
    wake();
}

// RFC 9293 §3.8.6.1: probe a zero window, backing off like the RTO, for as long as
// the peer keeps answering. A window that is open but too small for silly-window
// avoidance gets the override of RFC 1122 §4.2.3.4 instead: send what fits.
void Connection::on_persist_timeout(std::uint64_t now_ms) {
    if (snd.wnd > 0) {
        persisting_ = false;
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
    if (keepalive_sent_ >= options_.keepalive_probes) return fail(ConnError::timed_out);
    ++keepalive_sent_;
    ++stats_.keepalive_probes;
    keepalive_due_ = true;
    arm(idle_timer_, now_ms + options_.keepalive_interval_ms);
    wake();
}

// ---------------------------------------------------------------------------------------
// Output

bool Connection::output(std::uint64_t now_ms, SegmentSink& sink) {
    if (rst_due_) return emit_rst(sink);
    if (state_ == State::closed) return true;
    if (state_ == State::time_wait) return !ack_now_ || emit_ack(sink);
    if (state_ == State::syn_sent || (state_ == State::syn_received && snd.una == snd.iss)) {
        if (snd.nxt == snd.iss || (state_ == State::syn_received && ack_now_)) {
            if (!emit_syn(sink)) return false;
            after_send(snd.iss, 1, now_ms);
        }
        arm_timers(now_ms);
        return true;
    }
    bool sent = false;
    if ((probe_due_ || keepalive_due_) && !emit_probe(now_ms, sink)) return false;
    if (!emit_ack_points(sink) || !emit_dup_acks(sink)) return false;
    if (!emit_data(now_ms, sink, sent)) return false;
    if (!sent && (ack_now_ || window_update_due()) && !emit_ack(sink)) return false;
    if (unacked_segments_ > 0 && !delack_timer_.pending()) {
        arm(delack_timer_, now_ms + options_.delayed_ack_ms);  // RFC 1122 §4.2.3.2
    }
    arm_timers(now_ms);
    return true;
}

OutSegment Connection::header(Seq32 seq, std::uint8_t flags) {
    OutSegment o;
    o.seq = seq;
    o.flags = flags;
    if (state_ != State::syn_sent) {
        o.flags |= ack;
        o.ack = rcv.nxt;
    }
    o.wnd = advertise_window();
    // Every segment carries the ACK: nothing more is owed.
    ack_now_ = false;
    read_since_update_ = false;
    unacked_segments_ = 0;
    disarm(delack_timer_);
    return o;
}

bool Connection::emit_syn(SegmentSink& sink) {
    OutSegment o = header(snd.iss, state_ == State::syn_received ? syn | ack : syn);
    o.options.mss = local_mss_;
    // RFC 7323 §2.2: offer scaling in a SYN; in a SYN,ACK only if the peer offered it.
    if (state_ == State::syn_sent || peer_window_scale_) o.options.window_scale = rcv.wnd_shift;
    o.wnd = static_cast<std::uint16_t>(std::min<std::size_t>(rcvbuf_.room(), 0xffff));
    if (state_ == State::syn_received) rcv.adv_edge = rcv.nxt + o.wnd;
    return sink.emit(route_, o);
}

bool Connection::emit_data(std::uint64_t now_ms, SegmentSink& sink, bool& sent) {
    for (;;) {
        if (retransmit_una_) {
            // One segment from SND.UNA: fast retransmit, or a partial ACK's next hole.
            retransmit_una_ = false;
            const auto len = static_cast<std::uint32_t>(std::min<std::size_t>(smss_, sndbuf_.size()));
            const bool with_fin = fin_seq_ && len == sndbuf_.size();
            OutSegment o = header(snd.una, with_fin ? fin : 0);
            o.payload = sndbuf_.view(0, len);
            if (!sink.emit(route_, o)) return false;
            after_send(snd.una, len + (with_fin ? 1 : 0), now_ms);
            sent = true;
            continue;
        }
        const std::size_t offset = flight();
        bool with_fin = false;
        const std::uint32_t len = data_len_to_send(offset, with_fin, std::exchange(force_send_, false));
        if (len == 0 && !with_fin) return true;
        // RFC 5681 §4.1: after an idle period, restart from the initial window.
        if (flight() == 0 && now_ms - last_send_ms_ > rtt_.rto()) cc_->on_idle_restart(smss_);
        const bool last = offset + len == sndbuf_.size();
        OutSegment o = header(snd.nxt, static_cast<std::uint8_t>((with_fin ? fin : 0) | (last && len ? psh : 0)));
        o.payload = sndbuf_.view(offset, len);
        if (!sink.emit(route_, o)) return false;
        if (with_fin) fin_seq_ = snd.nxt + len;
        after_send(snd.nxt, len + (with_fin ? 1 : 0), now_ms);
        sent = true;
    }
}

// How much new data may go now (0 to hold back): the window, then sender-side silly
// window avoidance and Nagle's algorithm (RFC 9293 §3.8.6.2.1, RFC 1122 §4.2.3.4).
std::uint32_t Connection::data_len_to_send(std::size_t offset, bool& with_fin, bool force) const {
    with_fin = false;
    if (fin_seq_ && snd.nxt > *fin_seq_) return 0;  // our FIN is out: nothing follows it
    const std::size_t queued = sndbuf_.size() - offset;
    const std::uint32_t window = std::min(snd.wnd, cc_->cwnd());
    const std::uint32_t in_flight = flight();
    const std::uint32_t usable = window > in_flight ? window - in_flight : 0;
    const auto len = static_cast<std::uint32_t>(std::min<std::size_t>({queued, usable, smss_}));
    const bool all_queued = len == queued;
    with_fin = fin_queued_ && all_queued;
    if (len == smss_ || snd.nxt < snd.max || force) return len;  // full, resending after an RTO, or forced
    if (all_queued && (options_.nodelay || in_flight == 0 || fin_queued_)) return len;
    if (len > 0 && len >= snd.max_wnd / 2) return len;
    with_fin = false;
    return 0;
}

// Receiver-side SWS avoidance (RFC 9293 §3.8.6.2.2): the right edge moves only by at
// least min(buffer / 2, MSS), and never moves left.
std::uint16_t Connection::advertise_window() {
    const std::size_t room = user_closed_ ? rcvbuf_.capacity() : rcvbuf_.room();
    const std::size_t max_wnd = std::size_t{0xffff} << rcv.wnd_shift;
    const Seq32 edge = rcv.nxt + static_cast<std::uint32_t>(std::min(room, max_wnd));
    if (rcv.adv_edge < rcv.nxt || edge - rcv.adv_edge >= static_cast<std::int32_t>(sws_threshold())) rcv.adv_edge = edge;
    return static_cast<std::uint16_t>(std::min<std::uint32_t>(rcv.wnd() >> rcv.wnd_shift, 0xffff));
}

std::uint32_t Connection::sws_threshold() const {
    return std::min<std::uint32_t>(static_cast<std::uint32_t>(rcvbuf_.capacity() / 2), local_mss_);
}

// A pure window update is worth a segment only after the application read, when the
// edge may move (the SWS threshold) and the peer may be short of window: what it has
// is under half the buffer. Otherwise the next ACK carries the new window anyway.
bool Connection::window_update_due() const {
    if (!read_since_update_) return false;
    if (state_ != State::established && state_ != State::fin_wait_1 && state_ != State::fin_wait_2) return false;
    const Seq32 edge = rcv.nxt + static_cast<std::uint32_t>(rcvbuf_.room());
    return edge - rcv.adv_edge >= static_cast<std::int32_t>(sws_threshold()) && rcv.wnd() < rcvbuf_.capacity() / 2;
}

bool Connection::emit_ack(SegmentSink& sink) { return sink.emit(route_, header(snd.nxt, 0)); }

// RFC 5681 §4.2 asks for an ACK at least every second full segment; a batch may hold
// hundreds. Coalescing keeps one ACK per `ack_every` segments (stretch ACKs, as GRO
// makes in Linux), each acknowledging as far as the batch had got by then.
bool Connection::emit_ack_points(SegmentSink& sink) {
    for (std::uint32_t k = 0; k < ack_point_count_; ++k) {
        const Seq32 point = ack_points_[k];
        if (point >= rcv.nxt) break;  // the batch's own ACK covers it
        OutSegment o = header(snd.nxt, 0);
        o.ack = point;
        o.wnd = static_cast<std::uint16_t>(std::min<std::uint32_t>(static_cast<std::uint32_t>(rcv.adv_edge - point) >> rcv.wnd_shift, 0xffff));
        if (!sink.emit(route_, o)) return false;
        ack_now_ = true;  // header() cleared it; the final ACK is still due
    }
    ack_point_count_ = 0;
    segments_since_point_ = 0;
    return true;
}

// The duplicate ACKs owed for out-of-order segments of this batch, one each (bounded:
// past a few, more tell the sender nothing new). If the batch also filled every hole,
// none are owed: they would be duplicates of an ACK that acknowledges new data.
bool Connection::emit_dup_acks(SegmentSink& sink) {
    if (!rcvbuf_.has_out_of_order()) dup_acks_owed_ = 0;
    for (dup_acks_owed_ = std::min<std::uint32_t>(dup_acks_owed_, 8); dup_acks_owed_ > 0; --dup_acks_owed_) {
        if (!emit_ack(sink)) return false;
    }
    return true;
}

bool Connection::emit_rst(SegmentSink& sink) {
    OutSegment o = header(snd.nxt, rst);
    if (!sink.emit(route_, o)) return false;
    rst_due_ = false;
    return true;
}

// A zero-window probe carries one octet at SND.UNA (RFC 9293 §3.8.6.1); a keepalive
// carries SND.UNA - 1 and no data, so the peer answers with an ACK (RFC 1122 §4.2.3.6).
bool Connection::emit_probe(std::uint64_t now_ms, SegmentSink& sink) {
    if (keepalive_due_) {
        if (!sink.emit(route_, header(snd.una - 1, 0))) return false;
        keepalive_due_ = false;
    }
    if (probe_due_) {
        const std::uint32_t len = sndbuf_.size() > 0 ? 1 : 0;
        const bool with_fin = len == 0 && fin_queued_;
        OutSegment o = header(snd.una, with_fin ? fin : 0);
        o.payload = sndbuf_.view(0, len);
        if (!sink.emit(route_, o)) return false;
        probe_due_ = false;
        probe_outstanding_ = len > 0;
        if (with_fin && !fin_seq_) fin_seq_ = snd.una;
        after_send(snd.una, len + (with_fin ? 1 : 0), now_ms);
    }
    return true;
}

void Connection::after_send(Seq32 seq, std::uint32_t len, std::uint64_t now_ms) {
    ++stats_.segments_out;
    const Seq32 end = seq + len;
    if (len > 0 && seq < snd.max) {
        ++stats_.retransmits;
        if (timed_seq_ && *timed_seq_ > seq) timed_seq_.reset();  // Karn's rule
    } else if (len > 0 && !timed_seq_) {
        timed_seq_ = end;
        timed_at_ = now_ms;
    }
    if (seq >= snd.max) stats_.bytes_out += len;
    if (end > snd.nxt) snd.nxt = end;
    snd.max = Seq32::max(snd.max, snd.nxt);
    if (len > 0) last_send_ms_ = now_ms;
}

// The retransmission timer runs while data is in flight (RFC 6298 §5.1); with nothing
// in flight and data held back (a zero window, or one too small to use), the same
// timer persists (§3.8.6.1, RFC 1122 §4.2.3.4).
void Connection::arm_timers(std::uint64_t now_ms) {
    const bool unsent = sndbuf_.size() > flight() || (fin_queued_ && !fin_seq_);
    if (persisting_) {
        if (!rtx_timer_.pending()) arm(rtx_timer_, now_ms + rtt_.rto());
        return;
    }
    if (flight() > 0) {
        if (!rtx_timer_.pending()) arm(rtx_timer_, now_ms + rtt_.rto());
    } else if (unsent && synchronized()) {
        persisting_ = true;
        arm(rtx_timer_, now_ms + rtt_.rto());
    } else {
        disarm(rtx_timer_);
    }
}

}  // namespace ms::utcp
