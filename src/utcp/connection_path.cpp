// Connection, the path's part (path.hpp): ICMP errors that quote the connection's
// segments, and the MSS the path takes. The rest of Connection is in connection.cpp.
#include <algorithm>

#include "utcp/connection.hpp"
#include "utcp/path.hpp"

namespace ms::utcp {

// RFC 5927 §4.1: only an error about a sequence number in flight counts; RFC 5461 §4:
// hard errors abort only a connection still opening, where no data was at stake.
bool Connection::on_icmp_error(const wire::IcmpError& e, std::uint64_t now_ms) {
    now_ms_ = now_ms;
    const Seq32 seq(e.quoted.tcp_seq);
    if (state_ == State::closed || state_ == State::time_wait || !(seq >= snd().una && seq < snd().max)) return false;
    ++stats_.icmp_errors;
    if (e.kind == wire::IcmpErrorKind::packet_too_big) {
        if (const auto mss = mss_for_packet_too_big(e.mtu, tuple().local.family, std::min(smss_, path_mss_))) {
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
    path_mss_ = mss;
    if (state_ == State::syn_sent || state_ == State::syn_received) return;  // the handshake takes the minimum
    smss_ = std::min(smss_, mss);
    recovery_->on_mss_lowered(payload_room());
    if (recovery_->rewinds_on_rto()) sender_.rewind();
    wake();
}

}  // namespace ms::utcp
