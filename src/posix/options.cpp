// getsockopt and setsockopt on UTCP sockets: the options of runtime.hpp's Socket, mapped
// onto UTCP's ConnOptions (a listener's options go to the connections it accepts).
// Anything else fails with ENOPROTOOPT, as Linux does for an option it does not know.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "posix/runtime.hpp"
#include "posix/sockaddr.hpp"

namespace ms::posix {

namespace {

template <class T>
SysResult<int> put(void* value, socklen_t* len, const T& v) {
    if (!value || !len) return Errno{EFAULT};
    const socklen_t n = std::min<socklen_t>(*len, sizeof v);
    std::memcpy(value, &v, n);
    *len = n;
    return 0;
}

SysResult<int> put_int(void* value, socklen_t* len, std::int64_t v) { return put(value, len, static_cast<int>(v)); }

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

tcp_info info_of(const Socket& s) {
    tcp_info i{};
    if (s.kind == Socket::Kind::listener) {
        i.tcpi_state = TCP_LISTEN;
        return i;
    }
    if (!s.conn) {
        i.tcpi_state = TCP_CLOSE;
        return i;
    }
    const utcp::Connection& c = *s.conn;
    const utcp::ConnStats st = c.stats();
    i.tcpi_state = linux_state(c.state());
    i.tcpi_rto = c.rtt().rto() * 1000;
    i.tcpi_snd_mss = c.send_mss();
    i.tcpi_rcv_mss = c.send_mss();
    i.tcpi_rtt = c.rtt().srtt() * 1000;
    i.tcpi_rttvar = c.rtt().rttvar() * 1000;
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

}  // namespace

SysResult<int> Runtime::get_option(int fd, int level, int name, void* value, socklen_t* len) {
    std::unique_lock lock(mutex_);
    Socket* sp = live(fd);
    if (!sp) return Errno{EBADF};
    Socket& s = *sp;
    const utcp::ConnOptions& o = s.options;
    if (level == SOL_SOCKET) {
        switch (name) {
            case SO_ERROR: return put_int(value, len, std::exchange(s.pending_error, 0));
            case SO_TYPE: return put_int(value, len, s.kind == Socket::Kind::datagram ? SOCK_DGRAM : SOCK_STREAM);
            case SO_DOMAIN: return put_int(value, len, AF_INET);
            case SO_PROTOCOL: return put_int(value, len, s.kind == Socket::Kind::datagram ? IPPROTO_UDP : IPPROTO_TCP);
            case SO_ACCEPTCONN: return put_int(value, len, s.kind == Socket::Kind::listener);
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
    if (level == IPPROTO_IP && name == IP_TOS) return put_int(value, len, s.tos);
    if (level != IPPROTO_TCP) return Errno{ENOPROTOOPT};
    switch (name) {
        case TCP_NODELAY: return put_int(value, len, o.nodelay);
        case TCP_CORK: return put_int(value, len, s.corked);
        case TCP_KEEPIDLE: return put_int(value, len, o.keepalive_idle_ms / 1000);
        case TCP_KEEPINTVL: return put_int(value, len, o.keepalive_interval_ms / 1000);
        case TCP_KEEPCNT: return put_int(value, len, o.keepalive_probes);
        case TCP_FASTOPEN: return put_int(value, len, o.fast_open ? 1 : 0);
        case TCP_MAXSEG: return put_int(value, len, s.conn ? s.conn->send_mss() : loop_->stack().local_mss(wire::IpFamily::v4));
        case TCP_INFO: return put(value, len, info_of(s));
        case TCP_QUICKACK: return put_int(value, len, 1);
        case TCP_CONGESTION: {
            if (!value || !len) return Errno{EFAULT};
            const std::string& cc = s.conn ? s.conn->options().congestion : o.congestion;
            const socklen_t n = std::min<socklen_t>(*len, static_cast<socklen_t>(cc.size()));
            std::memcpy(value, cc.data(), n);
            if (n < *len) static_cast<char*>(value)[n] = '\0';
            *len = n;
            return 0;
        }
        default: return Errno{ENOPROTOOPT};
    }
}

SysResult<int> Runtime::set_option(int fd, int level, int name, const void* value, socklen_t len) {
    std::unique_lock lock(mutex_);
    Socket* sp = live(fd);
    if (!sp) return Errno{EBADF};
    Socket& s = *sp;
    utcp::ConnOptions& o = s.options;
    if (level == IPPROTO_TCP && name == TCP_CONGESTION) {
        if (!value) return Errno{EFAULT};
        const std::string cc(static_cast<const char*>(value), strnlen(static_cast<const char*>(value), len));
        if (!loop_->stack().congestion().has(cc)) return Errno{ENOENT};
        o.congestion = cc;
        if (s.conn) s.conn->set_congestion(cc);
        if (s.listener) s.listener->options.congestion = cc;
        return 0;
    }
    if (level == IPPROTO_TCP && name == TCP_CORK) {
        const std::optional<int> v = take_int(value, len);
        if (!v) return Errno{EINVAL};
        s.corked = *v != 0;
        if (!s.conn) return 0;
        utcp::ConnOptions pushing = s.options;
        pushing.nodelay = !s.corked;  // uncorking sends what waits, as Linux does
        s.conn->set_options(pushing);
        after_call(lock);
        if (s.conn) s.conn->set_options(effective_options(s));
        return 0;
    }
    if (level == SOL_SOCKET && (name == SO_RCVTIMEO || name == SO_SNDTIMEO)) {
        if (!value || len < static_cast<socklen_t>(sizeof(timeval))) return Errno{EINVAL};
        timeval t;
        std::memcpy(&t, value, sizeof t);
        if (t.tv_usec < 0 || t.tv_usec >= 1'000'000) return Errno{EDOM};
        (name == SO_RCVTIMEO ? s.recv_timeout_ms : s.send_timeout_ms) = timeout_ms(t);
        // Blocking receives sleep in a recv() on the application's end: it times out there.
        if (name == SO_RCVTIMEO) ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &t, sizeof t);
        return 0;
    }
    if (level == SOL_SOCKET && name == SO_LINGER) {
        if (!value || len < static_cast<socklen_t>(sizeof(linger))) return Errno{EINVAL};
        linger l;
        std::memcpy(&l, value, sizeof l);
        s.linger_option = l;
        return 0;
    }
    const std::optional<int> v = take_int(value, len);
    if (!v) return Errno{EINVAL};
    const auto ms = [&](int seconds) { return static_cast<std::uint32_t>(std::max(seconds, 1)) * 1000; };
    // Kept and read back, without effect on UTCP: the priority and TOS of its packets,
    // and TCP_QUICKACK, TCP_DEFER_ACCEPT (UTCP's ACK policy and accept are its own).
    if (level == SOL_SOCKET && name == SO_PRIORITY) return s.priority = *v, 0;
    if (level == IPPROTO_IP && name == IP_TOS) return s.tos = *v, 0;
    if (level == IPPROTO_TCP && (name == TCP_QUICKACK || name == TCP_DEFER_ACCEPT)) return 0;
    if (level == SOL_SOCKET) {
        switch (name) {
            case SO_REUSEADDR: s.reuse_addr = *v != 0; return 0;  // virtual: the claim holds the port
            case SO_REUSEPORT: s.reuse_port = *v != 0; return 0;
            case SO_KEEPALIVE: o.keepalive = *v != 0; break;
            // Linux doubles what it is given; buffers apply to connections made after.
            case SO_SNDBUF: o.send_buffer = static_cast<std::uint32_t>(std::clamp(*v, 2304, 1 << 26)) * 2; break;
            case SO_RCVBUF: o.recv_buffer = static_cast<std::uint32_t>(std::clamp(*v, 1152, 1 << 26)) * 2; break;
            default: return Errno{ENOPROTOOPT};
        }
    } else if (level == IPPROTO_TCP) {
        switch (name) {
            case TCP_NODELAY: o.nodelay = *v != 0; break;
            case TCP_KEEPIDLE: o.keepalive_idle_ms = ms(*v); break;
            case TCP_KEEPINTVL: o.keepalive_interval_ms = ms(*v); break;
            case TCP_KEEPCNT: o.keepalive_probes = static_cast<std::uint32_t>(std::max(*v, 1)); break;
            case TCP_FASTOPEN: o.fast_open = *v > 0; break;
            default: return Errno{ENOPROTOOPT};
        }
    } else {
        return Errno{ENOPROTOOPT};
    }
    if (s.conn) s.conn->set_options(effective_options(s));
    if (s.listener) s.listener->options = o;
    after_call(lock);
    return 0;
}

}  // namespace ms::posix
