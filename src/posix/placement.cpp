// Placement of pending kernel sockets on UTCP (listen, connect), and the end of a UTCP
// socket's life (close, dup). See runtime.hpp.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "posix/fd_table.hpp"
#include "posix/runtime.hpp"
#include "posix/sockaddr.hpp"

namespace ms::posix {

namespace {

// The application's kernel socket, duplicated high: the claim's proof.
class ProofCopy {
public:
    explicit ProofCopy(int fd) : fd_(::fcntl(fd, F_DUPFD_CLOEXEC, fd_table().own_fd_floor())) {}
    ~ProofCopy() {
        if (fd_ >= 0) ::close(fd_);
    }
    ProofCopy(const ProofCopy&) = delete;
    ProofCopy& operator=(const ProofCopy&) = delete;
    [[nodiscard]] int fd() const { return fd_; }

private:
    int fd_;
};

// The options the application set on its kernel socket before placing it.
void import_kernel_options(int fd, utcp::ConnOptions& o) {
    const auto read_int = [fd](int level, int name) -> std::optional<int> {
        int v = 0;
        socklen_t len = sizeof v;
        if (::getsockopt(fd, level, name, &v, &len) != 0) return std::nullopt;
        return v;
    };
    if (auto v = read_int(IPPROTO_TCP, TCP_NODELAY)) o.nodelay = *v != 0;
    if (auto v = read_int(SOL_SOCKET, SO_KEEPALIVE)) o.keepalive = *v != 0;
    if (auto v = read_int(IPPROTO_TCP, TCP_KEEPIDLE)) o.keepalive_idle_ms = static_cast<std::uint32_t>(*v) * 1000;
    if (auto v = read_int(IPPROTO_TCP, TCP_KEEPINTVL)) o.keepalive_interval_ms = static_cast<std::uint32_t>(*v) * 1000;
    if (auto v = read_int(IPPROTO_TCP, TCP_KEEPCNT)) o.keepalive_probes = static_cast<std::uint32_t>(*v);
}

// SO_RCVTIMEO or SO_SNDTIMEO as the kernel socket has it (a zero timeval: none).
timeval kernel_timeout(int fd, int name) {
    timeval t{};
    socklen_t len = sizeof t;
    if (::getsockopt(fd, SOL_SOCKET, name, &t, &len) != 0) return {};
    return t;
}

// SOCK_CLOEXEC and SOCK_NONBLOCK as the descriptor has them now.
int descriptor_flags(int fd) {
    int flags = 0;
    if (::fcntl(fd, F_GETFD) & FD_CLOEXEC) flags |= SOCK_CLOEXEC;
    if (::fcntl(fd, F_GETFL) & O_NONBLOCK) flags |= SOCK_NONBLOCK;
    return flags;
}

}  // namespace

bool Runtime::interface_address(const Endpoint& e) const {
    if (e.addr.is_any()) return true;
    const std::vector<wire::IpAddr> mine = loop_->addresses();
    return std::ranges::find(mine, e.addr) != mine.end();
}

std::optional<Endpoint> Runtime::bound_to_interface(int fd, wire::IpFamily family) {
    if (family_error(fd, family) != 0) return std::nullopt;  // the kernel gives Linux's error
    auto bound = bound_address(fd);
    if (bound && bound->port == 0 && bound->addr.is_any()) {
        const int socket_kind = socket_family(fd);
        const auto local = loop_->stack().local_address(family);
        if (!local || (socket_kind == AF_INET && family == wire::IpFamily::v6)) return std::nullopt;
        const SockaddrBuffer at = to_sockaddr(Endpoint{*local, 0}, socket_kind);
        if (::bind(fd, at.get(), at.length) != 0) return std::nullopt;
        bound = bound_address(fd);
    }
    if (!bound || !interface_address(*bound)) return std::nullopt;
    return bound;
}

base::Result<Placement, Errno> Runtime::refuse(const std::string& why, int error) {
    if (settings_.require) {
        log_line(1, why + " (MULTISTACK_REQUIRE=1: the call fails)");
        return Errno{error};
    }
    log_line(1, why + ": this socket stays with the kernel");
    return Placement::kernel;
}

base::Result<int, Errno> Runtime::take_number(Socket& s, int fd) {
    // What the kernel socket had: its family, IPV6_V6ONLY, the timeouts (the receive one
    // moves with the number).
    const timeval recv_timeout = kernel_timeout(fd, SO_RCVTIMEO);
    s.recv_timeout_ms = timeout_ms(recv_timeout);
    s.send_timeout_ms = timeout_ms(kernel_timeout(fd, SO_SNDTIMEO));
    s.family = socket_family(fd);
    if (s.family == AF_INET6) {
        int v6only = 0;
        socklen_t length = sizeof v6only;
        s.v6only = ::getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &length) == 0 && v6only != 0;
    }
    // The number names the pair from here on.
    const int flags = descriptor_flags(fd);
    auto ready = pairs_.take(flags, fd_table().own_fd_floor(), fd);
    if (!ready) return Errno{ready.error()};
    s.ready.emplace(std::move(ready.value()));
    if (s.recv_timeout_ms >= 0) {  // the blocking receive sleeps on the pair with it (stream_calls.cpp)
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &recv_timeout, sizeof recv_timeout);
        expose(s);
    }
    s.references = 1;
    s.nonblocking = (flags & SOCK_NONBLOCK) != 0;
    fd_table().set_pending(fd, 0);
    fd_table().set_socket(fd, &s);
    return fd;
}

