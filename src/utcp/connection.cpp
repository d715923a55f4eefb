// Connection, the core part: construction, the state changes, the application's calls
// and the counters. The other parts, one concern each: connection_handshake.cpp,
// connection_input.cpp, connection_output.cpp, connection_timers.cpp and
// connection_path.cpp (the contract of the whole is in connection.hpp).
#include "utcp/connection.hpp"

#include <algorithm>
#include <utility>

namespace ms::utcp {

using namespace wire::tcpflag;

const char* to_string(State s) {
    static constexpr const char* names[] = {"CLOSED",      "LISTEN",     "SYN_SENT",   "SYN_RECEIVED",
                                            "ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2", "CLOSE_WAIT",
                                            "CLOSING",     "LAST_ACK",   "TIME_WAIT"};
    return names[static_cast<int>(s)];
}

const char* to_string(ConnError e) {
    static constexpr const char* names[] = {"none",    "connection refused",  "connection reset", "timed out",
                                            "aborted", "network unreachable", "host unreachable", "protocol error"};
    return names[static_cast<int>(e)];
}

const char* to_string(FastOpen f) {
    static constexpr const char* names[] = {"none",         "cookie_requested", "data_sent",    "data_acked",
                                            "data_refused", "cookie_sent",      "data_accepted"};
    return names[static_cast<int>(f)];
}

std::uint8_t window_shift_for(std::size_t buffer) {
    std::uint8_t shift = 0;
    while (shift < 14 && (buffer >> shift) > 0xffff) ++shift;
    return shift;
}

Connection::Connection(ConnectionHost& host, const Route& route, const ConnOptions& options, std::uint16_t local_mss)
    : host_(host),
      route_(route),
      options_(options),
      mss_{.local = local_mss},
      sender_(options.send_buffer, host.buffers()),
      receiver_(options.recv_buffer, local_mss, host.buffers()),
      cc_(make_congestion(options.congestion)),
      recovery_(make_loss_recovery(false)),
      rtt_(us_from_ms(options.min_rto_ms), us_from_ms(options.max_rto_ms), kInitialRtoUs) {
    for (auto [t, kind] : {std::pair{&timing_.rtx, TimerKind::retransmit},
                           {&timing_.delack, TimerKind::delayed_ack},
                           {&timing_.idle, TimerKind::idle},
                           {&timing_.pace, TimerKind::pace}}) {
        t->owner = this;
        t->kind = kind;
    }
}

bool Connection::synchronized() const {
    return state_ != State::closed && state_ != State::listen && state_ != State::syn_sent;
}

std::unique_ptr<CongestionControl> Connection::make_congestion(std::string_view name) const {
    auto made = host_.congestion().make(name, mss_.smss);
    return made ? std::move(made) : host_.congestion().make(CongestionRegistry::kDefault, mss_.smss);
}

bool Connection::set_congestion(std::string_view name) {
    if (!host_.congestion().has(name)) return false;
    options_.congestion = name;
    cc_ = make_congestion(name);
    wake();
    return true;
}

// ---------------------------------------------------------------------------------------
// State changes

void Connection::enter(State s, std::uint64_t now_us) {
    state_ = s;
    switch (s) {
        case State::established:
            if (!std::exchange(app_.announced, true)) app_.events |= event::established;
            app_.events |= event::writable;
            if (options_.keepalive) arm(timing_.idle, now_us + us_from_ms(options_.keepalive_idle_ms));
            if (sender_.fin_queued()) state_ = State::fin_wait_1;  // closed while the handshake ran
            break;
        case State::fin_wait_2:
            // A FIN_WAIT_2 that the application has left for good must not live forever.
            if (app_.user_closed) arm(timing_.idle, now_us + us_from_ms(options_.fin_wait_2_timeout_ms));
            break;
        case State::time_wait:
            finish();
            state_ = State::time_wait;
            break;
        default: break;
    }
    wake();
}

void Connection::fail(ConnError e) {
    error_ = e;
    app_.events |= event::error;
    finish();
}

// The protocol is done with this connection: CLOSED (or TIME_WAIT, which the stack
// turns into a compact record). The stack reaps it after delivering `closed`.
void Connection::finish() {
    state_ = State::closed;
    for (ConnTimer* t : {&timing_.rtx, &timing_.delack, &timing_.idle}) disarm(*t);
    app_.events |= event::closed;
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
    if (app_.write_closed) return;
    app_.write_closed = true;
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
    if (app_.user_closed) return;
    app_.user_closed = true;
    // RFC 2525 §2.17 (and Linux): closing with unread data tells the peer with a RST
    // that the data was lost, rather than pretending a clean close.
    if (receiver_.buffer().readable() > 0) return abort();
    shutdown_write();
    if (state_ == State::fin_wait_2) arm(timing_.idle, timing_.last_recv_us + us_from_ms(options_.fin_wait_2_timeout_ms));
}

void Connection::abort() {
    app_.user_closed = app_.write_closed = true;
    if (state_ == State::closed || state_ == State::time_wait) return;
    // §3.10.5: a RST unless nothing was synchronised yet.
    due_.rst = synchronized();
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
    options_.marks = o.marks;
    rtt_.set_min_rto(us_from_ms(o.min_rto_ms));
    if (keepalive_changed && state_ == State::established) {
        if (o.keepalive) {
            arm(timing_.idle, timing_.last_recv_us + us_from_ms(o.keepalive_idle_ms));
        } else {
            disarm(timing_.idle);
        }
    }
    wake();  // nodelay may release a held segment
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
