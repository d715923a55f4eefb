#include "utcp/connection.hpp"

#include <algorithm>
#include <utility>

#include "utcp/path.hpp"
#include "wire/ip.hpp"
#include "wire/segmentation.hpp"

namespace ms::utcp {

using namespace wire::tcpflag;

const char* to_string(State s) {
    static constexpr const char* names[] = {"CLOSED",     "LISTEN",     "SYN_SENT",   "SYN_RECEIVED",
                                            "ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2", "CLOSE_WAIT",
                                            "CLOSING",    "LAST_ACK",   "TIME_WAIT"};
    return names[static_cast<int>(s)];
}

const char* to_string(ConnError e) {
    static constexpr const char* names[] = {"none",    "connection refused",  "connection reset",
                                            "timed out", "aborted", "network unreachable",
                                            "host unreachable", "protocol error"};
    return names[static_cast<int>(e)];
}

const char* to_string(FastOpen f) {
    static constexpr const char* names[] = {"none", "cookie_requested", "data_sent", "data_acked",
                                            "data_refused", "cookie_sent", "data_accepted"};
    return names[static_cast<int>(f)];
}

namespace {

// RFC 7323 §3.2: the option and its two NOPs.
constexpr std::uint32_t kTimestampOptionBytes = 12;

}  // namespace

std::uint8_t window_shift_for(std::size_t buffer) {
    std::uint8_t shift = 0;
    while (shift < 14 && (buffer >> shift) > 0xffff) ++shift;
    return shift;
}

Connection::Connection(ConnectionHost& host, const Route& route, const ConnOptions& options, std::uint16_t local_mss)
    : host_(host),
      route_(route),
      options_(options),
      local_mss_(local_mss),
      sender_(options.send_buffer, host.buffers()),
      receiver_(options.recv_buffer, local_mss, host.buffers()),
      cc_(make_congestion(options.congestion)),
      recovery_(make_loss_recovery(false)),
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

void Connection::open_active(Seq32 iss, std::uint64_t now_ms, const std::optional<FastOpenEntry>& cached) {
    now_ms_ = now_ms;
    if (options_.fast_open) {
        // RFC 7413 §4.1.1: an empty option asks for a cookie.
        fast_open_cookie_ = cached ? cached->cookie : wire::FastOpenCookie{};
        if (cached) fast_open_mss_ = std::min(cached->mss, local_mss_);
        if (!cached) fast_open_ = FastOpen::cookie_requested;
    }
    ts_.start(iss.value());
    sender_.start(iss);
    recovery_->start(iss);
    receiver_.set_window_shift(window_shift_for(receiver_.buffer().capacity()));
    last_recv_ms_ = now_ms;
    enter(State::syn_sent, now_ms);
    wake();
}

void Connection::open_passive(const Segment& syn, Seq32 iss, std::uint64_t now_ms) {
    now_ms_ = now_ms;
    ts_.start(iss.value());
    sender_.start(iss);
    recovery_->start(iss);
    receiver_.start(syn.seq);
    learn_peer_options(syn);
    sender_.take_syn_window(syn, iss);
    last_recv_ms_ = now_ms;
    enter(State::syn_received, now_ms);
    wake();
}

void Connection::accept_syn_data(const Segment& syn_seg) {
    fast_open_ = FastOpen::data_accepted;
    Segment text = syn_seg;
    text.seq = syn_seg.seq + 1;  // the data follows the SYN's octet
    (void)receiver_.syn_window(true);  // the window our SYN,ACK offers takes it
    take_text(text);
    announced_ = true;
    events_ |= event::established | event::writable;
    wake();
}

void Connection::offer_fast_open_cookie(const wire::FastOpenCookie& cookie) {
    fast_open_ = FastOpen::cookie_sent;
    fast_open_cookie_ = cookie;
}

// RFC 9293 §3.7.1 (MSS, clamped to what our MTU allows) and RFC 7323 §2.2 (scaling is
// on only when both SYNs carry the option; we offer it in ours, or echo the peer's).
void Connection::learn_peer_options(const Segment& syn) {
    const wire::TcpOptions& o = *syn.options;
    PeerSynOptions peer{.mss = o.mss.value_or(536), .window_scale = o.window_scale, .sack = o.sack_permitted};
    if (o.timestamps) peer.tsval = o.timestamps->value;
    // RFC 3168 §6.1.1: an ECN-setup SYN carries ECE and CWR; its SYN,ACK carries ECE alone.
    peer.ecn = syn.has(ece) && syn.has(cwr) != (state_ == State::syn_sent);
    apply_peer_options(peer);
}

void Connection::apply_peer_options(const PeerSynOptions& peer) {
    smss_ = std::min({peer.mss, local_mss_, path_mss_});
    smss_ = std::max<std::uint16_t>(smss_, 64);
    cc_ = make_congestion(options_.congestion);
    peer_window_scale_ = peer.window_scale.has_value();
    if (peer_window_scale_) {
        sender_.set_window_shift(std::min<std::uint8_t>(*peer.window_scale, 14));  // RFC 7323 §2.3: at most 14
        receiver_.set_window_shift(window_shift_for(receiver_.buffer().capacity()));
    } else {
        sender_.set_window_shift(0);
        receiver_.set_window_shift(0);
    }
    receiver_.start_quick_acks(options_.quick_acks);
    sack_ok_ = options_.sack && peer.sack;
    if (options_.timestamps && peer.tsval) ts_.enable(*peer.tsval);
    ecn_ok_ = options_.ecn && peer.ecn;
    ecn_recover_ = snd().iss;
    receiver_.use_sack(sack_ok_);
    recovery_ = make_loss_recovery(sack_ok_);
    recovery_->start(snd().iss);
}

void Connection::open_from_cookie(const Segment& ack_seg, Seq32 iss, const PeerSynOptions& peer, std::uint64_t now_ms) {
    now_ms_ = now_ms;
    ts_.start(iss.value());
    sender_.start(iss);
    receiver_.start(ack_seg.seq - 1);
    apply_peer_options(peer);
    (void)receiver_.syn_window(true);  // the window our SYN,ACK offered
    last_ack_sent_ = ack_seg.seq;      // and what it acknowledged
    // SND.WL1/WL2 as the SYN would have set them, so that the ACK's window is taken.
    sender_.take_syn_window(Segment{.seq = ack_seg.seq - 1}, iss);
    sender_.on_sent(iss, 1, now_ms);  // our SYN,ACK went, statelessly
    last_recv_ms_ = now_ms;
    state_ = State::syn_received;
    on_segment(ack_seg, now_ms);  // the ACK completes the handshake, as if we had kept state
}

// ---------------------------------------------------------------------------------------
// Segment arrival

void Connection::note_arrival(std::uint64_t now_ms) {
    now_ms_ = now_ms;
    ++stats_.segments_in;
    last_recv_ms_ = now_ms;
    keepalive_sent_ = 0;
}

void Connection::on_segment(const Segment& in, std::uint64_t now_ms) {
    note_arrival(now_ms);
    if (state_ == State::syn_sent) return on_segment_syn_sent(in, now_ms);
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
    if (seg.has(syn)) return send_challenge_ack(now_ms);
    if (ts_.too_old(seg)) {  // RFC 7323 §5.3 R1: PAWS; acknowledged and dropped
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
        if (zero_window_ack && check_ack(seg, now_ms)) process_ack(seg, now_ms);
        return;
    }
    ts_.note(seg, last_ack_sent_);  // RFC 7323 §5.3 R3
    if (seg.has(rst)) return on_rst(seg, now_ms);
    if (!seg.has(ack)) return;  // §3.10.7.4 fifth check: drop a segment without ACK
    if (!check_ack(seg, now_ms)) return;
    process_ack(seg, now_ms);
    if (state_ == State::closed || state_ == State::time_wait) return;
    process_ecn(seg, now_ms);
    process_text(seg);
    if (seg.has(fin) && receiver_.note_fin(seg)) wake();
    if (receiver_.fin_due()) process_fin(now_ms);
}

bool Connection::on_train_segment(const Segment& seg, std::uint64_t now_ms) {
    if (state_ != State::established || seg.seq != rcv().nxt || !receiver_.acceptable(seg)) return false;
    note_arrival(now_ms);
    update_send_window(seg);  // the same window: only SND.WL1 moves, as in full processing
    take_text(seg);
    // It may fill the last hole before a FIN that came out of order (on_segment's tail).
    if (receiver_.fin_due()) process_fin(now_ms);
    return true;
}

// RFC 9293 §3.10.7.3.
void Connection::on_segment_syn_sent(const Segment& seg, std::uint64_t now_ms) {
    const bool has_ack = seg.has(ack);
    if (has_ack && (seg.ack <= snd().iss || seg.ack > snd().max)) {
        if (!seg.has(rst)) host_.reply_rst(route_, seg);
        return;
    }
    if (seg.has(rst)) {
        if (has_ack) fail(ConnError::refused);  // RFC 5961 §3.2: only with an acceptable ACK
        return;
    }
    if (!seg.has(syn)) return;
    receiver_.start(seg.seq);
    learn_peer_options(seg);
    sender_.take_syn_window(seg, seg.ack);
    if (has_ack) on_fast_open_reply(seg);
    owe_ack();
    if (!has_ack) {
        // Simultaneous open: SYN_RECEIVED, and our SYN goes again, now with an ACK.
        sender_.rewind();
        disarm(rtx_timer_);
        return enter(State::syn_received, now_ms);
    }
    (void)sender_.on_new_ack(seg.ack);
    if (sender_.flight() > 0) sender_.rewind();  // RFC 7413 §4.2.1: the SYN's data that was not taken goes again now
    const auto sample = rtt_sampler_.on_ack(seg.ack, now_ms);
    if (sample && !retransmits_in_row_) take_rtt_sample(*sample);
    rtt_sampler_.forget();
    retransmits_in_row_ = 0;
    disarm(rtx_timer_);
    enter(State::established, now_ms);
    Segment rest = seg;  // data in a SYN,ACK is text after the SYN (§3.10.7.3, sixth step)
    rest.seq = seg.seq + 1;
    process_text(rest);
}

// RFC 7413 §4.1.3 and §4.2.1: keep the cookie a SYN,ACK gives; see whether it took the
// data our SYN carried.
void Connection::on_fast_open_reply(const Segment& syn_ack) {
    const auto& offered = syn_ack.options->fast_open;
    if (options_.fast_open && offered && offered->size > 0) host_.remember_fast_open(route_.tuple.remote, {*offered, smss_});
    if (fast_open_ == FastOpen::data_sent) {
        fast_open_ = syn_ack.ack > snd().iss + 1 ? FastOpen::data_acked : FastOpen::data_refused;
    }
}

// RFC 5961 §3.2: only a RST at exactly RCV.NXT resets; one elsewhere in the window
// draws a challenge ACK, which a genuine peer answers with an exact RST.
void Connection::on_rst(const Segment& seg, std::uint64_t now_ms) {
    if (seg.seq != rcv().nxt) return send_challenge_ack(now_ms);
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

// RFC 3168 §6.1.2 and §6.1.3.
void Connection::process_ecn(const Segment& seg, std::uint64_t now_ms) {
    if (!ecn_ok_) return;
    if (seg.has(cwr)) ece_due_ = false;  // the peer has backed off
    if (seg.ce) {
        ++stats_.ce_received;
        ece_due_ = true;
        owe_ack();  // tell the sender at once
    }
    // Back off once per window of data, and not on top of a loss recovery.
    if (seg.has(ece) && snd().una > ecn_recover_ && !recovery_->in_recovery()) {
        cc_->on_ecn(ack_context(now_ms).sample(0));
        ecn_recover_ = snd().max;
        cwr_due_ = true;
        ++stats_.ecn_reductions;
    }
}

void Connection::send_challenge_ack(std::uint64_t now_ms) {
    if (!host_.challenge_ack_allowed(now_ms)) return;
    ++stats_.challenge_acks;
    owe_ack();
}

// §3.10.7.4 fifth check, with the ACK-range test of RFC 5961 §5.2.
bool Connection::check_ack(const Segment& seg, std::uint64_t now_ms) {
    if (state_ == State::syn_received) {
        if (!(seg.ack > snd().una && seg.ack <= snd().max)) {
            host_.reply_rst(route_, seg);
            return false;
        }
        update_send_window(seg);
        enter(State::established, now_ms);
        return true;
    }
    if (seg.ack > snd().max) {  // acknowledges something not yet sent
        owe_ack();
        return false;
    }
    if (seg.ack < snd().una - snd().max_wnd) {  // RFC 5961 §5.2: too old to be genuine
        send_challenge_ack(now_ms);
        return false;
    }
    return true;
}

void Connection::process_ack(const Segment& seg, std::uint64_t now_ms) {
    AckInput in{.srtt_ms = rtt_.has_sample() ? rtt_.srtt() : 0};
    std::uint32_t rtt_ms = 0;
    Acked acked;
    if (seg.ack > snd().una) {
        acked = sender_.on_new_ack(seg.ack);
        // RFC 7323 §4: with timestamps every ACK of new data is a sample, retransmissions
        // included (the echo says which transmission arrived); else Karn's one at a time.
        const auto sample = ts_.enabled() ? ts_.rtt(seg, now_ms) : rtt_sampler_.on_ack(seg.ack, now_ms);
        if (sample) {
            take_rtt_sample(*sample);
            rtt_ms = *sample;
        }
        retransmits_in_row_ = 0;
        soft_error_ = ConnError::none;  // the path works again (Linux clears sk_err_soft here too)
        in.acked = acked.bytes;
    } else if (seg.ack == snd().una && is_duplicate_ack(seg)) {
        ++stats_.dup_acks_in;
        in.duplicate = true;
    }
    if (sack_ok_ && seg.options) in.sacks = {seg.options->sack_blocks.data(), seg.options->sack_count};
    if (in.acked > 0 || in.duplicate || !in.sacks.empty()) {
        in.ctx = ack_context(now_ms);
        in.ctx.rtt_ms = rtt_ms;
        note_verdict(recovery_->on_ack(in, *cc_));
    }
    if (mss_search_.probing()) settle_mss_probe(false);
    if (in.acked > 0) {
        disarm(rtx_timer_);  // RFC 6298 §5.3: restarted by output() while data is in flight
        if (!write_closed_) events_ |= event::writable;
        wake();
        if (acked.fin) on_our_fin_acked(now_ms);
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

void Connection::take_rtt_sample(std::uint32_t ms) {
    rtt_.sample(ms);
    recovery_->on_rtt_sample(ms);
}

AckContext Connection::ack_context(std::uint64_t now_ms) const {
    return {.una = snd().una, .max = snd().max, .flight = flight(), .smss = smss_, .now_ms = now_ms};
}

std::unique_ptr<CongestionControl> Connection::make_congestion(std::string_view name) const {
    auto made = host_.congestion().make(name, smss_);
    return made ? std::move(made) : host_.congestion().make(CongestionRegistry::kDefault, smss_);
}

bool Connection::set_congestion(std::string_view name) {
    if (!host_.congestion().has(name)) return false;
    options_.congestion = name;
    cc_ = make_congestion(name);
    wake();
    return true;
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
    if (snd().wnd > 0 && rtx_mode_ == RtxMode::persist) {
        rtx_mode_ = RtxMode::retransmit;
        disarm(rtx_timer_);
        sender_.window_opened();
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

// §3.10.7.4 seventh check (receiver.hpp does the placing and the ACK policy).
void Connection::process_text(const Segment& seg) {
    if (seg.payload.empty() || !receiving()) return;
    take_text(seg);
}

void Connection::take_text(const Segment& seg) {
    const TextOutcome text = receiver_.on_text(seg, options_.ack_every, user_closed_);
    if (!text.stored) return;
    wake();
    if (text.out_of_order) {
        ++stats_.out_of_order;
        if (text.dropped) ++stats_.ooo_dropped;
        return;
    }
    stats_.bytes_in += text.in_order;
    events_ |= event::readable;
}

// §3.10.7.4 eighth check.
void Connection::process_fin(std::uint64_t now_ms) {
    receiver_.take_fin();
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
            if (!std::exchange(announced_, true)) events_ |= event::established;
            events_ |= event::writable;
            if (options_.keepalive) arm(idle_timer_, now_ms + options_.keepalive_idle_ms);
            if (sender_.fin_queued()) state_ = State::fin_wait_1;  // closed while the handshake ran
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
    const std::size_t n = sender_.buffer().append(data);
    if (n > 0) wake();
    return n;
}

std::size_t Connection::send_reference(wire::Bytes data, std::shared_ptr<const void> pin) {
    if (!can_send()) return 0;
    const std::size_t n = sender_.buffer().append_reference(data, std::move(pin));
    if (n > 0) wake();
    return n;
}

std::size_t Connection::recv(wire::MutBytes out) {
    const std::size_t n = receiver_.buffer().read(out);
    if (n > 0) app_read();
    return n;
}

void Connection::consume(std::size_t n) {
    receiver_.buffer().consume(n);
    if (n > 0) app_read();
}

// Reading opens the window; output() decides whether that deserves an update.
void Connection::app_read() {
    receiver_.on_app_read();
    wake();
}

void Connection::shutdown_write() {
    if (write_closed_) return;
    write_closed_ = true;
    sender_.queue_fin();
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
    if (receiver_.buffer().readable() > 0) return abort();
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

// ---------------------------------------------------------------------------------------
// Output

bool Connection::output(std::uint64_t now_ms, SegmentSink& sink) {
    now_ms_ = now_ms;
    if (rst_due_) return emit_rst(sink);
    if (state_ == State::closed) return true;
    if (state_ == State::time_wait) return !receiver_.ack_due() || emit_ack(sink);
    if (state_ == State::syn_sent || (state_ == State::syn_received && snd().una == snd().iss)) {
        if (snd().nxt == snd().iss || (state_ == State::syn_received && receiver_.ack_due())) {
            if (!emit_syn(now_ms, sink)) return false;
        }
        // RFC 7413 §4.2.2: a Fast Open server may send data before the handshake completes.
        if (fast_open_ != FastOpen::data_accepted) {
            arm_timers(now_ms);
            return true;
        }
    }
    bool sent = false;
    if ((probe_due_ || keepalive_due_) && !emit_probe(now_ms, sink)) return false;
    if (loss_probe_due_ && !emit_loss_probe(now_ms, sink)) return false;
    if (!emit_ack_points(sink) || !emit_dup_acks(sink)) return false;
    if (!emit_data(now_ms, sink, sent)) return false;
    if (!sent && (receiver_.ack_due() || window_update_due()) && !emit_ack(sink)) return false;
    if (receiver_.ack_delayed() && !delack_timer_.pending()) {
        arm(delack_timer_, now_ms + options_.delayed_ack_ms);  // RFC 1122 §4.2.3.2
    }
    arm_timers(now_ms);
    return true;
}

OutSegment Connection::header(Seq32 seq, std::uint8_t flags, Sacks sacks) {
    OutSegment o;
    o.seq = seq;
    o.flags = flags;
    if (state_ != State::syn_sent) {
        o.flags |= ack;
        o.ack = rcv().nxt;
    }
    o.wnd = receiver_.advertise_window(user_closed_);
    if (o.flags & ack) last_ack_sent_ = o.ack;
    if (ecn_ok_ && ece_due_ && (o.flags & ack) && !(o.flags & syn)) o.flags |= ece;  // RFC 3168 §6.1.3
    if (ts_.enabled() && !(o.flags & rst)) o.options.timestamps = ts_.stamp(now_ms_);  // RFC 7323 §3.2
    const bool report = (o.flags & ack) && sacks == Sacks::report;
    if (report) receiver_.fill_sack(o.options, max_sack_blocks());
    receiver_.on_ack_sent(report);
    disarm(delack_timer_);
    return o;
}

bool Connection::emit_syn(std::uint64_t now_ms, SegmentSink& sink) {
    OutSegment o = header(snd().iss, state_ == State::syn_received ? syn | ack : syn);
    o.options.mss = local_mss_;
    // RFC 7323 §2.2: offer scaling in a SYN; in a SYN,ACK only if the peer offered it.
    if (state_ == State::syn_sent || peer_window_scale_) o.options.window_scale = rcv().wnd_shift;
    // RFC 2018 §2: offer SACK in a SYN; in a SYN,ACK only if the peer offered it.
    o.options.sack_permitted = options_.sack && (state_ == State::syn_sent || sack_ok_);
    // RFC 3168 §6.1.1: ask for ECN in a SYN (ECE and CWR); agree in a SYN,ACK (ECE).
    if (state_ == State::syn_sent && options_.ecn) o.flags |= ece | cwr;
    if (state_ == State::syn_received && ecn_ok_) o.flags |= ece;
    // RFC 7323 §3.2: offer timestamps in a SYN (TSecr 0); in a SYN,ACK only if the peer did.
    if (options_.timestamps && (state_ == State::syn_sent || ts_.enabled())) o.options.timestamps = ts_.stamp(now_ms_);
    // RFC 7413 §4.1.1: the cookie, or an empty option asking for one.
    if (fast_open_cookie_) o.options.fast_open = *fast_open_cookie_;
    o.wnd = receiver_.syn_window(state_ == State::syn_received);
    o.payload = sender_.buffer().view(0, syn_data_len(o.options));
    const auto len = static_cast<std::uint32_t>(o.payload.size());
    if (!sink.emit(route_, o)) return false;
    if (len > 0) fast_open_ = FastOpen::data_sent;
    stats_.bytes_out += len;
    after_send(snd().iss, 1 + len, now_ms);
    return true;
}

// RFC 7413 §4.2.1: with a cookie, the first SYN carries what data is queued, as much as
// the server's MSS takes beside the options; a retransmitted SYN carries none (the data
// then waits for the handshake, as in Linux).
std::uint32_t Connection::syn_data_len(const wire::TcpOptions& options) const {
    if (state_ != State::syn_sent || !fast_open_cookie_ || fast_open_cookie_->size == 0 || retransmits_in_row_ > 0) {
        return 0;
    }
    const std::size_t used = options.encoded_len();
    const std::size_t room = fast_open_mss_ > used ? fast_open_mss_ - used : 0;
    return static_cast<std::uint32_t>(std::min(room, sender_.buffer().size()));
}

bool Connection::emit_data(std::uint64_t now_ms, SegmentSink& sink, bool& sent) {
    for (;;) {
        const AckContext ctx = ack_context(now_ms);
        if (const auto resend = recovery_->next_resend(ctx, cc_->cwnd())) {
            if (!emit_resend(*resend, now_ms, sink)) return false;
            sent = true;
            continue;
        }
        if (!emit_mss_probe(now_ms, sink)) return false;
        bool with_fin = false;
        const std::uint32_t len = sender_.len_to_send(recovery_->send_room(ctx, cc_->cwnd()), payload_room(),
                                                      emission_room(), options_.nodelay, std::exchange(force_send_, false), with_fin);
        if (len == 0 && !with_fin) return true;
        if (!emit_new_data(len, with_fin, now_ms, sink)) return false;
        sent = true;
    }
}

bool Connection::emit_new_data(std::uint32_t len, bool with_fin, std::uint64_t now_ms, SegmentSink& sink,
                               std::uint32_t segment_len) {
    // RFC 5681 §4.1: after an idle period, restart from the initial window.
    if (flight() == 0 && now_ms - sender_.last_send_ms() > rtt_.rto()) cc_->on_idle_restart(ack_context(now_ms).sample(0));
    const std::size_t offset = sender_.data_offset(snd().nxt);
    const SplitBytes payload = sender_.buffer().view(offset, len);
    if (payload.size() < len) {  // copied bytes beside referenced ones: the rest goes next
        len = static_cast<std::uint32_t>(payload.size());
        with_fin = false;
    }
    const bool last = offset + len == sender_.buffer().size();
    const Seq32 seq = snd().nxt;
    OutSegment o = header(seq, static_cast<std::uint8_t>((with_fin ? fin : 0) | (last && len ? psh : 0)));
    o.payload = payload;
    if (segment_len == 0) segment_len = payload_room();
    if (len > segment_len) o.gso_size = static_cast<std::uint16_t>(segment_len);
    // RFC 3168 §6.1.4-5: new data is ECN-capable (never pure ACKs or retransmissions);
    // the first after we backed off says so with CWR.
    o.ect = ecn_ok_ && len > 0 && seq >= snd().max;  // a go-back-N resend after an RTO is not new
    if (o.ect && std::exchange(cwr_due_, false)) o.flags |= cwr;
    if (!sink.emit(route_, o)) return false;
    if (with_fin) sender_.fin_sent_at(seq + len);
    if (seq >= snd().max) stats_.bytes_out += len;  // new data, not a go-back-N resend
    // Recovery and RTT sampling see the segments on the wire, not the super-segment.
    std::uint32_t done = 0;
    do {
        const std::uint32_t piece = std::min(len - done, segment_len);
        const bool last_piece = done + piece == len;
        after_send(seq + done, piece + (with_fin && last_piece ? 1 : 0), now_ms);
        done += piece;
    } while (done < len);
    return true;
}

// One segment again from `r.seq`: fast retransmit, a partial ACK's next hole, a segment
// RACK deems lost, or a loss probe.
bool Connection::emit_resend(const Resend& r, std::uint64_t now_ms, SegmentSink& sink) {
    const SendBuffer& buf = sender_.buffer();
    const std::size_t offset = sender_.data_offset(r.seq);
    const std::size_t available = offset <= buf.size() ? buf.size() - offset : 0;
    const SplitBytes payload = buf.view(offset, std::min<std::size_t>({payload_room(), available, r.max_len}));
    const auto len = static_cast<std::uint32_t>(payload.size());
    const bool with_fin = sender_.fin_seq() && offset + len == buf.size() && r.max_len > len;
    OutSegment o = header(r.seq, with_fin ? fin : 0);
    o.payload = payload;
    if (!sink.emit(route_, o)) return false;
    // Recorded even if empty, so that recovery never offers the same resend forever.
    if (len == 0 && !with_fin) recovery_->on_sent(r.seq, r.max_len, now_ms);
    after_send(r.seq, len + (with_fin ? 1 : 0), now_ms);
    return true;
}

// RFC 8985 §7.3: the probe carries new data if the peer's window takes it, else the
// last segment again; in recovery it resends the first segment not delivered (recovery.cpp).
// Either way the next timer is the RTO.
bool Connection::emit_loss_probe(std::uint64_t now_ms, SegmentSink& sink) {
    bool with_fin = false;
    const std::uint32_t len = sender_.len_to_send(UINT32_MAX, payload_room(), payload_room(), true, true, with_fin);
    if (!recovery_->in_recovery() && (len > 0 || with_fin)) {
        if (!emit_new_data(len, with_fin, now_ms, sink)) return false;
    } else if (const auto last = recovery_->probe_segment()) {
        if (!emit_resend(*last, now_ms, sink)) return false;
    }
    loss_probe_due_ = false;
    recovery_->on_probe_sent();
    return true;
}

std::uint32_t Connection::emission_room() const {
    const std::uint32_t segment = payload_room();
    if (!host_.super_segments() || segment == 0) return segment;
    // The IP length field bounds the whole; the switch bounds the number of segments.
    constexpr std::uint32_t kRoom = wire::kMaxSuperIpLength - wire::kIpv6HeaderLen - 60;  // either family
    return std::min(kRoom / segment, wire::kMaxSegmentsPerSuper) * segment;
}

std::uint32_t Connection::payload_room() const {
    const std::size_t blocks = receiver_.sack_block_count(max_sack_blocks());
    const std::uint32_t options = (ts_.enabled() ? kTimestampOptionBytes : 0) + static_cast<std::uint32_t>(blocks ? 4 + 8 * blocks : 0);
    return smss_ - options;
}

bool Connection::window_update_due() const { return receiving() && receiver_.window_update_due(); }

bool Connection::emit_ack(SegmentSink& sink) { return sink.emit(route_, header(snd().nxt, 0)); }

// RFC 5681 §4.2 asks for an ACK at least every second full segment; a batch may hold
// hundreds. Coalescing keeps one ACK per `ack_every` segments (stretch ACKs, as GRO
// makes in Linux), each acknowledging as far as the batch had got by then.
bool Connection::emit_ack_points(SegmentSink& sink) {
    for (const Seq32 point : receiver_.ack_points()) {
        if (point >= rcv().nxt) break;  // the batch's own ACK covers it
        // As if sent when the batch had got to `point`: what arrived later, out of order
        // included, is not known yet (a SACK block beyond it would mark the data between
        // as lost).
        OutSegment o = header(snd().nxt, 0, Sacks::omit);
        o.ack = point;
        o.wnd = receiver_.window_at(point);
        if (!sink.emit(route_, o)) return false;
        receiver_.owe_ack();  // header() cleared it; the final ACK is still due
    }
    receiver_.clear_ack_points();
    return true;
}

// The duplicate ACKs owed for out-of-order segments of this batch, one each.
bool Connection::emit_dup_acks(SegmentSink& sink) {
    while (receiver_.owes_dup_ack()) {
        if (!emit_ack(sink)) return false;
        receiver_.dup_ack_sent();
    }
    return true;
}

bool Connection::emit_rst(SegmentSink& sink) {
    OutSegment o = header(snd().nxt, rst);
    if (!sink.emit(route_, o)) return false;
    rst_due_ = false;
    return true;
}

// A zero-window probe carries one octet at SND.UNA (RFC 9293 §3.8.6.1); a keepalive
// carries SND.UNA - 1 and no data, so the peer answers with an ACK (RFC 1122 §4.2.3.6).
bool Connection::emit_probe(std::uint64_t now_ms, SegmentSink& sink) {
    if (keepalive_due_) {
        if (!sink.emit(route_, header(snd().una - 1, 0))) return false;
        keepalive_due_ = false;
    }
    if (probe_due_) {
        const SendBuffer& buf = sender_.buffer();
        const std::uint32_t len = buf.size() > 0 ? 1 : 0;
        const bool with_fin = len == 0 && sender_.fin_queued();
        OutSegment o = header(snd().una, with_fin ? fin : 0);
        o.payload = buf.view(0, len);
        if (!sink.emit(route_, o)) return false;
        probe_due_ = false;
        sender_.probe_sent(len > 0);
        if (with_fin && !sender_.fin_seq()) sender_.fin_sent_at(snd().una);
        after_send(snd().una, len + (with_fin ? 1 : 0), now_ms);
    }
    return true;
}

void Connection::after_send(Seq32 seq, std::uint32_t len, std::uint64_t now_ms) {
    ++stats_.segments_out;
    const bool resent = len > 0 && seq < snd().max;
    if (resent) ++stats_.retransmits;
    rtt_sampler_.on_send(seq, len, resent, now_ms);
    if (len > 0 && seq != snd().iss) recovery_->on_sent(seq, len, now_ms);  // the SYN is not data
    sender_.on_sent(seq, len, now_ms);
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

ConnStats Connection::stats() const {
    ConnStats out = stats_;
    const RecoveryStats& r = recovery_->stats();
    out.lost_segments = r.lost_segments;
    out.loss_probes = r.loss_probes;
    out.reordering = r.reordering;
    return out;
}

}  // namespace ms::utcp
