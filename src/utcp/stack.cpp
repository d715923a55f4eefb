// Stack, the core: construction, making and finding connections (active opens with their
// ephemeral ports), and the end of a batch (output, events, reaping) with the timers.
// The other parts: stack_ip.cpp, stack_tcp.cpp and stack_udp.cpp.
#include "utcp/stack.hpp"

#include <algorithm>

namespace ms::utcp {

using namespace wire::tcpflag;

Stack::Stack(StackConfig config, Link& link, std::uint64_t now_us, const StackSecrets& secrets)
    : config_(std::move(config)),
      link_(link),
      wheel_(now_us, kTimerSlots, kTimerTickUs),
      cookies_(secrets.syn_cookies),
      fast_open_cookies_(secrets.fast_open),
      time_wait_(config_.time_wait_ms),
      flow_label_key_(secrets.flow_label),
      now_us_(now_us) {
    if (!config_.isn) config_.isn = IsnGenerator(secrets.isn);
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

ConnectResult Stack::create(const Route& route, const ConnOptions& options, Handler* handler) {
    if (conns_.size() >= config_.max_connections) {
        ++stats_.too_many_connections;
        return ConnectError::too_many_connections;
    }
    auto [it, fresh] = conns_.try_emplace(route.tuple, nullptr);
    if (!fresh) return ConnectError::in_use;
    it->second = std::make_unique<Connection>(*this, route, options, local_mss(route.tuple.local.family));
    it->second->handler = handler;
    if (const auto mss = path_mss_.find(route.tuple.remote, now_us_)) it->second->limit_path_mss(*mss);
    ++port_users_[route.tuple.local_port];
    ++stats_.connections_opened;
    return it->second.get();
}

bool Stack::orphans_sending() const {
    return std::ranges::any_of(conns_, [](const auto& entry) {
        const Connection& c = *entry.second;
        const State s = c.state();
        const bool fin_unacked = s == State::fin_wait_1 || s == State::closing || s == State::last_ack;
        return c.user_closed() && (fin_unacked || c.unsent_or_unacked() > 0);
    });
}

bool Stack::port_in_use(std::uint16_t port) const {
    const auto it = port_users_.find(port);
    return it != port_users_.end() && it->second > 0;
}

Connection* Stack::find(const FourTuple& t) const {
    auto it = conns_.find(t);
    return it == conns_.end() ? nullptr : it->second.get();
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
    (*made)->open_active(config_.isn(t, now_us_), now_us_, cached);
    return made;
}

void Stack::mark_dirty(Connection& c) {
    if (c.dirty) return;
    c.dirty = true;
    dirty_.push_back(&c);
}

void Stack::flush(std::uint64_t now_us) {
    now_us_ = now_us;
    train_.conn = nullptr;  // handlers run and connections go below
    // Handlers may make more output; a few rounds settle it without starving the caller.
    for (int round = 0; round < 4 && !dirty_.empty(); ++round) {
        work_.swap(dirty_);
        dirty_.clear();
        std::size_t done = 0;
        for (; done < work_.size(); ++done) {
            Connection& c = *work_[done];
            c.dirty = false;
            if (!c.output(now_us, *this)) break;
        }
        // The tx ring is full: the rest keep their turn for the next flush.
        for (std::size_t k = done; k < work_.size(); ++k) {
            work_[k]->dirty = false;
            mark_dirty(*work_[k]);
        }
        link_.flush();
        for (std::size_t k = 0; k < done; ++k) deliver_events(*work_[k]);
        for (std::size_t k = 0; k < done; ++k) reap(*work_[k], now_us);
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
            if (l->paused) {  // nobody will accept it here: reset, as a closed listener's would be
                ++stats_.listener_paused;
                c.handler = nullptr;
                return c.abort();
            }
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

void Stack::reap(Connection& c, std::uint64_t now_us) {
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
        time_wait_.add(t,
                       {.snd_nxt = c.snd().nxt,
                        .rcv_nxt = c.rcv().nxt,
                        .next_hop = c.route().next_hop,
                        .wnd = static_cast<std::uint16_t>(c.rcv().wnd() >> c.rcv().wnd_shift),
                        .ts_recent = c.ts_recent()},
                       now_us);
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

void Stack::advance(std::uint64_t now_us) {
    now_us_ = now_us;
    train_.conn = nullptr;  // timers may change a connection's state
    wheel_.advance(now_us, [now_us](Timer& t) {
        auto& ct = static_cast<ConnTimer&>(t);
        ct.owner->on_timer(ct.kind, now_us);
    });
    time_wait_.expire(now_us, [this](const FourTuple& t) { release_port_if_free(t.local_port); });
    moved_.expire(now_us, [this](const FourTuple& t) { release_port_if_free(t.local_port); });
}

std::uint64_t Stack::poll_at() const {
    if (!dirty_.empty()) return 0;
    return std::min({wheel_.next_deadline(), time_wait_.next_expiry(), moved_.next_expiry()});
}

}  // namespace ms::utcp