base::Result<Placement, Errno> Runtime::listen(int fd, int backlog) {
    std::unique_lock lock(mutex_);
    if (daemon_gone_) return Placement::kernel;
    auto bound = bound_address(fd);
    if (!bound) return Placement::kernel;
    if (!interface_address(*bound)) {
        log_line(2, "listen on " + describe(*bound) + ": not the interface's address, kernel");
        return Placement::kernel;
    }
    if (bound->port == 0) {  // listen() on an unbound socket binds an ephemeral port
        const SockaddrBuffer any = to_sockaddr(*bound, socket_family(fd));
        if (::bind(fd, any.get(), any.length) != 0) return Placement::kernel;
        bound = bound_address(fd);
    }
    const auto clamped = static_cast<std::uint32_t>(std::clamp(backlog, 1, 4096));
    if (auto placed = listen_on_utcp(fd, clamped, ctl::ClaimRole::standby); !placed) {
        return refuse("listen on " + describe(*bound) + ": " + last_failure_, placed.error().code);
    }
    log_line(2, "listening on " + describe(*bound) + " over UTCP");
    return Placement::utcp;
}

base::Result<Placement, Errno> Runtime::place_received_listener(int fd, std::uint32_t backlog, ctl::ClaimRole role) {
    std::unique_lock lock(mutex_);
    if (daemon_gone_) return Placement::kernel;
    const auto bound = bound_address(fd);
    if (!bound || bound->port == 0 || !interface_address(*bound)) return Placement::kernel;
    if (auto placed = listen_on_utcp(fd, backlog, role); !placed) {
        log_line(
            2, "a socket this process received, bound to " + describe(*bound) + ", stays with the kernel: " + last_failure_);
        return Placement::kernel;
    }
    log_line(2, "a listener on " + describe(*bound) + (role == ctl::ClaimRole::passed ? " passed" : " handed by exec") +
                    " to this process joined its stack");
    return Placement::utcp;
}

base::Result<int, Errno> Runtime::listen_on_utcp(int fd, std::uint32_t backlog, ctl::ClaimRole role) {
    // A closed listener's claim on the port would refuse this one (SO_REUSEPORT let the bind through).
    if (const auto bound = bound_address(fd)) (void)release_lingering_claims_on(*bound);
    ListenerState listening;
    listening.proof_fd = ::fcntl(fd, F_DUPFD_CLOEXEC, fd_table().own_fd_floor());
    listening.adopted = role == ctl::ClaimRole::passed || role == ctl::ClaimRole::draining;
    Socket& s = allocate(std::move(listening));
    import_kernel_options(fd, s.options);
    s.ip = kernel_ip_options(fd, socket_family(fd));
    s.options.marks = marks_of(s.ip);
    const std::uint8_t bits = fd_table().pending(fd);
    int reuse_port = 0;
    socklen_t len = sizeof reuse_port;
    s.reuse_addr = bits & pending::reuse_addr;
    s.reuse_port = (bits & pending::reuse_port) ||
                   (::getsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &reuse_port, &len) == 0 && reuse_port != 0);
    return place_listener(s, fd, backlog, role);
}

