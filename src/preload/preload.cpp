// Contract: libmultistack-preload.so (docs/DESIGN.md §7, "Unmodified applications"). Loaded with
// LD_PRELOAD, it takes over the socket calls of an unmodified program: a TCP or UDP socket of
// AF_INET or AF_INET6 goes to UTCP (posix/runtime.hpp) when it listens or connects on the
// interface's address; every other descriptor, and every call the library makes itself
// (posix/reentry.hpp), goes straight to libc. Failures come back as -1 and Linux's
// errno. Symbols are looked up in the next object (RTLD_NEXT): libc, or another
// preloaded library. This file holds the socket calls; the descriptor calls
// (descriptor_hooks.cpp), the readiness calls (readiness_hooks.cpp: epoll, poll,
// select), the exec calls (exec_hooks.cpp), the other ways to read and write
// (io_paths.cpp) and SCM_RIGHTS (passed_rights.cpp) are beside it, with what they share
// in interposition.hpp.
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "posix/arriving.hpp"
#include "posix/fd_table.hpp"
#include "posix/reentry.hpp"
#include "posix/runtime.hpp"
#include "posix/sockaddr.hpp"
#include "preload/guarded.hpp"
#include "preload/interposition.hpp"

using namespace ms::preload;
namespace base = ms::base;

namespace {

// A pending UDP socket goes to UTCP (or stays with the kernel for good); true if on UTCP.
// An unbound one is bound to the interface's address of the family it sends `toward`.
bool place_datagram(int fd, ms::wire::IpFamily toward) {
    Runtime* rt = Runtime::get();
    if (rt) {
        InsideLibrary inside;
        auto placed = rt->place_datagram(fd, toward);
        if (placed.ok() && placed.value() == Placement::utcp) return true;
    }
    settle_in_kernel(fd);
    return false;
}

// The family of the address a socket is bound to (IPv4 if it cannot be read).
ms::wire::IpFamily bound_family(int fd) {
    InsideLibrary inside;
    const auto bound = ms::posix::bound_address(fd);
    return bound ? bound->addr.family : ms::wire::IpFamily::v4;
}

// sendto() on a pending UDP socket toward an address outside the host: it goes to UTCP.
bool places_on_first_send(int fd, const sockaddr* to, socklen_t len) {
    if (!is_pending_datagram(fd)) return false;
    const auto destination = ms::posix::endpoint_of(to, len);
    return destination && !ms::posix::is_loopback(*destination) && !bound_to_loopback(fd) &&
           place_datagram(fd, destination->addr.family);
}

long receive(int fd, std::span<const iovec> iov, int flags, ms::posix::MessageInfo* info = nullptr) {
    return on_runtime(fd, [&](Runtime& rt) { return rt.recv(fd, iov, flags, info); });
}

long transmit(int fd, std::span<const iovec> iov, int flags, ms::posix::MessageInfo* info = nullptr) {
    return on_runtime(fd, [&](Runtime& rt) { return rt.send(fd, iov, flags, info); });
}

// After a bind's EADDRINUSE: whether a closed listener's claim of this process held the
// port, and has gone.
bool released_lingering_claim(int fd, const sockaddr* addr, socklen_t len) {
    Runtime* rt = Runtime::current();
    const auto bound = ms::posix::endpoint_of(addr, len);
    if (!rt || !is_pending(fd) || !bound) return false;
    InsideLibrary inside;
    return rt->release_lingering_claim(*bound);
}

__attribute__((constructor)) void start() {
    (void)ms::posix::program_name();  // before the program can rewrite its argv (MULTISTACK_EXCLUDE)
    note_this_process();
    // The runtime a fork's prepare handler locked, for the parent's handler to unlock.
    static thread_local Runtime* forking = nullptr;
    ::pthread_atfork(
        [] {  // the parent, before: its connections may be the child's too
            forking = ms::posix::t_inside_library ? nullptr : Runtime::current();
            if (forking) {
                InsideLibrary inside;
                forking->prepare_fork();
            }
        },
        [] {
            if (Runtime* rt = std::exchange(forking, nullptr)) rt->after_fork_in_parent();
        },
        [] {
            forking = nullptr;
            note_this_process();
            forget_inherited_epoll_sets();
            Runtime::forget_after_fork();
        });
    take_over_exec_listeners();
    ms::posix::expect_exec_connections();
    // Registered before main(): it runs after the program's own exit handlers. What stdio
    // still buffers for a UTCP socket goes first (glibc flushes only after this handler).
    std::atexit([] {
        if (Runtime* rt = Runtime::current()) {
            std::fflush(nullptr);
            InsideLibrary inside;
            rt->drain_before_exit();
        }
    });
}

}  // namespace

