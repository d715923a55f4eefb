// Contract: a connection written out of its stack and taken up by another
// (connection_image.hpp): Connection::write_image, restore and detach.
#include <algorithm>

#include "utcp/connection.hpp"
#include "utcp/connection_image.hpp"

namespace ms::utcp {

namespace {

std::vector<std::uint8_t> joined(const SplitBytes& b) {
    std::vector<std::uint8_t> out(b.first.begin(), b.first.end());
    out.insert(out.end(), b.second.begin(), b.second.end());
    return out;
}

}  // namespace

base::Result<ConnectionImage, ImageError> Connection::write_image() const {
    // A handshake, a FIN of ours queued or sent, or a closed connection stays.
    const bool movable_state = state_ == State::established || state_ == State::close_wait;
    if (!movable_state || app_.write_closed || snd().una == snd().iss) return ImageError::not_movable;
    const SendVars& s = snd();
    const RecvVars& r = rcv();
    ConnectionImage im{.tuple = tuple(),
                       .state = state_,
                       .iss = s.iss.value(),
                       .snd_una = s.una.value(),
                       .snd_max = s.max.value(),
                       .snd_wnd = s.wnd,
                       .snd_wl1 = s.wl1.value(),
                       .snd_wl2 = s.wl2.value(),
                       .snd_max_wnd = s.max_wnd,
                       .irs = r.irs.value(),
                       .rcv_nxt = r.nxt.value(),
                       .rcv_adv_edge = r.adv_edge.value(),
                       .snd_shift = s.wnd_shift,
                       .rcv_shift = r.wnd_shift,
                       .window_scale = agreed_.window_scale,
                       .fin_received = receiver_.fin_received(),
                       .mss_local = mss_.local,
                       .smss = mss_.smss,
                       .mss_path = mss_.path,
                       .sack = agreed_.sack,
                       .timestamps = agreed_.ts.enabled(),
                       .ts_offset = agreed_.ts.offset(),
                       .ts_recent = agreed_.ts.recent().value_or(0),
                       .last_ack_sent = agreed_.last_ack_sent.value(),
                       .ecn = ecn_.on,
                       .has_rtt = rtt_.has_sample(),
                       .srtt8 = rtt_.srtt8(),
                       .rttvar4 = rtt_.rttvar4(),
                       .cwnd = cc_->cwnd(),
                       .ssthresh = cc_->ssthresh(),
                       .nodelay = options_.nodelay,
                       .keepalive = options_.keepalive,
                       .min_rto_ms = options_.min_rto_ms,
                       .max_rto_ms = options_.max_rto_ms,
                       .delayed_ack_ms = options_.delayed_ack_ms,
                       .keepalive_idle_ms = options_.keepalive_idle_ms,
                       .keepalive_interval_ms = options_.keepalive_interval_ms,
                       .keepalive_probes = options_.keepalive_probes,
                       .send_buffer = static_cast<std::uint32_t>(sender_.buffer().capacity()),
                       .recv_buffer = static_cast<std::uint32_t>(receiver_.buffer().capacity()),
                       .congestion = std::string(cc_->name()),
                       .unacknowledged = joined(sender_.buffer().view(0, sender_.buffer().size())),
                       .readable = joined(receiver_.buffer().peek()),
                       .out_of_order = {}};
    for (const auto& [begin, end] : receiver_.buffer().ranges()) {
        im.out_of_order.push_back({static_cast<std::uint32_t>(begin), joined(receiver_.buffer().out_of_order(begin, end))});
    }
    return im;
}

// The image was checked (decode); the connection is fresh, made on the image's route
// with options from it (Stack::import_connection).
void Connection::restore(const ConnectionImage& im, std::uint64_t now_us) {
    now_us_ = now_us;
    mss_.local = im.mss_local;
    mss_.smss = im.smss;
    mss_.path = im.mss_path;
    agreed_.window_scale = im.window_scale;
    agreed_.sack = im.sack;
    agreed_.ts.resume(im.ts_offset, im.timestamps, im.ts_recent);
    agreed_.last_ack_sent = Seq32(im.last_ack_sent);
    ecn_.on = im.ecn;
    ecn_.recover = Seq32(im.snd_una);
    sender_.resume({.una = Seq32(im.snd_una),
                    .nxt = Seq32(im.snd_una),
                    .max = Seq32(im.snd_max),
                    .wnd = im.snd_wnd,
                    .wl1 = Seq32(im.snd_wl1),
                    .wl2 = Seq32(im.snd_wl2),
                    .iss = Seq32(im.iss),
                    .wnd_shift = im.snd_shift,
                    .max_wnd = im.snd_max_wnd});
    (void)sender_.buffer().append(im.unacknowledged);
    receiver_.resume(Seq32(im.irs), Seq32(im.rcv_nxt), Seq32(im.rcv_adv_edge), im.fin_received);
    receiver_.set_window_shift(im.rcv_shift);
    receiver_.use_sack(im.sack);
    (void)receiver_.buffer().insert(0, im.readable);
    for (const ImageRange& r : im.out_of_order) (void)receiver_.buffer().insert(r.offset, r.bytes);
    cc_ = make_congestion(im.congestion);
    cc_->resume(im.cwnd, im.ssthresh);
    recovery_ = make_loss_recovery(im.sack);
    recovery_->start(Seq32(im.snd_una));
    if (im.has_rtt) rtt_.resume(im.srtt8, im.rttvar4);
    app_.announced = true;
    timing_.last_recv_us = now_us;
    state_ = im.state;
    app_.events |= event::writable;
    if (readable() > 0) app_.events |= event::readable;
    if (im.fin_received) app_.events |= event::peer_closed;
    if (options_.keepalive) arm(timing_.idle, now_us + us_from_ms(options_.keepalive_idle_ms));
    receiver_.owe_ack();  // the peer learns the window at once, and its ACK rebuilds the rest
    wake();
}

void Connection::detach() {
    for (ConnTimer* t : {&timing_.rtx, &timing_.delack, &timing_.idle}) disarm(*t);
    dirty = false;
}

}  // namespace ms::utcp
