// Connection, the output part: what output() emits through the SegmentSink (new data as
// segments or super-segments, retransmissions, loss probes, ACKs, RST and probes), and
// the header every segment carries.
#include <algorithm>
#include <utility>

#include "utcp/connection.hpp"
#include "wire/ip.hpp"
#include "wire/segmentation.hpp"

namespace ms::utcp {

using namespace wire::tcpflag;

namespace {

// RFC 7323 §3.2: the option and its two NOPs.
constexpr std::uint32_t kTimestampOptionBytes = 12;

}  // namespace

// Output

bool Connection::output(std::uint64_t now_us, SegmentSink& sink) {
    now_us_ = now_us;
    if (due_.rst) return emit_rst(sink);
    if (state_ == State::closed) return true;
    if (state_ == State::time_wait) return !receiver_.ack_due() || emit_ack(sink);
    if (state_ == State::syn_sent || (state_ == State::syn_received && snd().una == snd().iss)) {
        if (snd().nxt == snd().iss || (state_ == State::syn_received && receiver_.ack_due())) {
            if (!emit_syn(now_us, sink)) return false;
        }
        // RFC 7413 §4.2.2: a Fast Open server may send data before the handshake completes.
        if (tfo_.stage != FastOpen::data_accepted) {
            arm_timers(now_us);
            return true;
        }
    }
    bool sent = false;
    if ((due_.probe || due_.keepalive) && !emit_probe(now_us, sink)) return false;
    if (due_.loss_probe && !emit_loss_probe(now_us, sink)) return false;
    if (!emit_ack_points(sink) || !emit_dup_acks(sink)) return false;
    if (!emit_data(now_us, sink, sent)) return false;
    if (!sent && (receiver_.ack_due() || window_update_due()) && !emit_ack(sink)) return false;
    if (receiver_.ack_delayed() && !timing_.delack.pending()) {
        arm(timing_.delack, now_us + us_from_ms(options_.delayed_ack_ms));  // RFC 1122 §4.2.3.2
    }
    arm_timers(now_us);
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
    o.wnd = receiver_.advertise_window(app_.user_closed);
    o.marks = options_.marks;
    if (o.flags & ack) agreed_.last_ack_sent = o.ack;
    if (ecn_.on && ecn_.ece_due && (o.flags & ack) && !(o.flags & syn)) o.flags |= ece;  // RFC 3168 §6.1.3
    if (agreed_.ts.enabled() && !(o.flags & rst)) o.options.timestamps = agreed_.ts.stamp(now_us_);  // RFC 7323 §3.2
    const bool report = (o.flags & ack) && sacks == Sacks::report;
    if (report) receiver_.fill_sack(o.options, max_sack_blocks());
    receiver_.on_ack_sent(report);
    disarm(timing_.delack);
    return o;
}

bool Connection::emit_data(std::uint64_t now_us, SegmentSink& sink, bool& sent) {
    pacer_.set_rate(pacing_rate());
    for (;;) {
        if (pacer_.holds(now_us)) {
            if (timing_.pace.deadline() != pacer_.next_departure() || !timing_.pace.pending()) {
                arm(timing_.pace, pacer_.next_departure());
            }
            return true;
        }
        const AckContext ctx = ack_context(now_us);
        if (const auto resend = recovery_->next_resend(ctx, cc_->cwnd())) {
            if (!emit_resend(*resend, now_us, sink)) return false;
            sent = true;
            continue;
        }
        if (!emit_mss_probe(now_us, sink)) return false;
        bool with_fin = false;
        const std::uint32_t burst = pacer_.burst_limit(payload_room(), emission_room());
        const std::uint32_t len = sender_.len_to_send(recovery_->send_room(ctx, cc_->cwnd()), payload_room(), burst,
                                                      options_.nodelay, std::exchange(due_.force_send, false), with_fin);
        if (len == 0 && !with_fin) {
            if (!sender_.unsent() && flight() < cc_->cwnd()) recovery_->on_app_limited();
            return true;
        }
        if (!emit_new_data(len, with_fin, now_us, sink)) return false;
        sent = true;
    }
}

bool Connection::emit_new_data(std::uint32_t len, bool with_fin, std::uint64_t now_us, SegmentSink& sink,
                               std::uint32_t segment_len) {
    // RFC 5681 §4.1: after an idle period, restart from the initial window.
    if (flight() == 0 && now_us - sender_.last_send_us() > rtt_.rto()) cc_->on_idle_restart(ack_context(now_us).sample(0));
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
    o.ect = ecn_.on && len > 0 && seq >= snd().max;  // a go-back-N resend after an RTO is not new
    if (o.ect && std::exchange(ecn_.cwr_due, false)) o.flags |= cwr;
    if (!sink.emit(route_, o)) return false;
    pacer_.on_sent(len, std::max<std::uint32_t>(1, (len + segment_len - 1) / segment_len), now_us);
    if (with_fin) sender_.fin_sent_at(seq + len);
    if (seq >= snd().max) stats_.bytes_out += len;  // new data, not a go-back-N resend
    // Recovery and RTT sampling see the segments on the wire, not the super-segment.
    std::uint32_t done = 0;
    do {
        const std::uint32_t piece = std::min(len - done, segment_len);
        const bool last_piece = done + piece == len;
        after_send(seq + done, piece + (with_fin && last_piece ? 1 : 0), now_us);
        done += piece;
    } while (done < len);
    return true;
}

// One segment again from `r.seq`: fast retransmit, a partial ACK's next hole, a segment
// RACK deems lost, or a loss probe.
bool Connection::emit_resend(const Resend& r, std::uint64_t now_us, SegmentSink& sink) {
    const SendBuffer& buf = sender_.buffer();
    const std::size_t offset = sender_.data_offset(r.seq);
    const std::size_t available = offset <= buf.size() ? buf.size() - offset : 0;
    const SplitBytes payload = buf.view(offset, std::min<std::size_t>({payload_room(), available, r.max_len}));
    const auto len = static_cast<std::uint32_t>(payload.size());
    const bool with_fin = sender_.fin_seq() && offset + len == buf.size() && r.max_len > len;
    OutSegment o = header(r.seq, with_fin ? fin : 0);
    o.payload = payload;
    if (!sink.emit(route_, o)) return false;
    pacer_.on_sent(len, 1, now_us);
    // Recorded even if empty, so that recovery never offers the same resend forever.
    if (len == 0 && !with_fin) recovery_->on_sent(r.seq, r.max_len, now_us);
    after_send(r.seq, len + (with_fin ? 1 : 0), now_us);
    return true;
}

// RFC 8985 §7.3: the probe carries new data if the peer's window takes it, else the
// last segment again; in recovery it resends the first segment not delivered (recovery.cpp).
// Either way the next timer is the RTO.
bool Connection::emit_loss_probe(std::uint64_t now_us, SegmentSink& sink) {
    bool with_fin = false;
    const std::uint32_t len = sender_.len_to_send(UINT32_MAX, payload_room(), payload_room(), true, true, with_fin);
    if (!recovery_->in_recovery() && (len > 0 || with_fin)) {
        if (!emit_new_data(len, with_fin, now_us, sink)) return false;
    } else if (const auto last = recovery_->probe_segment()) {
        if (!emit_resend(*last, now_us, sink)) return false;
    }
    due_.loss_probe = false;
    recovery_->on_probe_sent();
    return true;
}

// The algorithm's own rate; else, with ConnOptions::pacing, Linux's for a window-based one
// (tcp_update_pacing_rate): cwnd per SRTT, doubled in slow start, 1.2 times after.
std::uint64_t Connection::pacing_rate() const {
    if (const std::uint64_t own = cc_->pacing_rate()) return own;
    if (!options_.pacing || !rtt_.has_sample()) return 0;
    const std::uint64_t per_srtt = std::uint64_t{cc_->cwnd()} * 1'000'000 / std::max<std::uint32_t>(rtt_.srtt(), 1);
    return cc_->cwnd() < cc_->ssthresh() ? 2 * per_srtt : per_srtt * 6 / 5;
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
    const std::uint32_t options = (agreed_.ts.enabled() ? kTimestampOptionBytes : 0) +
                                  static_cast<std::uint32_t>(blocks ? 4 + 8 * blocks : 0);
    return mss_.smss - options;
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
    due_.rst = false;
    return true;
}

// A zero-window probe carries one octet at SND.UNA (RFC 9293 §3.8.6.1); a keepalive
// carries SND.UNA - 1 and no data, so the peer answers with an ACK (RFC 1122 §4.2.3.6).
bool Connection::emit_probe(std::uint64_t now_us, SegmentSink& sink) {
    if (due_.keepalive) {
        if (!sink.emit(route_, header(snd().una - 1, 0))) return false;
        due_.keepalive = false;
    }
    if (due_.probe) {
        const SendBuffer& buf = sender_.buffer();
        const std::uint32_t len = buf.size() > 0 ? 1 : 0;
        const bool with_fin = len == 0 && sender_.fin_queued();
        OutSegment o = header(snd().una, with_fin ? fin : 0);
        o.payload = buf.view(0, len);
        if (!sink.emit(route_, o)) return false;
        due_.probe = false;
        sender_.probe_sent(len > 0);
        if (with_fin && !sender_.fin_seq()) sender_.fin_sent_at(snd().una);
        after_send(snd().una, len + (with_fin ? 1 : 0), now_us);
    }
    return true;
}

void Connection::after_send(Seq32 seq, std::uint32_t len, std::uint64_t now_us) {
    ++stats_.segments_out;
    const bool resent = len > 0 && seq < snd().max;
    if (resent) ++stats_.retransmits;
    rtt_sampler_.on_send(seq, len, resent, now_us);
    if (len > 0 && seq != snd().iss) recovery_->on_sent(seq, len, now_us);  // the SYN is not data
    sender_.on_sent(seq, len, now_us);
}

}  // namespace ms::utcp
