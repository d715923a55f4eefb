// Connection, the path's part (path.hpp): ICMP errors that quote the connection's
// segments, and the MSS the path takes. The core of Connection is in connection.cpp.
#include <algorithm>

#include "utcp/connection.hpp"
#include "utcp/path.hpp"

namespace ms::utcp {

// RFC 5927 §4.1: only an error about a sequence number in flight counts; RFC 5461 §4:
// hard errors abort only a connection still opening, where no data was at stake.
bool Connection::on_icmp_error(const wire::IcmpError& e, std::uint64_t now_us) {
    now_us_ = now_us;
    const Seq32 seq(e.quoted.tcp_seq);
    if (state_ == State::closed || state_ == State::time_wait || !(seq >= snd().una && seq < snd().max)) return false;
    ++stats_.icmp_errors;
    if (e.kind == wire::IcmpErrorKind::packet_too_big) {
        if (const auto mss = mss_for_packet_too_big(e.mtu, tuple().local.family, std::min(mss_.smss, mss_.path))) {
            ++stats_.mss_lowered_by_icmp;
            lower_mss(*mss);
            host_.remember_path_mss(tuple().remote, *mss);
        }
        return true;
    }
    if (state_ == State::syn_sent && is_hard_error(e.kind)) {
        fail(error_for(e.kind));
        return true;
    }
    soft_error_ = error_for(e.kind);
    return true;
}

// Segments in flight that are larger than the path carries did not pass: they are lost,
// and go again cut to the new size at once, without a congestion response (the path
// lost them, not a queue), as Linux's tcp_simple_retransmit does.
void Connection::lower_mss(std::uint16_t mss) {
    mss_.path = mss;
    if (state_ == State::syn_sent || state_ == State::syn_received) return;  // the handshake takes the minimum
    mss_.smss = std::min(mss_.smss, mss);
    recovery_->on_mss_lowered(payload_room());
    if (recovery_->rewinds_on_rto()) sender_.rewind();
    wake();
}

// RFC 4821 §7.5: a probe goes with new data, when the connection is not recovering a
// loss, the window and congestion window take it whole, and data enough waits.
bool Connection::emit_mss_probe(std::uint64_t now_us, SegmentSink& sink) {
    const auto mss = mss_.search.next_probe();
    if (!mss || state_ != State::established || recovery_->in_recovery()) return true;
    const std::uint32_t len = payload_room() + (*mss - mss_.smss);
    const std::uint32_t cwnd_room = recovery_->send_room(ack_context(now_us), cc_->cwnd());
    if (sender_.queued() < len || std::min(sender_.window_room(), cwnd_room) < len) return true;
    const Seq32 start = snd().nxt;
    if (!emit_new_data(len, false, now_us, sink, len)) return false;
    mss_.search.probe_sent(start, start + len, *mss);
    return true;
}

void Connection::settle_mss_probe(bool timed_out) {
    const Seq32 start = mss_.search.probe_start();
    const Seq32 end = mss_.search.probe_end();
    if (!timed_out && snd().una >= end) {
        ++stats_.mss_probes_acked;
        mss_.smss = std::max(mss_.smss, mss_.search.probe_acked());
        return;
    }
    // Lost: deemed so, out when the RTO fired, or acknowledged in part (a part of it went
    // again, cut to the MSS, by a loss probe).
    const bool lost = timed_out || snd().una > start || recovery_->deemed_lost(start);
    if (!lost) return;  // still out
    ++stats_.mss_probes_lost;
    mss_.search.probe_lost();
    recovery_->on_mss_lowered(payload_room());  // its data goes again in segments of the MSS
    wake();
}

}  // namespace ms::utcp