extern "C" {

int socket(int domain, int type, int protocol) {
    return ms::preload::guarded("socket", [&]() -> int {
        const int fd = NEXT(socket)(domain, type, protocol);
        if (fd < 0 || ms::posix::t_inside_library) return fd;
        fd_table().set_socket(fd, nullptr);
        const int base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
        const bool inet = domain == AF_INET || domain == AF_INET6;
        const bool tcp = inet && base == SOCK_STREAM && (protocol == 0 || protocol == IPPROTO_TCP);
        const bool udp = inet && base == SOCK_DGRAM && (protocol == 0 || protocol == IPPROTO_UDP);
        fd_table().set_pending(fd, tcp ? pending::stream : udp ? pending::datagram : 0);
        return fd;
    });
}

int bind(int fd, const sockaddr* addr, socklen_t len) {
    return ms::preload::guarded("bind", [&]() -> int {
        if (ours(fd)) return static_cast<int>(fail(EINVAL));  // bound already
        const int r = NEXT(bind)(fd, addr, len);
        if (r == 0 && is_pending_datagram(fd)) {
            if (bound_to_loopback(fd)) {
                settle_in_kernel(fd);
            } else if (!place_datagram(fd, bound_family(fd)) && ms::posix::settings().require) {
                return static_cast<int>(fail(ENETDOWN));
            }
            return 0;
        }
        if (r == 0 || !(is_pending(fd) || is_pending_datagram(fd)) || errno != EADDRINUSE) return r;
        if (released_lingering_claim(fd, addr, len)) return NEXT(bind)(fd, addr, len);
        if (!(fd_table().pending(fd) & (pending::reuse_addr | pending::reuse_port))) return r;
        // The options the application asked for would have let the kernel bind: it gets them.
        settle_in_kernel(fd);
        return NEXT(bind)(fd, addr, len);
    });
}

int listen(int fd, int backlog) {
    return ms::preload::guarded("listen", [&]() -> int {
        if (Socket* s = ours(fd)) {  // listening already: Linux only changes the backlog
            return s->is<ListenerState>() ? 0 : static_cast<int>(fail(EINVAL));
        }
        if (is_pending(fd) && !bound_to_loopback(fd)) {
            if (Runtime* rt = Runtime::get()) {
                InsideLibrary inside;
                auto placed = rt->listen(fd, backlog);
                if (!placed.ok()) return static_cast<int>(fail(placed.error().code));
                if (placed.value() == Placement::utcp) return 0;
            } else if (ms::posix::settings().require) {
                return static_cast<int>(fail(ENETDOWN));
            }
            settle_in_kernel(fd);
        }
        return NEXT(listen)(fd, backlog);
    });
}

int accept4(int fd, sockaddr* addr, socklen_t* len, int flags) {
    return ms::preload::guarded("accept4", [&]() -> int {
        if (ours(fd)) return static_cast<int>(on_runtime(fd, [&](Runtime& rt) { return rt.accept(fd, addr, len, flags); }));
        const int r = NEXT(accept4)(fd, addr, len, flags);
        if (r >= 0 && !ms::posix::t_inside_library) {
            fd_table().set_socket(r, nullptr);
            fd_table().set_pending(r, 0);
        }
        return r;
    });
}

int accept(int fd, sockaddr* addr, socklen_t* len) { return accept4(fd, addr, len, 0); }

int connect(int fd, const sockaddr* addr, socklen_t len) {
    return ms::preload::guarded("connect", [&]() -> int {
        if (Socket* s = ours(fd)) {
            const bool datagram = s->is<DatagramState>();
            return static_cast<int>(on_runtime(
                fd, [&](Runtime& rt) { return datagram ? rt.connect_datagram(fd, addr, len) : rt.connect_again(fd); }));
        }
        if (places_on_first_send(fd, addr, len)) return connect(fd, addr, len);
        const auto to = ms::posix::endpoint_of(addr, len);
        if (is_pending(fd) && to && !ms::posix::is_loopback(*to) && !bound_to_loopback(fd)) {
            if (Runtime* rt = Runtime::get()) {
                InsideLibrary inside;
                auto placed = rt->connect(fd, addr, len);
                if (!placed.ok()) return static_cast<int>(fail(placed.error().code));
                if (placed.value() == Placement::utcp) return 0;
            } else if (ms::posix::settings().require) {
                return static_cast<int>(fail(ENETDOWN));
            }
            settle_in_kernel(fd);
        }
        return NEXT(connect)(fd, addr, len);
    });
}

ssize_t read(int fd, void* buf, size_t n) {
    return ms::preload::guarded("read", [&]() -> ssize_t {
        if (!ours(fd)) return NEXT(read)(fd, buf, n);
        const iovec v{buf, n};
        return receive(fd, {&v, 1}, 0);
    });
}

ssize_t __read_chk(int fd, void* buf, size_t n, size_t /*buflen*/) { return read(fd, buf, n); }

ssize_t write(int fd, const void* buf, size_t n) {
    return ms::preload::guarded("write", [&]() -> ssize_t {
        if (!ours(fd)) return NEXT(write)(fd, buf, n);
        const iovec v{const_cast<void*>(buf), n};
        return transmit(fd, {&v, 1}, 0);
    });
}

ssize_t readv(int fd, const iovec* iov, int count) {
    return ms::preload::guarded("readv", [&]() -> ssize_t {
        if (!ours(fd)) return NEXT(readv)(fd, iov, count);
        if (count < 0) return fail(EINVAL);
        return receive(fd, {iov, static_cast<std::size_t>(count)}, 0);
    });
}

ssize_t writev(int fd, const iovec* iov, int count) {
    return ms::preload::guarded("writev", [&]() -> ssize_t {
        if (!ours(fd)) return NEXT(writev)(fd, iov, count);
        if (count < 0) return fail(EINVAL);
        return transmit(fd, {iov, static_cast<std::size_t>(count)}, 0);
    });
}

ssize_t recv(int fd, void* buf, size_t n, int flags) {
    return ms::preload::guarded("recv", [&]() -> ssize_t {
        if (!ours(fd)) return NEXT(recv)(fd, buf, n, flags);
        const iovec v{buf, n};
        return receive(fd, {&v, 1}, flags);
    });
}

ssize_t __recv_chk(int fd, void* buf, size_t n, size_t /*buflen*/, int flags) { return recv(fd, buf, n, flags); }

ssize_t recvfrom(int fd, void* buf, size_t n, int flags, sockaddr* from, socklen_t* from_len) {
    return ms::preload::guarded("recvfrom", [&]() -> ssize_t {
        if (!ours(fd)) return NEXT(recvfrom)(fd, buf, n, flags, from, from_len);
        const iovec v{buf, n};
        ms::posix::MessageInfo info{.from = from, .from_len = from_len};
        return receive(fd, {&v, 1}, flags, &info);
    });
}

ssize_t __recvfrom_chk(int fd, void* buf, size_t n, size_t /*buflen*/, int flags, sockaddr* from, socklen_t* len) {
    return ms::preload::guarded("__recvfrom_chk", [&]() -> ssize_t { return recvfrom(fd, buf, n, flags, from, len); });
}

ssize_t send(int fd, const void* buf, size_t n, int flags) {
    return ms::preload::guarded("send", [&]() -> ssize_t {
        if (!ours(fd)) return NEXT(send)(fd, buf, n, flags);
        const iovec v{const_cast<void*>(buf), n};
        return transmit(fd, {&v, 1}, flags);
    });
}

// On a connected stream socket Linux ignores the address (or fails with EISCONN).
ssize_t sendto(int fd, const void* buf, size_t n, int flags, const sockaddr* to, socklen_t to_len) {
    return ms::preload::guarded("sendto", [&]() -> ssize_t {
        if (!ours(fd) && !places_on_first_send(fd, to, to_len)) return NEXT(sendto)(fd, buf, n, flags, to, to_len);
        const iovec v{const_cast<void*>(buf), n};
        ms::posix::MessageInfo info{.to = to, .to_len = to_len};
        return transmit(fd, {&v, 1}, flags, &info);
    });
}

ssize_t recvmsg(int fd, msghdr* msg, int flags) {
    return ms::preload::guarded("recvmsg", [&]() -> ssize_t {
        if (!ours(fd)) {
            const ssize_t got = NEXT(recvmsg)(fd, msg, flags);
            if (got >= 0 && !ms::posix::t_inside_library) adopt_passed_sockets(*msg);
            return got;
        }
        if (!msg || msg->msg_iovlen > IOV_MAX) return fail(EINVAL);
        msg->msg_controllen = 0;
        ms::posix::MessageInfo info{.from = static_cast<sockaddr*>(msg->msg_name),
                                    .from_len = msg->msg_name ? &msg->msg_namelen : nullptr};
        const ssize_t got = receive(fd, {msg->msg_iov, msg->msg_iovlen}, flags, &info);
        msg->msg_flags = info.flags_out;
        return got;
    });
}

ssize_t sendmsg(int fd, const msghdr* msg, int flags) {
    return ms::preload::guarded("sendmsg", [&]() -> ssize_t {
        const auto* to = msg ? static_cast<const sockaddr*>(msg->msg_name) : nullptr;
        if (!ours(fd) && !(msg && places_on_first_send(fd, to, msg->msg_namelen))) {
            if (!msg || msg->msg_controllen == 0 || ms::posix::t_inside_library) return NEXT(sendmsg)(fd, msg, flags);
            auto rights = passable_rights(*msg);
            if (!rights) return fail(rights.error().code);
            if (rights->empty()) return NEXT(sendmsg)(fd, msg, flags);
            msghdr passed = *msg;
            passed.msg_control = rights->data();
            return NEXT(sendmsg)(fd, &passed, flags);
        }
        if (!msg || msg->msg_iovlen > IOV_MAX) return fail(EINVAL);
        ms::posix::MessageInfo info{.to = to, .to_len = msg->msg_namelen};
        return transmit(fd, {msg->msg_iov, msg->msg_iovlen}, flags, &info);
    });
}

ssize_t sendfile(int out_fd, int in_fd, off_t* offset, size_t count) {
    return ms::preload::guarded("sendfile", [&]() -> ssize_t {
        if (!ours(out_fd)) return NEXT(sendfile)(out_fd, in_fd, offset, count);
        return on_runtime(out_fd, [&](Runtime& rt) { return rt.sendfile(out_fd, in_fd, offset, count); });
    });
}

ssize_t sendfile64(int out_fd, int in_fd, off_t* offset, size_t count) { return sendfile(out_fd, in_fd, offset, count); }

int shutdown(int fd, int how) {
    return ms::preload::guarded("shutdown", [&]() -> int {
        if (!ours(fd)) return NEXT(shutdown)(fd, how);
        return static_cast<int>(on_runtime(fd, [&](Runtime& rt) { return rt.shutdown(fd, how); }));
    });
}

int ioctl(int fd, unsigned long request, ...) {
    va_list ap;
    va_start(ap, request);
    void* arg = va_arg(ap, void*);
    va_end(ap);
    return ms::preload::guarded("ioctl", [&]() -> int {
        Socket* s = ours(fd);
        if (s && request == FIONBIO) {
            const int r = NEXT(ioctl)(fd, request, arg);
            if (r == 0 && arg && !Runtime::inherited(*s)) {
                InsideLibrary inside;
                s->owner->set_nonblocking(fd, *static_cast<const int*>(arg) != 0);
            }
            return r;
        }
        if (!s || (request != FIONREAD && request != TIOCOUTQ)) return NEXT(ioctl)(fd, request, arg);
        if (!arg) return static_cast<int>(fail(EFAULT));
        return static_cast<int>(on_runtime(fd, [&](Runtime& rt) {
            auto n = rt.queued_bytes(fd, request == TIOCOUTQ);
            if (!n.ok()) return n;
            *static_cast<int*>(arg) = n.value();
            return base::Result<int, Errno>(0);
        }));
    });
}

int getsockname(int fd, sockaddr* addr, socklen_t* len) {
    return ms::preload::guarded("getsockname", [&]() -> int {
        if (!ours(fd)) return NEXT(getsockname)(fd, addr, len);
        return static_cast<int>(on_runtime(fd, [&](Runtime& rt) { return rt.name(fd, false, addr, len); }));
    });
}

int getpeername(int fd, sockaddr* addr, socklen_t* len) {
    return ms::preload::guarded("getpeername", [&]() -> int {
        if (!ours(fd)) return NEXT(getpeername)(fd, addr, len);
        return static_cast<int>(on_runtime(fd, [&](Runtime& rt) { return rt.name(fd, true, addr, len); }));
    });
}

int getsockopt(int fd, int level, int name, void* value, socklen_t* len) {
    return ms::preload::guarded("getsockopt", [&]() -> int {
        Socket* s = ours(fd);
        if (!s) {
            if ((is_pending(fd) || is_pending_datagram(fd)) && level == SOL_SOCKET &&
                (name == SO_REUSEADDR || name == SO_REUSEPORT) && value && len) {
                const std::uint8_t bit = name == SO_REUSEADDR ? pending::reuse_addr : pending::reuse_port;
                const int v = (fd_table().pending(fd) & bit) ? 1 : 0;
                std::memcpy(value, &v, std::min<socklen_t>(*len, sizeof v));
                *len = std::min<socklen_t>(*len, sizeof v);
                return 0;
            }
            return NEXT(getsockopt)(fd, level, name, value, len);
        }
        const long got = on_runtime(fd, [&](Runtime& rt) { return rt.get_option(fd, level, name, value, len); });
        return static_cast<int>(report_unknown_option("getsockopt", fd, level, name, got));
    });
}

int setsockopt(int fd, int level, int name, const void* value, socklen_t len) {
    return ms::preload::guarded("setsockopt", [&]() -> int {
        Socket* s = ours(fd);
        if (!s) {
            // On a pending socket SO_REUSEADDR stays virtual (fd_table.hpp); SO_REUSEPORT is
            // applied too, so that the kernel decides who may share the port (the same uid),
            // and the daemon lets the holders of such sockets share the claim.
            if ((is_pending(fd) || is_pending_datagram(fd)) && level == SOL_SOCKET &&
                (name == SO_REUSEADDR || name == SO_REUSEPORT)) {
                if (!value || len < static_cast<socklen_t>(sizeof(int))) return static_cast<int>(fail(EINVAL));
                if (name == SO_REUSEPORT && NEXT(setsockopt)(fd, level, name, value, len) != 0) return -1;
                int v;
                std::memcpy(&v, value, sizeof v);
                const std::uint8_t bit = name == SO_REUSEADDR ? pending::reuse_addr : pending::reuse_port;
                const std::uint8_t bits = fd_table().pending(fd);
                fd_table().set_pending(fd, v ? (bits | bit) : (bits & ~bit));
                return 0;
            }
            return NEXT(setsockopt)(fd, level, name, value, len);
        }
        const long set = on_runtime(fd, [&](Runtime& rt) { return rt.set_option(fd, level, name, value, len); });
        return static_cast<int>(report_unknown_option("setsockopt", fd, level, name, set));
    });
}

// _exit() skips atexit: the connections the program closed still send first, as the
// kernel sends for a process that has gone (Runtime::drain_before_exit). A forked server's
// child (Python's ForkingMixIn) leaves so after its last write.
[[noreturn]] void _exit(int status) {
    Runtime* rt = ms::posix::t_inside_library || in_vfork_child() ? nullptr : Runtime::current();
    if (rt) {
        InsideLibrary inside;
        rt->drain_before_exit();
    }
    NEXT(_exit)(status);
    __builtin_unreachable();
}

[[noreturn]] void _Exit(int status) { _exit(status); }

}  // extern "C"