Socket* Runtime::reuseport_sibling(const Socket& s) const {
    if (!s.reuse_port) return nullptr;
    const auto bound = bound_address(std::get<ListenerState>(s.state).proof_fd);
    if (!bound) return nullptr;
    for (Socket* other : listeners_) {
        const auto theirs = bound_address(std::get<ListenerState>(other->state).proof_fd);
        if (other->reuse_port && theirs && *theirs == *bound) {
            return other;
        }
    }
    return nullptr;
}

// Claims with the listener state's proof, listens, and puts the listener on `fd`;
// recycles `s` on failure. A SO_REUSEPORT sibling in this process lends its stack
// listener and claim instead.
base::Result<int, Errno> Runtime::place_listener(Socket& s, int fd, std::uint32_t backlog, ctl::ClaimRole role) {
    auto& listening = std::get<ListenerState>(s.state);
    if (const Socket* sibling = reuseport_sibling(s)) {
        const auto& shared = std::get<ListenerState>(sibling->state);
        listening.listener = shared.listener;
        listening.claim = shared.claim;
    } else {
        auto made = loop_->listen_socket(listening.proof_fd, nullptr, &s.options, role);
        if (!made) {
            recycle(s);
            last_failure_ = made.error().message();
            return Errno{errno_for(made.error().error)};
        }
        listening.listener = made.value().first;
        listening.claim = made.value().second;
        listening.listener->backlog = backlog;
    }
    if (auto taken = take_number(s, fd); !taken) {
        release(s);
        last_failure_ = "no descriptor pair";
        return taken;
    }
    listeners_.push_back(&s);
    refresh(s);
    return fd;
}

base::Result<int, Errno> Runtime::adopt_listener(int fd, Socket& inherited) {
    std::unique_lock lock(mutex_);
    if (daemon_gone_) return Errno{ENETDOWN};
    // Another thread of this process may have moved it already.
    if (Socket* now = live(fd); now && now->owner == this) return fd;
    auto* old = inherited.as<ListenerState>();
    if (fd_table().socket(fd) != &inherited || !old || old->proof_fd < 0) return Errno{EBADF};
    ListenerState listening;
    listening.proof_fd = ::fcntl(old->proof_fd, F_DUPFD_CLOEXEC, fd_table().own_fd_floor());
    const std::uint32_t backlog = old->listener ? old->listener->backlog : 128;
    Socket& s = allocate(std::move(listening));
    s.options = inherited.options;
    s.reuse_addr = inherited.reuse_addr;
    s.reuse_port = inherited.reuse_port;
    if (auto placed = place_listener(s, fd, backlog, ctl::ClaimRole::serving); !placed) {
        log_line(1, "an inherited listener could not move to this process: " + last_failure_);
        return placed;
    }
    // This process's copies of the parent's descriptors for it: the parent keeps its own.
    inherited.ready.reset();
    ::close(std::exchange(old->proof_fd, -1));
    std::get<ListenerState>(s.state).adopted = true;
    const client::Claim& claim = std::get<ListenerState>(s.state).claim;
    log_line(2, "an inherited listener on " + describe(Endpoint{claim.addr, claim.port}) + " joined this process's stack");
    return fd;
}

void Runtime::pause_for_exec(Socket& s, bool handing) {
    std::unique_lock lock(mutex_);
    utcp::Listener* l = s.listener();
    if (!l || s.owner != this) return;
    if (handing) {
        stop_accepting(*l);
    } else {
        l->paused = false;
    }
    after_call(lock);
}

void Runtime::stop_accepting(utcp::Listener& l) {
    l.paused = true;
    while (utcp::Connection* c = loop_->stack().accept(l)) c->abort();
}

