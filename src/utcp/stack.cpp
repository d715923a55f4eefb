#include "utcp/stack.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <random>

#include "utcp/path.hpp"
#include "wire/build.hpp"
#include "wire/icmp.hpp"

namespace ms::utcp {

using namespace wire::tcpflag;

struct Stack::IpPacket {
    wire::IpAddr src;
    wire::IpAddr dst;
    wire::Bytes l4;
    std::uint8_t ecn = 0;  // the IP header's ECN field
};

Stack::Stack(StackConfig config, Link& link, std::uint64_t now_ms)
    : config_(std::move(config)),
      link_(link),
      wheel_(now_ms),
      time_wait_(config_.time_wait_ms),
      flow_label_key_((std::uint64_t{std::random_device{}()} << 32) | std::random_device{}()),
      now_ms_(now_ms) {
    if (!config_.isn) config_.isn = IsnGenerator();
    dirty_.reserve(1024);
    work_.reserve(1024);
}

Stack::~Stack() {
    // Connections own timers linked into wheel_: destroy them while it exists.
    conns_.clear();
}

std::uint16_t Stack::local_mss(wire::IpFamily family) const {
    return static_cast<std::uint16_t>(config_.mtu - headers_of(family));
}

std::optional<wire::IpAddr> Stack::local_address(wire::IpFamily family) const {
    if (family == wire::IpFamily::v6) return config_.address6;
    if (config_.address.is_any()) return std::nullopt;
    return config_.address;
}

// ---------------------------------------------------------------------------------------
// Input

void Stack::input(wire::Bytes frame, std::uint64_t now_ms) {
    now_ms_ = now_ms;
    ++stats_.frames_in;
    // Each layer is parsed once, by the view that the next step uses.
    auto eth = wire::EthernetView::parse(frame);
    if (!eth) return void(++stats_.malformed);
    if (eth->ethertype() == wire::ethertype::ipv4) return input_ipv4(eth->payload(), now_ms);
    if (eth->ethertype() == wire::ethertype::ipv6) return input_ipv6(eth->payload(), now_ms);
    ++stats_.not_ip;
}

void Stack::input_ipv4(wire::Bytes packet, std::uint64_t now_ms) {
    auto ip = wire::Ipv4View::parse(packet);
    if (!ip) return void(++stats_.malformed);
    if (!ip->checksum_ok()) return void(++stats_.bad_checksum);
    if (ip->is_fragment()) return void(++stats_.fragments);
    if (!(ip->dst() == config_.address)) return void(++stats_.not_our_address);
    const IpPacket p{ip->src(), ip->dst(), ip->payload(), static_cast<std::uint8_t>(ip->dscp_ecn() & wire::ecn::mask)};
    input_transport(ip->protocol(), p, now_ms);
}

// RFC 8200: the extension headers are walked (Ipv6View); a fragment is dropped as in IPv4.
void Stack::input_ipv6(wire::Bytes packet, std::uint64_t now_ms) {
    auto ip = wire::Ipv6View::parse(packet);
    if (!ip) return void(++stats_.malformed);
    if (ip->is_fragment()) return void(++stats_.fragments);
    if (!config_.address6 || !(ip->dst() == *config_.address6)) return void(++stats_.not_our_address);
    const IpPacket p{ip->src(), ip->dst(), ip->upper_payload(), static_cast<std::uint8_t>(ip->traffic_class() & wire::ecn::mask)};
    input_transport(ip->upper_protocol(), p, now_ms);
}

void Stack::input_transport(std::uint8_t protocol, const IpPacket& ip, std::uint64_t now_ms) {
    if (protocol == wire::ipproto::tcp) return input_tcp(ip, now_ms);
    if (protocol == wire::ipproto::udp) return input_udp(ip);
    if (protocol == wire::ipproto::icmp && ip.src.family == wire::IpFamily::v4) return input_icmp(ip, now_ms);
    if (protocol == wire::ipproto::icmpv6 && ip.src.family == wire::IpFamily::v6) return input_icmp(ip, now_ms);
    ++stats_.malformed;
}

void Stack::input_icmp(const IpPacket& ip, std::uint64_t now_ms) {
    ++stats_.icmp_in;
    if (ip.src.family == wire::IpFamily::v6) {
        if (ip.l4.size() < wire::kIcmpHeaderLen) return void(++stats_.malformed);
        if (!wire::icmpv6_checksum_ok(ip.src, ip.dst, ip.l4)) return void(++stats_.bad_checksum);
        return input_icmp_error(wire::parse_icmpv6_error(ip.l4), now_ms);
    }
    const auto message = wire::IcmpV4View::parse(ip.l4);
    if (!message) return void(++stats_.malformed);
    if (!message->checksum_ok()) return void(++stats_.bad_checksum);
    input_icmp_error(wire::parse_icmp_error(ip.l4), now_ms);
}

void Stack::input_icmp_error(const wire::Result<wire::IcmpError>& error, std::uint64_t now_ms) {
    if (!error || error->quoted.protocol != wire::ipproto::tcp || local_address(error->quoted.src.family) != error->quoted.src) {
        return void(++stats_.icmp_ignored);
    }
    const wire::QuotedPacket& q = error->quoted;
    Connection* c = find(FourTuple{q.src, q.dst, q.src_port, q.dst_port});
    if (!c) return void(++stats_.icmp_no_connection);
    train_.conn = nullptr;
    if (!c->on_icmp_error(*error, now_ms)) ++stats_.icmp_out_of_window;
}

void Stack::input_tcp(const IpPacket& ip, std::uint64_t now_ms) {
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
    if (continues_train(t, seg) && train_.conn->on_train_segment(seg, now_ms)) {
        ++stats_.train_segments_in;
        train_.next = seg.seq + static_cast<std::uint32_t>(seg.payload.size());
        if (seg.has(psh)) train_.conn = nullptr;
        return;
    }
    train_.conn = nullptr;
    if (auto it = conns_.find(t); it != conns_.end()) {
        it->second->on_segment(seg, now_ms);
        return start_train(*it->second, seg);
    }
    std::optional<Seq32> reuse_iss;
    if (on_time_wait(t, seg, now_ms, reuse_iss)) return;
    auto l = listeners_.find(t.local_port);
    if (l == listeners_.end()) {
        ++stats_.no_connection;
        const auto mac = next_hop(t.remote);
        if (mac) reply_rst({t, *mac}, seg);
        return;
    }
    const auto mac = next_hop(t.remote);
    if (!mac) return void(++stats_.no_route);
    on_listen(*l->second, {t, *mac}, seg, now_ms, reuse_iss);
}

namespace {
// Segments a train may hold: data with an ACK and nothing else that TCP input acts on
// (no SYN, FIN, RST, URG, ECN signal or SACK blocks); PSH may end one.
bool plain_data(const Segment& seg) {
    return !seg.payload.empty() && (seg.flags & ~(ack | psh)) == 0 && seg.has(ack) && !seg.ce &&
           seg.options->sack_count == 0;
}
}  // namespace

bool Stack::continues_train(const FourTuple& t, const Segment& seg) const {
    return train_.conn && seg.seq == train_.next && seg.ack == train_.ack && seg.wnd == train_.wnd &&
           plain_data(seg) && t == train_.conn->tuple() && *seg.options == train_.options;
}

void Stack::start_train(Connection& c, const Segment& seg) {
    const Seq32 end = seg.seq + static_cast<std::uint32_t>(seg.payload.size());
    if (!plain_data(seg) || seg.has(psh) || !c.in_order_through(end)) return;
    train_ = Train{&c, end, seg.ack, seg.wnd, *seg.options};
}

// RFC 9293 §3.10.7.2.
void Stack::on_listen(Listener& l, const Route& route, const Segment& seg, std::uint64_t now_ms,
                      std::optional<Seq32> iss) {
    if (seg.has(rst)) return;
    if (seg.has(ack)) {
        if (accept_cookie(l, route, seg, now_ms)) return;
        return reply_rst(route, seg);
    }
    if (!seg.has(syn)) return;
    if (l.half_open >= l.syn_queue) {
        ++stats_.syn_queue_full;
        if (config_.syn_cookies && l.accept_queue.size() < l.backlog) send_cookie(l, route, seg, now_ms);
        return;
    }
    if (l.accept_queue.size() >= l.backlog) return void(++stats_.backlog_full);
    const ConnectResult made = create(route, l.options, l.handler);
    if (!made) return;
    Connection* c = &made.conn();
    ++l.half_open;
    c->accepted_from = &l;
    c->open_passive(seg, iss ? *iss : config_.isn(route.tuple, now_ms), now_ms);
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
void Stack::send_cookie(Listener& l, const Route& route, const Segment& request, std::uint64_t now_ms) {
    const wire::TcpOptions& o = *request.options;
    const auto mss = static_cast<std::uint16_t>(std::min<std::uint32_t>(o.mss.value_or(536), local_mss(route.tuple.local.family)));
    const Seq32 iss = cookies_.make(route.tuple, request.seq, mss, now_ms);
    const std::size_t buffer = std::bit_ceil(std::size_t{l.options.recv_buffer});  // as the RecvBuffer rounds it
    OutSegment out{.seq = iss, .ack = request.seq + 1, .flags = static_cast<std::uint8_t>(syn | ack),
                   .wnd = static_cast<std::uint16_t>(std::min<std::size_t>(buffer, 0xffff))};
    out.options.mss = local_mss(route.tuple.local.family);
    if (l.options.timestamps && o.timestamps) {
        CookieOptions kept{.mss = mss, .window_scale = o.window_scale, .sack = l.options.sack && o.sack_permitted,
                           .ecn = l.options.ecn && request.has(ece) && request.has(cwr)};
        if (kept.window_scale) out.options.window_scale = window_shift_for(buffer);
        out.options.sack_permitted = kept.sack;
        if (kept.ecn) out.flags |= ece;
        // Our TSval clock for the connection: milliseconds plus its ISS (connection.cpp).
        const auto tsval = static_cast<std::uint32_t>(now_ms) + iss.value();
        out.options.timestamps = wire::Timestamps{SynCookies::encode_options(tsval, kept), o.timestamps->value};
    }
    l.last_cookie_ms = now_ms;
    ++stats_.syn_cookies_sent;
    (void)emit(route, out);
}

bool Stack::accept_cookie(Listener& l, const Route& route, const Segment& seg, std::uint64_t now_ms) {
    if (!l.last_cookie_ms || now_ms - *l.last_cookie_ms > std::uint64_t{SynCookies::kTickMs} * SynCookies::kTicksValid) {
        return false;  // no cookie went lately: no ACK can return one
    }
    const auto mss = cookies_.check(route.tuple, seg.seq - 1, seg.ack - 1, now_ms);
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
    Connection& c = made.conn();
    ++l.half_open;
    c.accepted_from = &l;
    ++stats_.syn_cookies_accepted;
    c.open_from_cookie(seg, seg.ack - 1, peer, now_ms);
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
bool Stack::on_time_wait(const FourTuple& t, const Segment& seg, std::uint64_t now_ms, std::optional<Seq32>& reuse_iss) {
    TimeWaitRecord* r = time_wait_.find(t);
    if (!r) return false;
    if (seg.has(rst)) return true;  // RFC 1337: ignore, so that TIME_WAIT cannot be assassinated
    const auto listener = listeners_.find(t.local_port);
    if (seg.has(syn) && !seg.has(ack) && listener != listeners_.end() && may_reopen(*r, seg, listener->second->options)) {
        // Our ISS starts above everything the old connection sent (RFC 6191 §2), and so
        // does our TSval clock, which counts from the ISS.
        const Seq32 candidate = config_.isn(t, now_ms);
        reuse_iss = candidate > r->snd_nxt + 65536 ? candidate : r->snd_nxt + 65536 * 2;
        time_wait_.erase(t);
        ++stats_.time_wait_reused;
        --port_users_[t.local_port];
        return false;
    }
    if (seg.has(fin)) time_wait_.restart(t, now_ms);
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

void Stack::input_udp(const IpPacket& ip) {
    auto udp = wire::UdpView::parse(ip.l4);
    if (!udp) return void(++stats_.malformed);
    if (udp->checksum() != 0 && !wire::transport_checksum_ok(ip.src, ip.dst, wire::ipproto::udp, ip.l4.first(udp->length()))) {
        return void(++stats_.bad_checksum);
    }
    ++stats_.udp_datagrams_in;
    auto it = udp_.find(udp->dst_port());
    if (it == udp_.end()) return void(++stats_.udp_no_socket);
    it->second->on_datagram(ip.src, udp->src_port(), udp->dst_port(), udp->payload());
}

// ---------------------------------------------------------------------------------------
// Connections

ConnectResult Stack::create(const Route& route, const ConnOptions& options, Handler* handler) {
    if (conns_.size() >= config_.max_connections) {
        ++stats_.too_many_connections;
        return ConnectError::too_many_connections;
    }
    auto [it, fresh] = conns_.try_emplace(route.tuple, nullptr);
    if (!fresh) return ConnectError::in_use;
    it->second = std::make_unique<Connection>(*this, route, options, local_mss(route.tuple.local.family));
    it->second->handler = handler;
    if (const auto mss = path_mss_.find(route.tuple.remote, now_ms_)) it->second->limit_path_mss(*mss);
    ++port_users_[route.tuple.local_port];
    ++stats_.connections_opened;
    return *it->second;
}

Connection* Stack::find(const FourTuple& t) const {
    auto it = conns_.find(t);
    return it == conns_.end() ? nullptr : it->second.get();
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

const char* to_string(ConnectError e) {
    switch (e) {
        case ConnectError::no_route: return "no next hop for the destination";
        case ConnectError::in_time_wait: return "the connection's TIME_WAIT still holds";
        case ConnectError::in_use: return "a connection with these addresses and ports exists";
        case ConnectError::too_many_connections: return "the stack's connection limit is reached";
    }
    return "unknown";
}

void Stack::remember_fast_open(const wire::IpAddr& server, const FastOpenEntry& entry) {
    fast_open_cache_.remember(server, entry);
}

ConnectResult Stack::connect(std::uint16_t local_port, const wire::IpAddr& remote, std::uint16_t remote_port,
                             Handler* handler, const ConnOptions* options) {
    const auto local = local_address(remote.family);
    const auto mac = local ? next_hop(remote) : std::nullopt;
    if (!mac) {
        ++stats_.no_route;
        return ConnectError::no_route;
    }
    const FourTuple t{*local, remote, local_port, remote_port};
    if (time_wait_.find(t)) return ConnectError::in_time_wait;
    const ConnOptions& o = options ? *options : config_.defaults;
    const ConnectResult made = create({t, *mac}, o, handler);
    if (!made) return made;
    std::optional<FastOpenEntry> cached;
    if (o.fast_open) cached = fast_open_cache_.find(remote);
    made.conn().open_active(config_.isn(t, now_ms_), now_ms_, cached);
    return made;
}

Connection* Stack::accept(Listener& l) {
    if (l.accept_queue.empty()) return nullptr;
    Connection* c = l.accept_queue.front();
    l.accept_queue.pop_front();
    return c;
}

std::optional<wire::MacAddr> Stack::next_hop(const wire::IpAddr& addr) {
    if (auto it = next_hops_.find(addr); it != next_hops_.end()) return it->second;
    if (!config_.resolve) return std::nullopt;
    auto mac = config_.resolve(addr);
    if (mac) next_hops_[addr] = *mac;
    return mac;
}

// ---------------------------------------------------------------------------------------
// Batch end: output, events, reaping

void Stack::mark_dirty(Connection& c) {
    if (c.dirty) return;
    c.dirty = true;
    dirty_.push_back(&c);
}

void Stack::flush(std::uint64_t now_ms) {
    now_ms_ = now_ms;
    train_.conn = nullptr;  // handlers run and connections go below
    // Handlers may make more output; a few rounds settle it without starving the caller.
    for (int round = 0; round < 4 && !dirty_.empty(); ++round) {
        work_.swap(dirty_);
        dirty_.clear();
        std::size_t done = 0;
        for (; done < work_.size(); ++done) {
            Connection& c = *work_[done];
            c.dirty = false;
            if (!c.output(now_ms, *this)) break;
        }
        // The tx ring is full: the rest keep their turn for the next flush.
        for (std::size_t k = done; k < work_.size(); ++k) {
            work_[k]->dirty = false;
            mark_dirty(*work_[k]);
        }
        link_.flush();
        for (std::size_t k = 0; k < done; ++k) deliver_events(*work_[k]);
        for (std::size_t k = 0; k < done; ++k) reap(*work_[k], now_ms);
        work_.clear();
        if (done < work_.size()) break;
    }
    link_.flush();
}

void Stack::deliver_events(Connection& c) {
    if (c.fast_open_from && c.state() != State::syn_received) {
        --c.fast_open_from->fast_open_pending;
        c.fast_open_from = nullptr;
    }
    const std::uint8_t ev = c.take_events();
    if (ev == 0) return;
    Handler* h = c.handler;
    const bool passive = c.accepted_from != nullptr;
    if (ev & event::established) {
        if (passive) {
            Listener* l = c.accepted_from;
            --l->half_open;
            c.accepted_from = nullptr;
            if (!h) l->accept_queue.push_back(&c);
        }
        if (h) passive ? h->on_accepted(c) : h->on_connected(c);
    }
    if (!h) return;
    if ((ev & event::readable) && c.readable() > 0) h->on_readable(c);
    if (ev & event::peer_closed) h->on_peer_closed(c);
    if ((ev & event::writable) && c.send_room() > 0) h->on_writable(c);
    if (ev & event::error) h->on_error(c, c.error());
}

void Stack::reap(Connection& c, std::uint64_t now_ms) {
    const State s = c.state();
    if (s != State::closed && s != State::time_wait) return;
    if (c.dirty || c.pending_events() != 0) return;  // output or events still due: next round
    // A passive open that died in SYN_RECEIVED was never reported to the application.
    if (c.accepted_from) {
        --c.accepted_from->half_open;
    } else if (c.handler) {
        c.handler->on_closed(c);
    }
    const FourTuple t = c.tuple();
    if (s == State::time_wait && time_wait_.size() >= config_.max_time_wait) {
        ++stats_.time_wait_overflow;
    } else if (s == State::time_wait) {
        time_wait_.add(t, {.snd_nxt = c.snd().nxt, .rcv_nxt = c.rcv().nxt, .next_hop = c.route().next_hop,
                           .wnd = static_cast<std::uint16_t>(c.rcv().wnd() >> c.rcv().wnd_shift),
                           .ts_recent = c.ts_recent()}, now_ms);
        ++port_users_[t.local_port];
    }
    if (!c.handler) {  // raw API: it may still wait in an accept queue
        for (auto& [port, l] : listeners_) std::erase(l->accept_queue, &c);
    }
    conns_.erase(t);
    ++stats_.connections_closed;
    release_port_if_free(t.local_port);
}

void Stack::release_port_if_free(std::uint16_t port) {
    auto it = port_users_.find(port);
    if (it == port_users_.end() || --it->second > 0) return;
    port_users_.erase(it);
    if (on_port_free && !listeners_.contains(port)) on_port_free(port);
}

void Stack::advance(std::uint64_t now_ms) {
    now_ms_ = now_ms;
    train_.conn = nullptr;  // timers may change a connection's state
    wheel_.advance(now_ms, [now_ms](Timer& t) {
        auto& ct = static_cast<ConnTimer&>(t);
        ct.owner->on_timer(ct.kind, now_ms);
    });
    time_wait_.expire(now_ms, [this](const FourTuple& t) {
        release_port_if_free(t.local_port);
    });
}

std::uint64_t Stack::poll_at() const {
    if (!dirty_.empty()) return 0;
    return std::min(wheel_.next_deadline(), time_wait_.next_expiry());
}

bool Stack::challenge_ack_allowed(std::uint64_t now_ms) {
    if (now_ms - challenge_window_start_ >= 1000) {
        challenge_window_start_ = now_ms;
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

// ---------------------------------------------------------------------------------------
// Serialisation

namespace {

// Ethernet, IPv6 and a TCP header with the most options.
constexpr std::size_t kMaxSuperHeaders = wire::kEthernetHeaderLen + wire::kIpv6HeaderLen + 60;

wire::TcpRepr tcp_header(const Route& route, const OutSegment& seg) {
    return {.src_port = route.tuple.local_port,
            .dst_port = route.tuple.remote_port,
            .seq = seg.seq.value(),
            .ack = seg.ack.value(),
            .flags = seg.flags,
            .window = seg.wnd,
            .options = seg.options};
}

}  // namespace

bool Stack::emit(const Route& route, const OutSegment& seg) {
    if (seg.gso_size != 0 && seg.payload.size() > seg.gso_size) return emit_super(route, seg);
    const wire::TcpRepr tcp = tcp_header(route, seg);
    const std::size_t hlen = tcp.header_len();
    return emit_ip(route.next_hop, route.tuple, wire::ipproto::tcp, hlen + seg.payload.size(), seg.ect ? wire::ecn::ect0 : std::uint8_t{0},
                   [&](wire::MutBytes l4) {
                       tcp.emit(l4);
                       wire::copy_bytes(l4.data() + hlen, seg.payload.first);
                       wire::copy_bytes(l4.data() + hlen + seg.payload.first.size(), seg.payload.second);
                   });
}

bool Stack::emit_super(const Route& route, const OutSegment& seg) {
    const wire::TcpRepr tcp = tcp_header(route, seg);
    const std::size_t payload = seg.payload.size();
    std::array<std::uint8_t, kMaxSuperHeaders> headers{};
    const std::uint8_t ecn = seg.ect ? wire::ecn::ect0 : std::uint8_t{0};
    const std::size_t written = with_ip_header(route.next_hop, route.tuple, wire::ipproto::tcp, ecn, [&](const auto& eth, auto ip) {
        return wire::emit_tcp_super_header(headers, eth, ip, tcp.header_len(), tcp.header_len() + payload,
                                           [&](wire::MutBytes l4) { tcp.emit(l4); });
    });
    const SuperTx sent = link_.send_super(wire::Bytes(headers).first(written), seg.payload, seg.gso_size);
    if (sent == SuperTx::no_room) {
        ++stats_.tx_ring_full;
        return false;
    }
    if (sent == SuperTx::by_reference) ++stats_.super_segments_by_reference;
    // Each wire segment takes an IPv4 identification, as the segmenter numbers them.
    ip_ident_ = static_cast<std::uint16_t>(ip_ident_ + (payload + seg.gso_size - 1) / seg.gso_size);
    ++stats_.frames_out;
    ++stats_.super_segments_out;
    return true;
}

template <class Emit>
std::size_t Stack::with_ip_header(const wire::MacAddr& dst_mac, const FourTuple& flow, std::uint8_t protocol,
                                  std::uint8_t ecn, const Emit& emit) {
    if (flow.local.family == wire::IpFamily::v6) {
        return emit(wire::EthernetRepr{.dst = dst_mac, .src = config_.mac, .ethertype = wire::ethertype::ipv6},
                    wire::Ipv6Repr{.src = flow.local, .dst = flow.remote, .next_header = protocol, .traffic_class = ecn,
                                   .flow_label = flow_label(flow)});
    }
    return emit(wire::EthernetRepr{.dst = dst_mac, .src = config_.mac, .ethertype = wire::ethertype::ipv4},
                wire::Ipv4Repr{.src = flow.local, .dst = flow.remote, .protocol = protocol, .ident = ip_ident_,
                               .dont_fragment = true, .dscp_ecn = ecn});
}

template <class WriteL4>
bool Stack::emit_ip(const wire::MacAddr& dst_mac, const FourTuple& flow, std::uint8_t protocol, std::size_t l4_len,
                    std::uint8_t ecn, const WriteL4& write_l4) {
    const wire::MutBytes out = link_.next_tx_buffer();
    const std::size_t len = with_ip_header(dst_mac, flow, protocol, ecn, [&](const auto& eth, auto ip) {
        return wire::emit_ip_frame(out, eth, ip, l4_len, write_l4);
    });
    ++ip_ident_;
    if (len == 0) {
        ++stats_.tx_ring_full;
        return false;
    }
    link_.commit_tx(len);
    ++stats_.frames_out;
    return true;
}

std::uint32_t Stack::flow_label(const FourTuple& flow) const {
    const std::uint64_t h = (FourTupleHash{}(flow) ^ flow_label_key_) * 0x9e3779b97f4a7c15ull;
    const auto label = static_cast<std::uint32_t>(h >> 44);  // 20 bits
    return label != 0 ? label : 1;
}

// ---------------------------------------------------------------------------------------
// UDP

bool Stack::udp_bind(std::uint16_t port, UdpHandler& handler) { return udp_.try_emplace(port, &handler).second; }

void Stack::udp_unbind(std::uint16_t port) { udp_.erase(port); }

bool Stack::udp_send(std::uint16_t from_port, const wire::IpAddr& to, std::uint16_t to_port, wire::Bytes payload) {
    const auto local = local_address(to.family);
    const auto mac = local ? next_hop(to) : std::nullopt;
    if (!mac) {
        ++stats_.no_route;
        return false;
    }
    const std::size_t ip_header = to.family == wire::IpFamily::v6 ? wire::kIpv6HeaderLen : wire::kIpv4MinHeaderLen;
    if (payload.size() > config_.mtu - ip_header - wire::kUdpHeaderLen) return false;
    const wire::UdpRepr udp{.src_port = from_port, .dst_port = to_port,
                            .payload_len = static_cast<std::uint16_t>(payload.size())};
    const bool sent = emit_ip(*mac, FourTuple{*local, to, from_port, to_port}, wire::ipproto::udp, wire::kUdpHeaderLen + payload.size(), 0, [&](wire::MutBytes l4) {
        udp.emit(l4);
        wire::copy_bytes(l4.data() + wire::kUdpHeaderLen, payload);
    });
    return sent;
}

}  // namespace ms::utcp
