// Connection, the opening part: active and passive opens, SYN cookies' stateless opens,
// the options both SYNs settle (MSS, window scaling, SACK, timestamps, ECN), and TCP
// Fast Open on either side (RFC 9293 §3.10.1 and §3.10.7.2-3, RFC 7413). The connection's
// contract is in connection.hpp.
#include <algorithm>

#include "utcp/connection.hpp"

namespace ms::utcp {

using namespace wire::tcpflag;

// Opening (RFC 9293 §3.10.1 and §3.10.7.2)

void Connection::open_active(Seq32 iss, std::uint64_t now_us, const std::optional<FastOpenEntry>& cached) {
    now_us_ = now_us;
    if (options_.fast_open) {
        // RFC 7413 §4.1.1: an empty option asks for a cookie.
        tfo_.cookie = cached ? cached->cookie : wire::FastOpenCookie{};
        if (cached) tfo_.mss = std::min(cached->mss, mss_.local);
        if (!cached) tfo_.stage = FastOpen::cookie_requested;
    }
    agreed_.ts.start(iss.value());
    sender_.start(iss);
    recovery_->start(iss);
    receiver_.set_window_shift(window_shift_for(receiver_.buffer().capacity()));
    timing_.last_recv_us = now_us;
    enter(State::syn_sent, now_us);
    wake();
}

void Connection::open_passive(const Segment& syn, Seq32 iss, std::uint64_t now_us) {
    now_us_ = now_us;
    agreed_.ts.start(iss.value());
    sender_.start(iss);
    recovery_->start(iss);
    receiver_.start(syn.seq);
    learn_peer_options(syn);
    sender_.take_syn_window(syn, iss);
    timing_.last_recv_us = now_us;
    enter(State::syn_received, now_us);
    wake();
}

void Connection::accept_syn_data(const Segment& syn_seg) {
    tfo_.stage = FastOpen::data_accepted;
    Segment text = syn_seg;
    text.seq = syn_seg.seq + 1;  // the data follows the SYN's octet
    (void)receiver_.syn_window(true);  // the window our SYN,ACK offers takes it
    take_text(text);
    app_.announced = true;
    app_.events |= event::established | event::writable;
    wake();
}

void Connection::offer_fast_open_cookie(const wire::FastOpenCookie& cookie) {
    tfo_.stage = FastOpen::cookie_sent;
    tfo_.cookie = cookie;
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
    mss_.smss = std::min({peer.mss, mss_.local, mss_.path});
    mss_.smss = std::max<std::uint16_t>(mss_.smss, 64);
    cc_ = make_congestion(options_.congestion);
    agreed_.window_scale = peer.window_scale.has_value();
    if (agreed_.window_scale) {
        sender_.set_window_shift(std::min<std::uint8_t>(*peer.window_scale, 14));  // RFC 7323 §2.3: at most 14
        receiver_.set_window_shift(window_shift_for(receiver_.buffer().capacity()));
    } else {
        sender_.set_window_shift(0);
        receiver_.set_window_shift(0);
    }
    receiver_.start_quick_acks(options_.quick_acks);
    agreed_.sack = options_.sack && peer.sack;
    if (options_.timestamps && peer.tsval) agreed_.ts.enable(*peer.tsval);
    ecn_.on = options_.ecn && peer.ecn;
    ecn_.recover = snd().iss;
    receiver_.use_sack(agreed_.sack);
    recovery_ = make_loss_recovery(agreed_.sack);
    recovery_->start(snd().iss);
}

void Connection::open_from_cookie(const Segment& ack_seg, Seq32 iss, const PeerSynOptions& peer, std::uint64_t now_us) {
    now_us_ = now_us;
    agreed_.ts.start(iss.value());
    sender_.start(iss);
    receiver_.start(ack_seg.seq - 1);
    apply_peer_options(peer);
    (void)receiver_.syn_window(true);  // the window our SYN,ACK offered
    agreed_.last_ack_sent = ack_seg.seq;      // and what it acknowledged
    // SND.WL1/WL2 as the SYN would have set them, so that the ACK's window is taken.
    sender_.take_syn_window(Segment{.seq = ack_seg.seq - 1}, iss);
    sender_.on_sent(iss, 1, now_us);  // our SYN,ACK went, statelessly
    timing_.last_recv_us = now_us;
    state_ = State::syn_received;
    on_segment(ack_seg, now_us);  // the ACK completes the handshake, as if we had kept state
}

// RFC 9293 §3.10.7.3.
void Connection::on_segment_syn_sent(const Segment& seg, std::uint64_t now_us) {
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
        disarm(timing_.rtx);
        return enter(State::syn_received, now_us);
    }
    (void)sender_.on_new_ack(seg.ack);
    if (sender_.flight() > 0) sender_.rewind();  // RFC 7413 §4.2.1: the SYN's data that was not taken goes again now
    const auto sample = rtt_sampler_.on_ack(seg.ack, now_us);
    if (sample && !timing_.retransmits_in_row) take_rtt_sample(*sample);
    rtt_sampler_.forget();
    timing_.retransmits_in_row = 0;
    disarm(timing_.rtx);
    enter(State::established, now_us);
    Segment rest = seg;  // data in a SYN,ACK is text after the SYN (§3.10.7.3, sixth step)
    rest.seq = seg.seq + 1;
    process_text(rest);
}