base::Result<Placement, Errno> Runtime::connect(int fd, const sockaddr* addr, socklen_t len) {
    const auto given = endpoint_of(addr, len);
    if (!given) return Placement::kernel;
    const Endpoint& to = *given;
    if (is_loopback(to) || to.addr.is_any()) return Placement::kernel;
    std::unique_lock lock(mutex_);
    if (daemon_gone_) return Placement::kernel;
    IpOptions ip = kernel_ip_options(fd, socket_family(fd));
    auto label = asked_flow_label(ip, fd, addr, len);
    if (!label.ok()) return Errno{label.error()};
    ip.asked_label = label.value();
    const auto bound = bound_to_interface(fd, to.addr.family);
    if (!bound) return Placement::kernel;
    ProofCopy proof(fd);
    Socket& s = allocate(StreamState{});
    import_kernel_options(fd, s.options);
    s.ip = ip;
    s.options.marks = marks_of(ip);
    auto made = loop_->connect_socket(proof.fd(), to.addr, to.port, *this, &s.options);
    if (!made) {
        recycle(s);
        const auto& failure = made.error();
        if (failure.error == client::Error::unreachable) {  // not through this interface
            log_line(2, "connect to " + describe(to) + ": " + failure.message() + ", kernel");
            return Placement::kernel;
        }
        return refuse("connect to " + describe(to) + ": " + failure.message(), errno_for(failure.error));
    }
    utcp::Connection& c = *made.value();
    c.context = &s;
    s.state = StreamState{.conn = &c, .tuple = c.tuple(), .connecting = true};
    if (auto taken = take_number(s, fd); !taken) {
        release(s);
        return Errno{taken.error()};
    }
    after_call(lock);
    refresh(s);
    log_line(2, "connecting to " + describe(to) + " over UTCP");
    if (s.nonblocking) return Errno{EINPROGRESS};
    const int timeout = s.send_timeout_ms;
    expose(s);
    lock.unlock();
    if (const int err = wait(fd, POLLOUT, timeout); err != 0) return Errno{err == EAGAIN ? EINPROGRESS : err};
    lock.lock();
    if (live(fd) != &s) return Errno{EBADF};  // closed meanwhile
    if (const int error = s.take_pending_error(); error != 0) return Errno{error};
    return Placement::utcp;
}

base::Result<Placement, Errno> Runtime::place_datagram(int fd, wire::IpFamily toward) {
    std::unique_lock lock(mutex_);
    if (daemon_gone_) return Placement::kernel;
    const auto bound = bound_to_interface(fd, toward);
    if (!bound) return Placement::kernel;
    DatagramState udp;
    udp.proof_fd = ::fcntl(fd, F_DUPFD_CLOEXEC, fd_table().own_fd_floor());
    Socket& s = allocate(std::move(udp));
    s.options.recv_buffer = 212992;  // Linux's default SO_RCVBUF
    s.ip = kernel_ip_options(fd, socket_family(fd));
    s.options.marks = marks_of(s.ip);
    auto& placed = std::get<DatagramState>(s.state);
    auto made = loop_->udp_bind_socket(placed.proof_fd, *this);
    if (!made) {
        recycle(s);
        return refuse("UDP on " + describe(*bound) + ": " + made.error().message(), errno_for(made.error().error));
    }
    placed.claim = made.value();
    placed.local = Endpoint{bound->addr, placed.claim.port};
    placed.v4_error = family_error(fd, wire::IpFamily::v4);
    placed.v6_error = family_error(fd, wire::IpFamily::v6);
    if (auto taken = take_number(s, fd); !taken) {
        release(s);
        return Errno{taken.error()};
    }
    datagram_ports_[placed.claim.port] = &s;
    refresh(s);
    log_line(2, "UDP on " + describe(placed.local) + " over UTCP");
    return Placement::utcp;
}

void Runtime::set_nonblocking(int fd, bool on) {
    std::unique_lock lock(mutex_);
    if (Socket* s = live(fd)) s->nonblocking = on;
}

base::Result<int, Errno> Runtime::connect_again(int fd) {
    std::unique_lock lock(mutex_);
    Socket* s = live(fd);
    if (!s) return Errno{EBADF};
    if (const auto* stream = s->as<StreamState>(); stream && stream->connecting) return Errno{EALREADY};
    if (const int error = s->take_pending_error(); error != 0) return Errno{error};
    return Errno{EISCONN};
}

