// The calls on placed UTCP sockets: accept, receive, send, shutdown, names and queue
// sizes. Each takes the lock, tries once, and, where Linux would block, sleeps in poll()
// on the socket's own descriptor without the lock (runtime.hpp).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "posix/fd_table.hpp"
#include "posix/reentry.hpp"
#include "posix/runtime.hpp"
#include "posix/sockaddr.hpp"

namespace ms::posix {

namespace {

// What try_recv and try_send say when Linux would block.
constexpr int kWouldBlock = EAGAIN;

// Copies from the front of `from` into the iovecs, skipping `skip` bytes of them.
std::size_t scatter(wire::Bytes from, std::span<const iovec> iov, std::size_t skip) {
    std::size_t copied = 0;
    for (const iovec& v : iov) {
        if (skip >= v.iov_len) {
            skip -= v.iov_len;
            continue;
        }
        const std::size_t n = std::min(v.iov_len - skip, from.size() - copied);
        std::memcpy(static_cast<std::uint8_t*>(v.iov_base) + skip, from.data() + copied, n);
        copied += n;
        skip = 0;
        if (copied == from.size()) break;
    }
    return copied;
}

// The iovecs' `size` bytes as one span: the first iovec itself when it holds them all,
// else a copy in this thread's buffer (valid until the thread's next call).
wire::Bytes gathered(std::span<const iovec> iov, std::size_t size) {
    if (iov.empty()) return {};
    if (iov.front().iov_len == size) return {static_cast<const std::uint8_t*>(iov.front().iov_base), size};
    thread_local std::vector<std::uint8_t> buffer;
    buffer.resize(size);
    std::size_t at = 0;
    for (const iovec& v : iov) {
        std::memcpy(buffer.data() + at, v.iov_base, v.iov_len);
        at += v.iov_len;
    }
    return buffer;
}

// Drops the first `n` bytes that the iovecs describe (and the iovecs they empty).
void drop_front(std::vector<iovec>& rest, std::size_t n) {
    while (!rest.empty() && n >= rest.front().iov_len) {
        n -= rest.front().iov_len;
        rest.erase(rest.begin());
    }
    if (rest.empty()) return;
    rest.front().iov_base = static_cast<std::uint8_t*>(rest.front().iov_base) + n;
    rest.front().iov_len -= n;
}

}  // namespace

// Sleeps as Linux's blocking calls sleep. A read-side wait is a blocking recv(MSG_PEEK)
// on the application's end of the pair (a raw system call, past the library): the
// kernel restarts it after a signal whose handler has SA_RESTART, or fails it with
// EINTR, and times it out by SO_RCVTIMEO, which the library mirrors onto that end. A
// write-side wait polls, restarted after EINTR, until SO_SNDTIMEO.
int Runtime::wait(int fd, short events, int timeout_ms) {
    waiters_.fetch_add(1);
    ensure_port_watched();
    const int err = sleep_on(fd, events, timeout_ms);
    waiters_.fetch_sub(1);
    return err;
}

int Runtime::sleep_on(int fd, short events, int timeout_ms) {
    OutsideLibrary outside;
    if (events == POLLIN) {
        char token;
        const long n = ::syscall(SYS_recvfrom, fd, &token, 1, MSG_PEEK, nullptr, nullptr);
        return n >= 0 ? 0 : (errno == EWOULDBLOCK ? EAGAIN : errno);
    }
    for (;;) {
        pollfd p{fd, events, 0};
        const int n = ::poll(&p, 1, timeout_ms);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno;
        return n == 0 ? EAGAIN : 0;
    }
}

base::Result<int, Errno> Runtime::accept(int fd, sockaddr* addr, socklen_t* len, int flags) {
    for (;;) {
        std::unique_lock lock(mutex_);
        Socket* l = live(fd);
        if (!l) return Errno{EBADF};
        const auto* listening = l->as<ListenerState>();
        if (!listening) return Errno{EINVAL};
        const bool blocking = !l->nonblocking;
        if (utcp::Connection* c = loop_->stack().accept(*listening->listener)) {
            const utcp::FourTuple tuple = c->tuple();
            Socket& s = allocate(StreamState{.conn = c, .tuple = tuple});
            auto ready = pairs_.take(flags & (SOCK_CLOEXEC | SOCK_NONBLOCK), fd_table().own_fd_floor());
            if (!ready) {
                c->handler = nullptr;
                c->abort();
                recycle(s);
                after_call(lock);
                return Errno{ready.error()};
            }
            const int number = ready.value().app_fd();
            s.ready.emplace(std::move(ready.value()));
            s.references = 1;
            s.family = l->family;
            s.v6only = l->v6only;
            s.nonblocking = (flags & SOCK_NONBLOCK) != 0;
            s.options = c->options();
            s.ip = l->ip;  // its traffic class, as in Linux; the listener asked for no label
            // As in Linux, an accepted socket inherits the listener's timeouts.
            s.recv_timeout_ms = l->recv_timeout_ms;
            s.send_timeout_ms = l->send_timeout_ms;
            if (s.recv_timeout_ms >= 0) {
                const timeval t = to_timeval(s.recv_timeout_ms);
                ::setsockopt(number, SOL_SOCKET, SO_RCVTIMEO, &t, sizeof t);
                expose(s);
            }
            c->handler = this;
            c->context = &s;
            fd_table().set_pending(number, 0);
            fd_table().set_socket(number, &s);
            refresh(s);
            after_call(lock);
            copy_out(Endpoint{tuple.remote, tuple.remote_port}, s.family, addr, len);
            return number;
        }
        if (!blocking) return Errno{EAGAIN};
        expose(*l);
        lock.unlock();
        if (const int err = wait(fd, POLLIN, -1); err != 0) return Errno{err};
    }
}

base::Result<std::size_t, Errno> Runtime::try_recv(Socket& s, std::span<const iovec> iov, int flags) {
    auto* stream = s.as<StreamState>();
    if (!stream) return Errno{ENOTCONN};
    const bool peek = flags & MSG_PEEK;
    if (std::string& left = stream->leftover; !left.empty()) {
        const std::size_t n = scatter({reinterpret_cast<const std::uint8_t*>(left.data()), left.size()}, iov, 0);
        if (!peek) left.erase(0, n);
        refresh(s);
        return n;
    }
    if (stream->pending_error != 0) return Errno{std::exchange(stream->pending_error, 0)};
    if (!stream->conn || stream->read_shut) return std::size_t{0};
    if (stream->connecting) return Errno{kWouldBlock};
    utcp::Connection& c = *stream->conn;
    std::size_t got = 0;
    if (peek) {
        const utcp::SplitBytes data = c.peek();
        got = scatter(data.first, iov, 0);
        got += scatter(data.second, iov, got);
    } else {
        for (const iovec& v : iov) {
            const std::size_t n = c.recv({static_cast<std::uint8_t*>(v.iov_base), v.iov_len});
            got += n;
            if (n < v.iov_len) break;
        }
    }
    if (got == 0 && !c.peer_closed() && total_length(iov) > 0) return Errno{kWouldBlock};
    return got;
}

base::Result<std::size_t, Errno> Runtime::try_send(Socket& s, std::span<const iovec> iov) {
    auto* stream = s.as<StreamState>();
    if (!stream) return Errno{EPIPE};
    if (stream->pending_error != 0) return Errno{std::exchange(stream->pending_error, 0)};
    if (stream->connecting) return Errno{kWouldBlock};
    if (!stream->conn || stream->write_shut || stream->conn->user_closed()) return Errno{EPIPE};  // send() raises SIGPIPE
    utcp::Connection& c = *stream->conn;
    std::size_t sent = 0;
    for (const iovec& v : iov) {
        const std::size_t n = c.send({static_cast<const std::uint8_t*>(v.iov_base), v.iov_len});
        sent += n;
        if (n < v.iov_len) break;
    }
    if (sent == 0 && total_length(iov) > 0) return Errno{kWouldBlock};
    return sent;
}

base::Result<std::size_t, Errno> Runtime::recv(int fd, std::span<const iovec> iov, int flags, MessageInfo* info) {
    return transfer(fd, iov, flags, Direction::in, info);
}

base::Result<std::size_t, Errno> Runtime::send(int fd, std::span<const iovec> iov, int flags, MessageInfo* info) {
    auto sent = transfer(fd, iov, flags, Direction::out, info);
    if (!sent.ok() && sent.error().code == EPIPE && !(flags & MSG_NOSIGNAL)) {
        OutsideLibrary outside;  // without the lock: the handler may call the library
        ::raise(SIGPIPE);
    }
    return sent;
}

// One datagram per call; MSG_TRUNC says it did not fit (and, asked for, returns its size).
base::Result<std::size_t, Errno> Runtime::try_recv_datagram(DatagramState& udp, int family, std::span<const iovec> iov,
                                                            int flags, MessageInfo* info) {
    if (udp.inbox.empty()) return Errno{kWouldBlock};
    const Datagram& d = udp.inbox.front();
    const std::size_t copied = scatter(d.bytes, iov, 0);
    const std::size_t size = d.bytes.size();
    if (info) {
        if (copied < size) info->flags_out |= MSG_TRUNC;
        copy_out(d.from, family, info->from, info->from_len);
    }
    if (!(flags & MSG_PEEK)) {
        udp.inbox_bytes -= size;
        udp.inbox.pop_front();
    }
    return (flags & MSG_TRUNC) ? size : copied;
}

base::Result<std::size_t, Errno> Runtime::try_send_datagram(const Socket& s, std::span<const iovec> iov, MessageInfo* info) {
    const auto& udp = std::get<DatagramState>(s.state);
    std::optional<Endpoint> to = udp.peer;
    IpOptions ip = s.ip;  // connect()'s label, or sendto()'s own
    if (info && info->to) {
        to = endpoint_of(info->to, info->to_len);
        if (!to) return Errno{EAFNOSUPPORT};
        auto label = asked_flow_label(ip, udp.proof_fd, info->to, info->to_len);
        if (!label.ok()) return Errno{label.error()};
        ip.asked_label = label.value();
    }
    if (!to) return Errno{EDESTADDRREQ};
    if (const int error = udp.error_toward(*to); error != 0) return Errno{error};
    const std::size_t size = total_length(iov);
    const std::size_t headers = to->addr.family == wire::IpFamily::v6 ? 48 : 28;
    if (size + headers > loop_->stack().config().mtu) return Errno{EMSGSIZE};  // UTCP sends with DF set
    if (is_loopback(*to)) return Errno{ENETUNREACH};  // a UTCP socket reaches the interface only
    if (!loop_->stack().udp_send(udp.claim.port, to->addr, to->port, gathered(iov, size), marks_of(ip))) {
        return Errno{loop_->tx_full() ? ENOBUFS : EHOSTUNREACH};
    }
    return size;
}

base::Result<std::size_t, Errno> Runtime::try_transfer(Socket& s, std::span<const iovec> iov, int flags, Direction direction,
                                                       MessageInfo* info) {
    const bool sending = direction == Direction::out;
    if (auto* udp = s.as<DatagramState>()) {
        return sending ? try_send_datagram(s, iov, info) : try_recv_datagram(*udp, s.family, iov, flags, info);
    }
    return sending ? try_send(s, iov) : try_recv(s, iov, flags);
}

// As Linux: a blocking send returns once every byte is queued (or an error ends it); a
// blocking receive returns what is there, or waits for all with MSG_WAITALL.
base::Result<std::size_t, Errno> Runtime::transfer(int fd, std::span<const iovec> iov, int flags, Direction direction,
                                                   MessageInfo* info) {
    const bool sending = direction == Direction::out;
    bool wait_all = sending || ((flags & MSG_WAITALL) && !(flags & MSG_PEEK));
    std::size_t total = 0;
    std::vector<iovec> rest(iov.begin(), iov.end());
    for (;;) {
        std::unique_lock lock(mutex_);
        Socket* s = live(fd);
        if (!s) return Errno{EBADF};
        const bool blocking = !s->nonblocking && !(flags & MSG_DONTWAIT);
        const bool datagram = s->is<DatagramState>();
        wait_all = wait_all && !datagram;  // a datagram is one call's whole message
        auto moved = try_transfer(*s, rest, flags, direction, info);
        if (moved.ok() && moved.value() > 0) after_call(lock);
        refresh(*s);
        if (!moved.ok() && moved.error().code != kWouldBlock)
            return total > 0 ? base::Result<std::size_t, Errno>(total) : moved;
        if (moved.ok()) {
            total += moved.value();
            if (const auto* stream = s->as<StreamState>(); stream && !sending && info && info->from) {
                copy_out(Endpoint{stream->tuple.remote, stream->tuple.remote_port}, s->family, info->from, info->from_len);
            }
            if (datagram || rest.empty()) return total;
            drop_front(rest, moved.value());
            if (rest.empty() || !wait_all || moved.value() == 0) return total;
        }
        const int timeout = sending ? s->send_timeout_ms : s->recv_timeout_ms;
        if (!blocking) return total > 0 ? base::Result<std::size_t, Errno>(total) : Errno{EAGAIN};
        expose(*s);
        lock.unlock();
        if (const int err = wait(fd, sending ? POLLOUT : POLLIN, timeout); err != 0) {
            return total > 0 ? base::Result<std::size_t, Errno>(total) : Errno{err};
        }
    }
}

// Reads the file in chunks and sends them; the file offset (or *offset) moves by what
// was sent. Blocking sockets send it all, as Linux's sendfile does.
base::Result<std::size_t, Errno> Runtime::sendfile(int fd, int in_fd, off_t* offset, std::size_t count) {
    off_t position = offset ? *offset : ::lseek(in_fd, 0, SEEK_CUR);
    if (position < 0) return Errno{errno == ESPIPE ? EINVAL : errno};
    // One buffer per thread, made once: sendfile is on a server's hot path.
    thread_local std::vector<std::uint8_t> chunk(256 * 1024);
    std::size_t done = 0;
    while (done < count) {
        const ssize_t got = ::pread(in_fd, chunk.data(), std::min(chunk.size(), count - done), position);
        if (got < 0) {
            if (done > 0) break;
            return Errno{errno};
        }
        if (got == 0) break;
        const iovec v{chunk.data(), static_cast<std::size_t>(got)};
        auto sent = send(fd, {&v, 1}, 0);
        if (!sent.ok()) {
            if (done > 0) break;
            return sent;
        }
        done += sent.value();
        position += static_cast<off_t>(sent.value());
        if (sent.value() < static_cast<std::size_t>(got)) break;
    }
    if (offset) {
        *offset = position;
    } else {
        ::lseek(in_fd, position, SEEK_SET);
    }
    return done;
}

base::Result<int, Errno> Runtime::shutdown(int fd, int how) {
    std::unique_lock lock(mutex_);
    Socket* s = live(fd);
    if (!s) return Errno{EBADF};
    if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR) return Errno{EINVAL};
    auto* stream = s->as<StreamState>();
    if (!stream || stream->connecting) return Errno{ENOTCONN};
    if (how != SHUT_WR) stream->read_shut = true;
    if (how != SHUT_RD && !stream->write_shut) {
        stream->write_shut = true;
        if (stream->conn) stream->conn->shutdown_write();
    }
    after_call(lock);
    refresh(*s);
    return 0;
}