// RFC 7413 §4.1.3 and §4.2.1: keep the cookie a SYN,ACK gives; see whether it took the
// data our SYN carried.
void Connection::on_fast_open_reply(const Segment& syn_ack) {
    const auto& offered = syn_ack.options->fast_open;
    if (options_.fast_open && offered && offered->size > 0)
        host_.remember_fast_open(route_.tuple.remote, {*offered, mss_.smss});
    if (tfo_.stage == FastOpen::data_sent) {
        tfo_.stage = syn_ack.ack > snd().iss + 1 ? FastOpen::data_acked : FastOpen::data_refused;
    }
}

bool Connection::emit_syn(std::uint64_t now_us, SegmentSink& sink) {
    OutSegment o = header(snd().iss, state_ == State::syn_received ? syn | ack : syn);
    o.options.mss = mss_.local;
    // RFC 7323 §2.2: offer scaling in a SYN; in a SYN,ACK only if the peer offered it.
    if (state_ == State::syn_sent || agreed_.window_scale) o.options.window_scale = rcv().wnd_shift;
    // RFC 2018 §2: offer SACK in a SYN; in a SYN,ACK only if the peer offered it.
    o.options.sack_permitted = options_.sack && (state_ == State::syn_sent || agreed_.sack);
    // RFC 3168 §6.1.1: ask for ECN in a SYN (ECE and CWR); agree in a SYN,ACK (ECE).
    if (state_ == State::syn_sent && options_.ecn) o.flags |= ece | cwr;
    if (state_ == State::syn_received && ecn_.on) o.flags |= ece;
    // RFC 7323 §3.2: offer timestamps in a SYN (TSecr 0); in a SYN,ACK only if the peer did.
    if (options_.timestamps && (state_ == State::syn_sent || agreed_.ts.enabled()))
        o.options.timestamps = agreed_.ts.stamp(now_us_);
    // RFC 7413 §4.1.1: the cookie, or an empty option asking for one.
    if (tfo_.cookie) o.options.fast_open = *tfo_.cookie;
    o.wnd = receiver_.syn_window(state_ == State::syn_received);
    o.payload = sender_.buffer().view(0, syn_data_len(o.options));
    const auto len = static_cast<std::uint32_t>(o.payload.size());
    if (!sink.emit(route_, o)) return false;
    if (len > 0) tfo_.stage = FastOpen::data_sent;
    stats_.bytes_out += len;
    after_send(snd().iss, 1 + len, now_us);
    return true;
}

// RFC 7413 §4.2.1: with a cookie, the first SYN carries what data is queued, as much as
// the server's MSS takes beside the options; a retransmitted SYN carries none (the data
// then waits for the handshake, as in Linux).
std::uint32_t Connection::syn_data_len(const wire::TcpOptions& options) const {
    if (state_ != State::syn_sent || !tfo_.cookie || tfo_.cookie->size == 0 || timing_.retransmits_in_row > 0) {
        return 0;
    }
    const std::size_t used = options.encoded_len();
    const std::size_t room = tfo_.mss > used ? tfo_.mss - used : 0;
    return static_cast<std::uint32_t>(std::min(room, sender_.buffer().size()));
}

}  // namespace ms::utcp