base::Result<int, Errno> Runtime::connect_datagram(int fd, const sockaddr* to, socklen_t len) {
    std::unique_lock lock(mutex_);
    Socket* s = live(fd);
    auto* udp = s ? s->as<DatagramState>() : nullptr;
    if (!udp) return Errno{EBADF};
    if (to && len >= static_cast<socklen_t>(sizeof(sa_family_t)) && to->sa_family == AF_UNSPEC) {
        udp->peer.reset();
        s->ip.asked_label.reset();
        return 0;
    }
    const auto peer = endpoint_of(to, len);
    if (!peer) return Errno{EAFNOSUPPORT};
    if (const int error = udp->error_toward(*peer); error != 0) return Errno{error};
    auto label = asked_flow_label(s->ip, udp->proof_fd, to, len);
    if (!label.ok()) return Errno{label.error()};
    udp->peer = peer;
    s->ip.asked_label = label.value();
    return 0;
}

namespace {

// Closes a connection as Linux does: a reset for one with unread data, or with a zero
// linger; else the orderly close.
void close_connection(utcp::Connection& c, const std::optional<linger>& linger_option) {
    c.context = nullptr;
    c.handler = nullptr;
    const bool zero_linger = linger_option && linger_option->l_onoff && linger_option->l_linger == 0;
    if (zero_linger || c.readable() > 0) {
        c.abort();
    } else {
        c.close();
    }
}

}  // namespace

void Runtime::release(Socket& s) {
    std::visit(Overloaded{
                   [&](const DatagramState& udp) {
                       loop_->stack().udp_unbind(udp.claim.port);
                       (void)loop_->control().release(udp.claim);
                       datagram_ports_.erase(udp.claim.port);
                   },
                   [&](const ListenerState& listening) {
                       std::erase(listeners_, &s);
                       if (listening_on(listening.listener)) return;  // a SO_REUSEPORT sibling still is
                       utcp::Listener& l = *listening.listener;
                       if (loop_->stack().port_in_use(l.port)) {
                           // Its connections keep the claim, and new ones go to other members:
                           // a shared claim's SYNs already on their way here go unanswered.
                           (void)loop_->control().drain(listening.claim);
                           if (listening.adopted || s.reuse_port) {
                               stop_accepting(l);
                               lingering_claims_.push_back({listening.claim, &l});
                           } else {
                               loop_->stack().unlisten(l.port);
                               lingering_claims_.push_back({listening.claim, nullptr});
                           }
                       } else {
                           loop_->stack().unlisten(l.port);
                           // After a fork the claim may be the child's now: the daemon then answers not_found.
                           (void)loop_->control().release(listening.claim);
                       }
                   },
                   [&](const StreamState& stream) {
                       if (stream.conn) close_connection(*stream.conn, s.linger_option);
                   },
                   [](const Unused&) {},
               },
               s.state);
    recycle(s);
}

bool Runtime::release_lingering_claim(const Endpoint& bound) {
    std::unique_lock lock(mutex_);
    return release_lingering_claims_on(bound);
}

bool Runtime::release_lingering_claims_on(const Endpoint& bound) {
    const wire::IpAddr& addr = bound.addr;
    const auto before = lingering_claims_.size();
    std::erase_if(lingering_claims_, [&](const LingeringClaim& lingering) {
        const client::Claim& claim = lingering.claim;
        const bool same = claim.port == bound.port && (claim.addr == addr || addr.is_any() || claim.addr.is_any());
        if (!same) return false;
        release_lingering(lingering);
        log_line(2, "a new socket on " + describe(bound) +
                        ": the closed listener's claim goes, with the steering of its last connections");
        return true;
    });
    return lingering_claims_.size() != before;
}

bool Runtime::listening_on(const utcp::Listener* listener) const {
    return std::ranges::any_of(
        listeners_, [listener](const Socket* other) { return std::get<ListenerState>(other->state).listener == listener; });
}

void Runtime::close(int fd) {
    std::unique_lock lock(mutex_);
    Socket* s = live(fd);
    fd_table().set_socket(fd, nullptr);
    if (!s || --s->references > 0) return;
    if (const auto* stream = s->as<StreamState>(); stream && stream->shared && stream->conn) {
        closing_shared_.push_back(s);  // settled once the number is closed (handoff.cpp)
        closing_shared_count_.store(static_cast<int>(closing_shared_.size()), std::memory_order_relaxed);
        return;
    }
    release(*s);
    after_call(lock);
}

void Runtime::duplicate(int from, int to) {
    std::unique_lock lock(mutex_);
    Socket* s = live(from);
    if (!s) return;
    ++s->references;
    fd_table().set_socket(to, s);
}

}  // namespace ms::posix
