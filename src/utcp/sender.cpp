#include "utcp/sender.hpp"

#include <algorithm>
#include <utility>

namespace ms::utcp {

void Sender::start(Seq32 iss) { vars_.iss = vars_.una = vars_.nxt = vars_.max = iss; }

void Sender::take_syn_window(const Segment& syn, Seq32 wl2) {
    vars_.wnd = vars_.max_wnd = syn.wnd;
    vars_.wl1 = syn.seq;
    vars_.wl2 = wl2;
}

Acked Sender::on_new_ack(Seq32 ack) {
    Acked out;
    out.bytes = static_cast<std::uint32_t>(ack - vars_.una);
    out.fin = fin_seq_ && ack > *fin_seq_;
    const std::uint32_t data = out.bytes - syn_in_flight() - (out.fin ? 1 : 0);
    buf_.consume(std::min<std::size_t>(data, buf_.size()));
    vars_.una = ack;
    if (vars_.nxt < vars_.una) vars_.nxt = vars_.una;  // after an RTO rewound it
    return out;
}

// Two segments with the same SEQ and ACK cannot be ordered, so a reordered old one could
// shrink the window for good; as Linux does (tcp_may_update_window), such a segment may
// only grow it, or close it: RFC 9293 asks for every update with SND.WL1 = SEG.SEQ and
// SND.WL2 =< SEG.ACK, and a zero window is never stale news worth ignoring (sending into
// it wastes segments the peer must drop).
WindowUpdate Sender::update_window(const Segment& seg) {
    const std::uint32_t wnd = std::uint32_t{seg.wnd} << vars_.wnd_shift;
    const bool newer = vars_.wl1 < seg.seq || (vars_.wl1 == seg.seq && vars_.wl2 < seg.ack);
    const bool same = vars_.wl1 == seg.seq && vars_.wl2 == seg.ack;
    if (!newer && !(same && (wnd >= vars_.wnd || wnd == 0))) return {};
    const WindowUpdate out{true, wnd > vars_.wnd};
    vars_.wnd = wnd;
    vars_.max_wnd = std::max(vars_.max_wnd, wnd);
    vars_.wl1 = seg.seq;
    vars_.wl2 = seg.ack;
    return out;
}

void Sender::window_opened() {
    if (std::exchange(probe_outstanding_, false)) vars_.nxt = vars_.una;
}

void Sender::on_sent(Seq32 seq, std::uint32_t len, std::uint64_t now_us) {
    const Seq32 end = seq + len;
    if (end > vars_.nxt) vars_.nxt = end;
    vars_.max = Seq32::max(vars_.max, vars_.nxt);
    if (len > 0) last_send_us_ = now_us;
}

// RFC 9293 §3.8.6.2.1 and RFC 1122 §4.2.3.4.
std::uint32_t Sender::len_to_send(std::uint32_t cwnd_room, std::uint32_t smss, std::uint32_t max_len, bool nodelay,
                                  bool force, bool& with_fin) const {
    with_fin = false;
    if (fin_seq_ && vars_.nxt > *fin_seq_) return 0;  // our FIN is out: nothing follows it
    const std::uint32_t data_in_flight = flight() - syn_in_flight();  // a Fast Open server's SYN,ACK may be out
    const std::size_t queued = this->queued();
    const std::uint32_t usable = std::min(window_room(), cwnd_room);
    const auto len = static_cast<std::uint32_t>(std::min<std::size_t>({queued, usable, std::max(max_len, smss)}));
    const bool all_queued = len == queued;
    with_fin = fin_queued_ && all_queued;
    const bool tail_may_go = all_queued && (nodelay || data_in_flight == 0 || fin_queued_);
    if (len > smss) {
        if (len % smss == 0 || tail_may_go || vars_.nxt < vars_.max || force) return len;
        with_fin = false;
        return len / smss * smss;  // the whole segments; the tail waits as a small segment would
    }
    if (len == smss || vars_.nxt < vars_.max || force) return len;  // full, resending after an RTO, or forced
    if (tail_may_go) return len;
    if (len > 0 && len >= vars_.max_wnd / 2) return len;
    with_fin = false;
    return 0;
}

}  // namespace ms::utcp
