// Stack, TCP's demultiplexing and passive opens: segments to their connection (with
// trains of in-order data), listeners and their SYNs, SYN cookies (RFC 4987), Fast Open
// SYNs (RFC 7413), TIME_WAIT records (RFC 9293 §3.10.7.4, RFC 6191), resets for
// segments no one owns, and the challenge-ACK budget (RFC 5961 §7).
#include <algorithm>

#include "utcp/stack.hpp"
#include "wire/checksum.hpp"
#include "wire/ip.hpp"

namespace ms::utcp {

using namespace wire::tcpflag;

void Stack::input_tcp(const IpPacket& ip, std::uint64_t now_us) {
    auto tcp = wire::TcpView::parse(ip.l4);
    if (!tcp) return void(++stats_.malformed);
    if (!wire::transport_checksum_ok(ip.src, ip.dst, wire::ipproto::tcp, ip.l4)) return void(++stats_.bad_checksum);
    // RFC 9293 §3.5 (and RFC 1122 §4.2.2.15 spirit): SYN with FIN or RST is never valid.
    if (tcp->has(syn) && (tcp->has(fin) || tcp->has(rst))) return void(++stats_.malformed);
    ++stats_.tcp_segments_in;
    const Segment seg{.seq = Seq32(tcp->seq()),
                      .ack = Seq32(tcp->ack()),
                      .flags = tcp->flags(),
                      .wnd = tcp->window(),
                      .options = &tcp->options(),
                      .payload = tcp->payload(),
                      .ce = ip.ecn == wire::ecn::ce};
    const FourTuple t{ip.dst, ip.src, tcp->dst_port(), tcp->src_port()};
    if (continues_train(t, seg) && train_.conn->on_train_segment(seg, now_us)) {
        ++stats_.train_segments_in;
        train_.next = seg.seq + static_cast<std::uint32_t>(seg.payload.size());
        if (seg.has(psh)) train_.conn = nullptr;
        return;
    }
    train_.conn = nullptr;
    if (auto it = conns_.find(t); it != conns_.end()) {
        it->second->on_segment(seg, now_us);
        return start_train(*it->second, seg);
    }
    if (moved_.contains(t)) {
        if (!seg.has(syn) || seg.has(ack)) return void(++stats_.moved_away);
        moved_.erase(t);  // a new connection on the tuple
        release_port_if_free(t.local_port);
    }
    if (now_us < quiet_until_us_ && (!seg.has(syn) || seg.has(ack))) return void(++stats_.outage_quiet);
    std::optional<Seq32> reuse_iss;
    if (on_time_wait(t, seg, now_us, reuse_iss)) return;
    auto l = listeners_.find(t.local_port);
    if (l == listeners_.end()) {
        ++stats_.no_connection;
        const auto mac = next_hop(t.remote);
        if (mac) reply_rst({t, *mac}, seg);
        return;
    }
    const auto mac = next_hop(t.remote);
    if (!mac) return void(++stats_.no_route);
    on_listen(*l->second, {t, *mac}, seg, now_us, reuse_iss);
}

namespace {
// Segments a train may hold: data with an ACK and nothing else that TCP input acts on
// (no SYN, FIN, RST, URG, ECN signal or SACK blocks); PSH may end one.
bool plain_data(const Segment& seg) {
    return !seg.payload.empty() && (seg.flags & ~(ack | psh)) == 0 && seg.has(ack) && !seg.ce && seg.options->sack_count == 0;
}
}  // namespace

bool Stack::continues_train(const FourTuple& t, const Segment& seg) const {
    return train_.conn && seg.seq == train_.next && seg.ack == train_.ack && seg.wnd == train_.wnd && plain_data(seg) &&
           t == train_.conn->tuple() && *seg.options == train_.options;
}

void Stack::start_train(Connection& c, const Segment& seg) {
    const Seq32 end = seg.seq + static_cast<std::uint32_t>(seg.payload.size());
    if (!plain_data(seg) || seg.has(psh) || !c.in_order_through(end)) return;
    train_ = Train{&c, end, seg.ack, seg.wnd, *seg.options};
}

// RFC 9293 §3.10.7.2.
void Stack::on_listen(Listener& l, const Route& route, const Segment& seg, std::uint64_t now_us, std::optional<Seq32> iss) {
    if (seg.has(rst)) return;
    if (l.paused) return void(++stats_.listener_paused);  // the peer sends again, to another member
    if (seg.has(ack)) {
        if (accept_cookie(l, route, seg, now_us)) return;
        return reply_rst(route, seg);
    }
    if (!seg.has(syn)) return;
    if (l.half_open >= l.syn_queue) {
        ++stats_.syn_queue_full;
        if (config_.syn_cookies && l.accept_queue.size() < l.backlog) send_cookie(l, route, seg, now_us);
        return;
    }
    if (l.accept_queue.size() >= l.backlog) return void(++stats_.backlog_full);
    const ConnectResult made = create(route, l.options, l.handler);
    if (!made) return;
    Connection* c = *made;
    ++l.half_open;
    c->accepted_from = &l;
    c->open_passive(seg, iss ? *iss : config_.isn(route.tuple, now_us), now_us);
    if (l.options.fast_open && seg.options->fast_open) on_fast_open_syn(l, *c, seg);
}

// RFC 7413 §4.2.2: data in a SYN with a valid cookie goes to the application at once,
// while the listener's Fast Open queue has room; otherwise only the SYN is acknowledged
// (the client sends the data again after the handshake), and a request or an invalid
// cookie is answered with a valid one.
void Stack::on_fast_open_syn(Listener& l, Connection& c, const Segment& syn_seg) {
    const wire::FastOpenCookie& cookie = *syn_seg.options->fast_open;
    const FourTuple& t = c.tuple();
    const bool valid = fast_open_cookies_.valid(t.remote, t.local, cookie);
    if (cookie.size > 0 && !valid) ++stats_.fast_open_invalid;
    if (!valid) {
        c.offer_fast_open_cookie(fast_open_cookies_.make(t.remote, t.local));
        ++stats_.fast_open_cookies_sent;
        return;
    }
    if (l.fast_open_pending >= l.fast_open_queue) return void(++stats_.fast_open_queue_full);
    ++l.fast_open_pending;
    c.fast_open_from = &l;
    ++stats_.fast_open_accepted;
    c.accept_syn_data(syn_seg);
}

// The options survive a cookie only in the timestamp's low bits (syn_cookie.hpp).
void Stack::send_cookie(Listener& l, const Route& route, const Segment& request, std::uint64_t now_us) {
    const wire::TcpOptions& o = *request.options;
    const auto mss = static_cast<std::uint16_t>(
        std::min<std::uint32_t>(o.mss.value_or(536), local_mss(route.tuple.local.family)));
    const Seq32 iss = cookies_.make(route.tuple, request.seq, mss, now_us);
    const std::size_t buffer = std::bit_ceil(std::size_t{l.options.recv_buffer});  // as the RecvBuffer rounds it
    OutSegment out{.seq = iss,
                   .ack = request.seq + 1,
                   .flags = static_cast<std::uint8_t>(syn | ack),
                   .wnd = static_cast<std::uint16_t>(std::min<std::size_t>(buffer, 0xffff))};
    out.options.mss = local_mss(route.tuple.local.family);
    out.marks.dscp = l.options.marks.dscp;
    if (l.options.timestamps && o.timestamps) {
        CookieOptions kept{.mss = mss,
                           .window_scale = o.window_scale,
                           .sack = l.options.sack && o.sack_permitted,
                           .ecn = l.options.ecn && request.has(ece) && request.has(cwr)};
        if (kept.window_scale) out.options.window_scale = window_shift_for(buffer);
        out.options.sack_permitted = kept.sack;
        if (kept.ecn) out.flags |= ece;
        // Our TSval clock for the connection: milliseconds plus its ISS (connection.cpp).
        const auto tsval = static_cast<std::uint32_t>(ms_from_us(now_us)) + iss.value();
        out.options.timestamps = wire::Timestamps{SynCookies::encode_options(tsval, kept), o.timestamps->value};
    }
    l.last_cookie_us = now_us;
    ++stats_.syn_cookies_sent;
    (void)emit(route, out);
}

bool Stack::accept_cookie(Listener& l, const Route& route, const Segment& seg, std::uint64_t now_us) {
    if (!l.last_cookie_us || now_us - *l.last_cookie_us > us_from_ms(SynCookies::kTickMs) * SynCookies::kTicksValid) {
        return false;  // no cookie went lately: no ACK can return one
    }
    const auto mss = cookies_.check(route.tuple, seg.seq - 1, seg.ack - 1, now_us);
    if (!mss) {
        ++stats_.syn_cookies_rejected;
        return false;
    }
    if (l.accept_queue.size() >= l.backlog) {
        ++stats_.backlog_full;
        return true;
    }
    PeerSynOptions peer{.mss = *mss};
    if (l.options.timestamps && seg.options && seg.options->timestamps) {
        const CookieOptions kept = SynCookies::decode_options(seg.options->timestamps->echo_reply, *mss);
        peer.window_scale = kept.window_scale;
        peer.sack = kept.sack;
        peer.ecn = kept.ecn;
        peer.tsval = seg.options->timestamps->value;
    }
    const ConnectResult made = create(route, l.options, l.handler);
    if (!made) return true;
    Connection& c = **made;
    ++l.half_open;
    c.accepted_from = &l;
    ++stats_.syn_cookies_accepted;
    c.open_from_cookie(seg, seg.ack - 1, peer, now_us);
    return true;
}

// RFC 6191 §2: may a SYN reopen the 4-tuple that `r` holds in TIME_WAIT? With timestamps
// on both incarnations the SYN's TSval decides (greater, or equal with a greater
// sequence number), so a client may reuse its port with any ISN; without them, only a
// sequence number above the old connection's (RFC 1122 §4.2.2.13).
bool Stack::may_reopen(const TimeWaitRecord& r, const Segment& syn_seg, const ConnOptions& listener) const {
    const auto& ts = syn_seg.options ? syn_seg.options->timestamps : std::nullopt;
    if (r.ts_recent && ts && listener.timestamps) {
        const auto newer = static_cast<std::int32_t>(ts->value - *r.ts_recent);
        return newer > 0 || (newer == 0 && syn_seg.seq > r.rcv_nxt);
    }
    return syn_seg.seq > r.rcv_nxt;
}

// TIME_WAIT (RFC 9293 §3.10.7.4, RFC 1337, RFC 1122 §4.2.2.13, RFC 6191). Returns true if
// the record consumed the segment; false if there is no record, or if a new SYN may reuse
// the 4-tuple, in which case `reuse_iss` is the ISS to use.
bool Stack::on_time_wait(const FourTuple& t, const Segment& seg, std::uint64_t now_us, std::optional<Seq32>& reuse_iss) {
    TimeWaitRecord* r = time_wait_.find(t);
    if (!r) return false;
    if (seg.has(rst)) return true;  // RFC 1337: ignore, so that TIME_WAIT cannot be assassinated
    const auto listener = listeners_.find(t.local_port);
    if (seg.has(syn) && !seg.has(ack) && listener != listeners_.end() && may_reopen(*r, seg, listener->second->options)) {
        // Our ISS starts above everything the old connection sent (RFC 6191 §2), and so
        // does our TSval clock, which counts from the ISS.
        const Seq32 candidate = config_.isn(t, now_us);
        reuse_iss = candidate > r->snd_nxt + 65536 ? candidate : r->snd_nxt + 65536 * 2;
        time_wait_.erase(t);
        ++stats_.time_wait_reused;
        --port_users_[t.local_port];
        return false;
    }
    if (seg.has(fin)) time_wait_.restart(t, now_us);
    // Anything else (a retransmitted FIN, an old SYN, data) is answered with our ACK: for
    // a SYN that is RFC 5961 §4's challenge ACK, as Linux sends, rather than RFC 6191's
    // silent drop, so that a peer which lost our last ACK learns the old connection's state.
    if (seg.has(fin) || seg.has(syn) || !seg.payload.empty()) {
        OutSegment o{.seq = r->snd_nxt, .ack = r->rcv_nxt, .flags = ack, .wnd = r->wnd};
        ++stats_.time_wait_acks;
        emit({t, r->next_hop}, o);
    }
    return true;
}

Listener* Stack::listen(std::uint16_t port, Handler* handler, const ConnOptions* options) {
    auto [it, fresh] = listeners_.try_emplace(port, nullptr);
    if (!fresh) return nullptr;
    it->second = std::make_unique<Listener>();
    it->second->port = port;
    it->second->handler = handler;
    it->second->options = options ? *options : config_.defaults;
    return it->second.get();
}

// Connections the listener has not handed over yet go with it: those still in the
// handshake, and (raw API) those waiting in its accept queue, with a RST as in Linux.
void Stack::unlisten(std::uint16_t port) {
    auto it = listeners_.find(port);
    if (it == listeners_.end()) return;
    Listener* l = it->second.get();
    for (auto& [t, c] : conns_) {
        if (c->fast_open_from == l) c->fast_open_from = nullptr;
        const bool queued = std::find(l->accept_queue.begin(), l->accept_queue.end(), c.get()) != l->accept_queue.end();
        if (c->accepted_from != l && !queued) continue;
        c->accepted_from = nullptr;
        c->handler = nullptr;  // never announced: nobody to tell
        c->abort();
    }
    listeners_.erase(it);
}

Connection* Stack::accept(Listener& l) {
    if (l.accept_queue.empty()) return nullptr;
    Connection* c = l.accept_queue.front();
    l.accept_queue.pop_front();
    return c;
}

bool Stack::challenge_ack_allowed(std::uint64_t now_us) {
    if (now_us - challenge_window_start_ >= us_from_ms(1000)) {
        challenge_window_start_ = now_us;
        challenge_acks_ = 0;
    }
    if (challenge_acks_ >= config_.challenge_acks_per_second) {
        ++stats_.challenge_acks_limited;
        return false;
    }
    ++challenge_acks_;
    return true;
}

// RFC 9293 §3.10.7.1: <SEQ=SEG.ACK><CTL=RST> for a segment with ACK, else
// <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>. Never in answer to a RST.
void Stack::reply_rst(const Route& route, const Segment& seg) {
    if (seg.has(rst)) return;
    OutSegment o;
    if (seg.has(ack)) {
        o.seq = seg.ack;
        o.flags = rst;
    } else {
        o.seq = Seq32(0);
        o.ack = seg.seq + seg.len();
        o.flags = rst | ack;
    }
    emit(route, o);
}

}  // namespace ms::utcp