namespace {

// getsockname (peer false) or getpeername of a socket in each state: the address, or the errno.
struct NameOf {
    bool peer;
    base::Result<Endpoint, Errno> operator()(const ListenerState& l) const {
        if (peer) return Errno{ENOTCONN};
        return Endpoint{l.claim.addr, l.claim.port};
    }
    base::Result<Endpoint, Errno> operator()(const DatagramState& udp) const {
        if (!peer) return udp.local;
        if (!udp.peer) return Errno{ENOTCONN};
        return *udp.peer;
    }
    base::Result<Endpoint, Errno> operator()(const StreamState& stream) const {
        const utcp::FourTuple& t = stream.tuple;
        if (!peer) return Endpoint{t.local, t.local_port};
        if (!stream.conn || stream.connecting) return Errno{ENOTCONN};
        return Endpoint{t.remote, t.remote_port};
    }
    base::Result<Endpoint, Errno> operator()(const Unused&) const { return Errno{EBADF}; }
};

// FIONREAD (outgoing false) or SIOCOUTQ of a socket in each state.
struct QueuedOf {
    bool outgoing;
    base::Result<int, Errno> operator()(const ListenerState&) const { return Errno{EINVAL}; }
    base::Result<int, Errno> operator()(const DatagramState& udp) const {  // Linux: the size of the next datagram
        return outgoing || udp.inbox.empty() ? 0 : static_cast<int>(udp.inbox.front().bytes.size());
    }
    base::Result<int, Errno> operator()(const StreamState& stream) const {
        if (!stream.conn) return outgoing ? 0 : static_cast<int>(stream.leftover.size());
        const std::size_t n = outgoing ? stream.conn->unsent_or_unacked() : stream.conn->readable();
        return static_cast<int>(std::min<std::size_t>(n, INT32_MAX));
    }
    base::Result<int, Errno> operator()(const Unused&) const { return Errno{EBADF}; }
};

}  // namespace

base::Result<int, Errno> Runtime::name(int fd, bool peer, sockaddr* addr, socklen_t* len) {
    std::unique_lock lock(mutex_);
    Socket* s = live(fd);
    if (!s) return Errno{EBADF};
    const base::Result<Endpoint, Errno> named = std::visit(NameOf{peer}, s->state);
    if (!named) return Errno{named.error()};
    copy_out(named.value(), s->family, addr, len);
    return 0;
}

base::Result<int, Errno> Runtime::queued_bytes(int fd, bool outgoing) {
    std::unique_lock lock(mutex_);
    Socket* s = live(fd);
    if (!s) return Errno{EBADF};
    return std::visit(QueuedOf{outgoing}, s->state);
}

}  // namespace ms::posix
