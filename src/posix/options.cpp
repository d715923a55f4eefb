// getsockopt and setsockopt on UTCP sockets (options.hpp); Runtime's calls take the lock
// and hand the socket over with what the options need of the runtime.
#include <netinet/in.h>
#include <netinet/tcp.h>
// After netinet/in.h, whose in6_addr linux/in6.h then leaves alone: IPV6_FLOWLABEL_MGR.
#include <linux/in6.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "posix/ip_marks.hpp"
#include "posix/options.hpp"
#include "posix/runtime.hpp"
#include "posix/sockaddr.hpp"

namespace ms::posix {

namespace {

template <class T>
base::Result<int, Errno> put(void* value, socklen_t* len, const T& v) {
    if (!value || !len) return Errno{EFAULT};
    const socklen_t n = std::min<socklen_t>(*len, sizeof v);
    std::memcpy(value, &v, n);
    *len = n;
    return 0;
}

base::Result<int, Errno> put_int(void* value, socklen_t* len, std::int64_t v) { return put(value, len, static_cast<int>(v)); }

std::optional<int> take_int(const void* value, socklen_t len) {
    if (!value || len < static_cast<socklen_t>(sizeof(int))) return std::nullopt;
    int v;
    std::memcpy(&v, value, sizeof v);
    return v;
}

std::uint8_t linux_state(utcp::State s) {
    switch (s) {
        case utcp::State::established: return TCP_ESTABLISHED;
        case utcp::State::syn_sent: return TCP_SYN_SENT;
        case utcp::State::syn_received: return TCP_SYN_RECV;
        case utcp::State::fin_wait_1: return TCP_FIN_WAIT1;
        case utcp::State::fin_wait_2: return TCP_FIN_WAIT2;
        case utcp::State::time_wait: return TCP_TIME_WAIT;
        case utcp::State::close_wait: return TCP_CLOSE_WAIT;
        case utcp::State::last_ack: return TCP_LAST_ACK;
        case utcp::State::listen: return TCP_LISTEN;
        case utcp::State::closing: return TCP_CLOSING;
        case utcp::State::closed: return TCP_CLOSE;
    }
    return TCP_CLOSE;
}

tcp_info connection_info(const utcp::Connection& c) {
    tcp_info i{};
    const utcp::ConnStats st = c.stats();
    i.tcpi_state = linux_state(c.state());
    i.tcpi_rto = static_cast<std::uint32_t>(std::min<std::uint64_t>(c.rtt().rto(), UINT32_MAX));  // both in µs
    i.tcpi_snd_mss = c.send_mss();
    i.tcpi_rcv_mss = c.send_mss();
    i.tcpi_rtt = c.rtt().srtt();
    i.tcpi_rttvar = c.rtt().rttvar();
    i.tcpi_snd_cwnd = c.send_mss() ? c.cwnd() / c.send_mss() : 0;
    i.tcpi_snd_ssthresh = c.send_mss() ? std::min<std::uint32_t>(c.ssthresh(), 0x7fffffff) / c.send_mss() : 0;
    i.tcpi_total_retrans = static_cast<std::uint32_t>(st.retransmits);
    i.tcpi_retransmits = static_cast<std::uint8_t>(std::min<std::uint64_t>(c.rtt().backoff(), 255));
    if (c.sack_enabled()) i.tcpi_options |= TCPI_OPT_SACK;
    if (c.timestamps_enabled()) i.tcpi_options |= TCPI_OPT_TIMESTAMPS;
    if (c.ecn_enabled()) i.tcpi_options |= TCPI_OPT_ECN;
    i.tcpi_advmss = c.send_mss();
    i.tcpi_unacked = c.send_mss() ? static_cast<std::uint32_t>(c.unsent_or_unacked() / c.send_mss()) : 0;
    return i;
}

// TCP_INFO: a listener is in LISTEN; a socket without a connection (closed by the stack,
// or UDP) in CLOSE.
tcp_info info_of(const Socket& s) {
    if (const utcp::Connection* c = s.connection()) return connection_info(*c);
    tcp_info i{};
    i.tcpi_state = s.is<ListenerState>() ? TCP_LISTEN : TCP_CLOSE;
    return i;
}

base::Result<int, Errno> put_congestion(const std::string& cc, void* value, socklen_t* len) {
    if (!value || !len) return Errno{EFAULT};
    const socklen_t n = std::min<socklen_t>(*len, static_cast<socklen_t>(cc.size()));
    std::memcpy(value, cc.data(), n);
    if (n < *len) static_cast<char*>(value)[n] = '\0';
    *len = n;
    return 0;
}

base::Result<int, Errno> get_socket_level(Socket& s, int name, void* value, socklen_t* len) {
    const utcp::ConnOptions& o = s.options;
    const bool datagram = s.is<DatagramState>();
    switch (name) {
        case SO_ERROR: return put_int(value, len, s.take_pending_error());
        case SO_TYPE: return put_int(value, len, datagram ? SOCK_DGRAM : SOCK_STREAM);
        case SO_DOMAIN: return put_int(value, len, s.family);
        case SO_PROTOCOL: return put_int(value, len, datagram ? IPPROTO_UDP : IPPROTO_TCP);
        case SO_ACCEPTCONN: return put_int(value, len, s.is<ListenerState>());
        case SO_REUSEADDR: return put_int(value, len, s.reuse_addr);
        case SO_REUSEPORT: return put_int(value, len, s.reuse_port);
        case SO_KEEPALIVE: return put_int(value, len, o.keepalive);
        case SO_SNDBUF: return put_int(value, len, o.send_buffer);
        case SO_RCVBUF: return put_int(value, len, o.recv_buffer);
        case SO_LINGER: return put(value, len, s.linger_option.value_or(linger{}));
        case SO_RCVTIMEO: return put(value, len, to_timeval(s.recv_timeout_ms));
        case SO_SNDTIMEO: return put(value, len, to_timeval(s.send_timeout_ms));
        case SO_PRIORITY: return put_int(value, len, s.priority);
        default: return Errno{ENOPROTOOPT};
    }
}

base::Result<int, Errno> get_tcp_level(const Socket& s, const OptionContext& context, int name, void* value, socklen_t* len) {
    const utcp::ConnOptions& o = s.options;
    const utcp::Connection* conn = s.connection();
    switch (name) {
        case TCP_NODELAY: return put_int(value, len, o.nodelay);
        case TCP_CORK: return put_int(value, len, s.corked);
        case TCP_KEEPIDLE: return put_int(value, len, o.keepalive_idle_ms / 1000);
        case TCP_KEEPINTVL: return put_int(value, len, o.keepalive_interval_ms / 1000);
        case TCP_KEEPCNT: return put_int(value, len, o.keepalive_probes);
        case TCP_FASTOPEN: return put_int(value, len, o.fast_open ? 1 : 0);
        case TCP_MAXSEG: return put_int(value, len, conn ? conn->send_mss() : context.unconnected_mss);
        case TCP_INFO: return put(value, len, info_of(s));
        case TCP_QUICKACK: return put_int(value, len, 1);
        case TCP_CONGESTION: return put_congestion(conn ? conn->options().congestion : o.congestion, value, len);
        default: return Errno{ENOPROTOOPT};
    }
}

// Passes the socket's options on: to its connection now, to a listener's next ones.
void apply_options(Socket& s) {
    if (utcp::Connection* conn = s.connection()) conn->set_options(effective_options(s));
    if (utcp::Listener* listener = s.listener()) listener->options = s.options;
}

base::Result<int, Errno> set_congestion(Socket& s, const OptionContext& context, const void* value, socklen_t len) {
    if (!value) return Errno{EFAULT};
    const std::string cc(static_cast<const char*>(value), strnlen(static_cast<const char*>(value), len));
    if (!context.congestion.has(cc)) return Errno{ENOENT};
    s.options.congestion = cc;
    if (utcp::Connection* conn = s.connection()) conn->set_congestion(cc);
    if (utcp::Listener* listener = s.listener()) listener->options.congestion = cc;
    return 0;
}

base::Result<int, Errno> set_cork(Socket& s, const OptionContext& context, const void* value, socklen_t len) {
    const std::optional<int> v = take_int(value, len);
    if (!v) return Errno{EINVAL};
    s.corked = *v != 0;
    utcp::Connection* conn = s.connection();
    if (!conn) return 0;
    utcp::ConnOptions pushing = s.options;
    pushing.nodelay = !s.corked;  // uncorking sends what waits, as Linux does
    conn->set_options(pushing);
    context.push_output();
    if (utcp::Connection* still = s.connection()) still->set_options(effective_options(s));
    return 0;
}

base::Result<int, Errno> set_timeout(Socket& s, const OptionContext& context, int name, const void* value, socklen_t len) {
    if (!value || len < static_cast<socklen_t>(sizeof(timeval))) return Errno{EINVAL};
    timeval t;
    std::memcpy(&t, value, sizeof t);
    if (t.tv_usec < 0 || t.tv_usec >= 1'000'000) return Errno{EDOM};
    (name == SO_RCVTIMEO ? s.recv_timeout_ms : s.send_timeout_ms) = timeout_ms(t);
    // Blocking receives sleep in a recv() on the application's end: it times out there.
    if (name == SO_RCVTIMEO) {
        ::setsockopt(context.app_fd, SOL_SOCKET, SO_RCVTIMEO, &t, sizeof t);
        if (s.ready) s.ready->make_visible();  // the pair is no longer as new (readiness.hpp)
    }
    return 0;
}

base::Result<int, Errno> set_linger(Socket& s, const void* value, socklen_t len) {
    if (!value || len < static_cast<socklen_t>(sizeof(linger))) return Errno{EINVAL};
    linger l;
    std::memcpy(&l, value, sizeof l);
    s.linger_option = l;
    return 0;
}

// Options kept and read back without effect on UTCP: the reuse flags (the claim holds
// the port), the priority of its packets, and TCP_QUICKACK, TCP_DEFER_ACCEPT (UTCP's ACK
// policy and accept are its own). True if `name` is one.
bool keep_only(Socket& s, int level, int name, int v) {
    if (level == SOL_SOCKET && name == SO_REUSEADDR) return s.reuse_addr = v != 0, true;
    if (level == SOL_SOCKET && name == SO_REUSEPORT) return s.reuse_port = v != 0, true;
    if (level == SOL_SOCKET && name == SO_PRIORITY) return s.priority = v, true;
    return level == IPPROTO_TCP && (name == TCP_QUICKACK || name == TCP_DEFER_ACCEPT);
}

// IP_TOS, IPV6_TCLASS and the flow label options (ip_marks.hpp): the socket's packets
// carry them from the next one on.
base::Result<int, Errno> set_ip_level(Socket& s, int level, int name, int v) {
    auto set = set_ip_option(s.ip, level, name, v);
    if (!set.ok()) return set;
    s.options.marks = marks_of(s.ip);
    apply_options(s);
    return 0;
}

// IPV6_FLOWLABEL_MGR leases labels on the kernel socket that proves a listener's or a UDP
// socket's claim, where connect() and sendto() look for them (ip_marks.hpp). A stream's
// kernel socket went to the daemon: it leases none after connect() (ENOPROTOOPT).
base::Result<int, Errno> manage_flow_labels(Socket& s, const void* value, socklen_t len) {
    const Claimed* claimed = s.claimed();
    if (!claimed) return Errno{ENOPROTOOPT};
    if (::setsockopt(claimed->proof_fd, IPPROTO_IPV6, IPV6_FLOWLABEL_MGR, value, len) != 0) return Errno{errno};
    return 0;
}

// An integer option of UTCP's ConnOptions; false for one it does not know.
bool store_connection_option(utcp::ConnOptions& o, int level, int name, int v) {
    const auto ms = [](int seconds) { return static_cast<std::uint32_t>(std::max(seconds, 1)) * 1000; };
    if (level == SOL_SOCKET) {
        switch (name) {
            case SO_KEEPALIVE: o.keepalive = v != 0; return true;
            // Linux doubles what it is given; buffers apply to connections made after.
            case SO_SNDBUF: o.send_buffer = static_cast<std::uint32_t>(std::clamp(v, 2304, 1 << 26)) * 2; return true;
            case SO_RCVBUF: o.recv_buffer = static_cast<std::uint32_t>(std::clamp(v, 1152, 1 << 26)) * 2; return true;
            default: return false;
        }
    }
    if (level != IPPROTO_TCP) return false;
    switch (name) {
        case TCP_NODELAY: o.nodelay = v != 0; return true;
        case TCP_KEEPIDLE: o.keepalive_idle_ms = ms(v); return true;
        case TCP_KEEPINTVL: o.keepalive_interval_ms = ms(v); return true;
        case TCP_KEEPCNT: o.keepalive_probes = static_cast<std::uint32_t>(std::max(v, 1)); return true;
        case TCP_FASTOPEN: o.fast_open = v > 0; return true;
        default: return false;
    }
}

}  // namespace

utcp::ConnOptions effective_options(const Socket& s) {
    utcp::ConnOptions o = s.options;
    o.nodelay = o.nodelay && !s.corked;
    return o;
}

base::Result<int, Errno> get_socket_option(Socket& s, const OptionContext& context, int level, int name, void* value,
                                           socklen_t* len) {
    if (level == SOL_SOCKET) return get_socket_level(s, name, value, len);
    if (is_ip_option(s.family, level, name)) return put_int(value, len, get_ip_option(s.ip, level, name));
    if (level == IPPROTO_IPV6 && s.family == AF_INET6 && name == IPV6_V6ONLY) return put_int(value, len, s.v6only);
    if (level == IPPROTO_TCP) return get_tcp_level(s, context, name, value, len);
    return Errno{ENOPROTOOPT};
}

base::Result<int, Errno> set_socket_option(Socket& s, const OptionContext& context, int level, int name, const void* value,
                                           socklen_t len) {
    if (level == IPPROTO_TCP && name == TCP_CONGESTION) return set_congestion(s, context, value, len);
    if (level == IPPROTO_TCP && name == TCP_CORK) return set_cork(s, context, value, len);
    if (level == SOL_SOCKET && (name == SO_RCVTIMEO || name == SO_SNDTIMEO)) return set_timeout(s, context, name, value, len);
    if (level == SOL_SOCKET && name == SO_LINGER) return set_linger(s, value, len);
    if (level == IPPROTO_IPV6 && s.family == AF_INET6 && name == IPV6_FLOWLABEL_MGR) {
        return manage_flow_labels(s, value, len);
    }
    const std::optional<int> v = take_int(value, len);
    if (!v) return Errno{EINVAL};
    if (level == IPPROTO_IPV6 && s.family == AF_INET6 && name == IPV6_V6ONLY) return Errno{EINVAL};  // as Linux, once bound
    if (keep_only(s, level, name, *v)) return 0;
    if (is_ip_option(s.family, level, name)) return set_ip_level(s, level, name, *v);
    if (!store_connection_option(s.options, level, name, *v)) return Errno{ENOPROTOOPT};
    apply_options(s);
    context.push_output();
    return 0;
}

OptionContext Runtime::option_context(int fd, std::unique_lock<std::mutex>& lock) {
    return OptionContext{.congestion = loop_->stack().congestion(),
                         .unconnected_mss = loop_->stack().local_mss(wire::IpFamily::v4),
                         .app_fd = fd,
                         .push_output = [this, &lock] { after_call(lock); }};
}

base::Result<int, Errno> Runtime::get_option(int fd, int level, int name, void* value, socklen_t* len) {
    std::unique_lock lock(mutex_);
    Socket* s = live(fd);
    if (!s) return Errno{EBADF};
    return get_socket_option(*s, option_context(fd, lock), level, name, value, len);
}

base::Result<int, Errno> Runtime::set_option(int fd, int level, int name, const void* value, socklen_t len) {
    std::unique_lock lock(mutex_);
    Socket* s = live(fd);
    if (!s) return Errno{EBADF};
    return set_socket_option(*s, option_context(fd, lock), level, name, value, len);
}

}  // namespace ms::posix
