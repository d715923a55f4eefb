// Contract: libmultistack-preload.so (docs/DESIGN.md §7, "Unmodified applications"). Loaded with
// LD_PRELOAD, it takes over the socket calls of an unmodified program: a TCP socket of
// AF_INET goes to UTCP (posix/runtime.hpp) when it listens or connects on the
// interface's address; every other descriptor, and every call the library makes itself
// (posix/reentry.hpp), goes straight to libc. Failures come back as -1 and Linux's
// errno. Symbols are looked up in the next object (RTLD_NEXT): libc, or another
// preloaded library.
#include <dlfcn.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "posix/exec_listeners.hpp"
#include "posix/fd_table.hpp"
#include "posix/reentry.hpp"
#include "posix/runtime.hpp"
#include "posix/sockaddr.hpp"
#include "preload/guarded.hpp"

using ms::posix::DatagramState;
using ms::posix::Errno;
using ms::posix::fd_table;
using ms::posix::InsideLibrary;
using ms::posix::ListenerState;
using ms::posix::Placement;
using ms::posix::Runtime;
using ms::posix::Socket;
namespace base = ms::base;
namespace pending = ms::posix::pending;

namespace {

// libc's (the next object's) definition of `name`, looked up once.
#define NEXT(name)                                                                             \
    ([]() {                                                                                    \
        static const auto fn = reinterpret_cast<decltype(&::name)>(::dlsym(RTLD_NEXT, #name)); \
        return fn;                                                                             \
    }())

template <class T>
long finish(base::Result<T, Errno> r) {
    if (r.ok()) return static_cast<long>(r.value());
    errno = r.error().code;
    return -1;
}

long fail(int error) {
    errno = error;
    return -1;
}

// The UTCP socket `fd` names, for a call from the application (not the library itself).
Socket* ours(int fd) { return ms::posix::t_inside_library ? nullptr : fd_table().socket(fd); }

// The runtime for a call on one of our sockets. A listener inherited across fork moves
// to this process's stack first; an inherited connection cannot (EOPNOTSUPP, logged once).
Runtime* runtime_for(int fd, Socket& s) {
    if (!Runtime::inherited(s)) return s.owner;
    if (!s.is<ListenerState>()) {
        static std::atomic<bool> said{false};
        if (!said.exchange(true)) {
            ms::posix::log_line(1,
                                "a UTCP connection inherited from the parent process cannot be used in a child: EOPNOTSUPP");
        }
        return nullptr;
    }
    if (Runtime* rt = Runtime::get()) {
        InsideLibrary inside;
        if (rt->adopt_listener(fd, s).ok()) return rt;
    }
    static std::atomic<bool> said{false};
    if (!said.exchange(true)) {
        ms::posix::log_line(1, "a UTCP listener inherited from the parent process cannot move to this one: EOPNOTSUPP");
    }
    return nullptr;
}

sockaddr_in to_of(const sockaddr* addr) {
    sockaddr_in to;
    std::memcpy(&to, addr, sizeof to);
    return to;
}

bool bound_to_loopback(int fd) {
    InsideLibrary inside;
    const auto bound = ms::posix::bound_address(fd);
    return bound && ms::posix::is_loopback(*bound);
}

bool is_pending(int fd) { return !ms::posix::t_inside_library && (fd_table().pending(fd) & pending::stream); }

// The socket stays with the kernel for good: the options kept virtual are applied now.
void settle_in_kernel(int fd) {
    const std::uint8_t bits = fd_table().pending(fd);
    fd_table().set_pending(fd, 0);
    const int one = 1;
    if (bits & pending::reuse_addr) NEXT(setsockopt)(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bits & pending::reuse_port) NEXT(setsockopt)(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
}

// Runs `call` with the runtime of our socket on `fd`, inside the library: its result, or
// -1 and errno (EOPNOTSUPP for a connection inherited across fork, EBADF if it is gone).
template <class Call>
long on_runtime(int fd, Call&& call) {
    Socket* s = fd_table().socket(fd);
    Runtime* rt = s ? runtime_for(fd, *s) : nullptr;
    if (!rt) return fail(s ? EOPNOTSUPP : EBADF);
    InsideLibrary inside;
    return finish(call(*rt));
}

long receive(int fd, std::span<const iovec> iov, int flags, ms::posix::MessageInfo* info = nullptr) {
    return on_runtime(fd, [&](Runtime& rt) { return rt.recv(fd, iov, flags, info); });
}

long transmit(int fd, std::span<const iovec> iov, int flags, ms::posix::MessageInfo* info = nullptr) {
    return on_runtime(fd, [&](Runtime& rt) { return rt.send(fd, iov, flags, info); });
}

bool is_pending_datagram(int fd) { return !ms::posix::t_inside_library && (fd_table().pending(fd) & pending::datagram); }

// A pending UDP socket goes to UTCP (or stays with the kernel for good); true if on UTCP.
bool place_datagram(int fd) {
    Runtime* rt = Runtime::get();
    if (rt) {
        InsideLibrary inside;
        auto placed = rt->place_datagram(fd);
        if (placed.ok() && placed.value() == Placement::utcp) return true;
    }
    settle_in_kernel(fd);
    return false;
}

// sendto() on a pending UDP socket toward an address outside the host: it goes to UTCP.
bool places_on_first_send(int fd, const sockaddr* to, socklen_t len) {
    return is_pending_datagram(fd) && to && len >= static_cast<socklen_t>(sizeof(sockaddr_in)) && to->sa_family == AF_INET &&
           !ms::posix::is_loopback(to_of(to)) && !bound_to_loopback(fd) && place_datagram(fd);
}

// The process the library's memory belongs to: a vfork() child shares its parent's until
// it execs, and must leave the parent's tables alone (it only closes descriptors).
std::atomic<pid_t> g_process{0};
bool in_vfork_child() { return ::getpid() != g_process.load(std::memory_order_relaxed); }

// After a bind's EADDRINUSE: whether a closed listener's claim of this process held the
// port, and has gone.
bool released_lingering_claim(int fd, const sockaddr* addr, socklen_t len) {
    Runtime* rt = Runtime::current();
    if (!rt || !is_pending(fd) || !addr || len < static_cast<socklen_t>(sizeof(sockaddr_in)) || addr->sa_family != AF_INET) {
        return false;
    }
    InsideLibrary inside;
    return rt->release_lingering_claim(to_of(addr));
}

// Whether every control header of `msg` lies within its buffer, as the kernel checks
// before it reads one (else sendmsg fails with EINVAL there).
bool well_formed_control(const msghdr& msg) {
    if (!msg.msg_control && msg.msg_controllen > 0) return false;
    const auto* begin = static_cast<const char*>(msg.msg_control);
    const char* end = begin + msg.msg_controllen;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(const_cast<msghdr*>(&msg), c)) {
        const auto* at = reinterpret_cast<const char*>(c);
        if (c->cmsg_len < CMSG_LEN(0) || at + sizeof(cmsghdr) > end || c->cmsg_len > static_cast<std::size_t>(end - at)) {
            return false;
        }
    }
    return true;
}

// The descriptors an SCM_RIGHTS message carries (its headers well formed).
template <class Visit>
void for_each_right(const msghdr& msg, Visit&& visit) {
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(const_cast<msghdr*>(&msg), c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (std::size_t i = 0; i < count; ++i) {
            int fd;
            std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            visit(c, i, fd);
        }
    }
}

// The control buffer to send in place of `msg`'s when its SCM_RIGHTS name UTCP sockets:
// a listener goes as its kernel socket (the claim's proof), which the receiving
// process's library places on its own stack (Runtime::adopt_passed_listener). A UTCP
// connection cannot move to another process: EOPNOTSUPP, one log line. Empty when
// nothing names a UTCP socket.
base::Result<std::vector<char>, Errno> passable_rights(const msghdr& msg) {
    std::vector<char> control;
    if (!well_formed_control(msg)) return control;  // the kernel refuses it (EINVAL)
    int error = 0;
    for_each_right(msg, [&](cmsghdr* c, std::size_t i, int fd) {
        const Socket* s = fd_table().socket(fd);
        if (!s || error != 0) return;
        const auto* listening = s->as<ListenerState>();
        if (!listening || listening->proof_fd < 0) {
            ms::posix::log_line(1, "a UTCP connection cannot be passed to another process (SCM_RIGHTS): EOPNOTSUPP");
            error = EOPNOTSUPP;
            return;
        }
        if (control.empty()) {
            const auto* first = static_cast<const char*>(msg.msg_control);
            control.assign(first, first + msg.msg_controllen);
        }
        const auto offset = reinterpret_cast<const char*>(CMSG_DATA(c)) - static_cast<const char*>(msg.msg_control);
        std::memcpy(control.data() + offset + i * sizeof(int), &listening->proof_fd, sizeof(int));
    });
    if (error != 0) return Errno{error};
    return control;
}

// After a recvmsg(): the TCP sockets an SCM_RIGHTS message brought that are bound and
// neither listening nor connected may be a UTCP listener another process passed.
void adopt_passed_listeners(const msghdr& msg) {
    if (msg.msg_controllen == 0 || in_vfork_child() || !well_formed_control(msg)) return;
    for_each_right(msg, [](cmsghdr*, std::size_t, int fd) {
        InsideLibrary inside;
        int domain = 0, type = 0, listening = 1;
        socklen_t len = sizeof domain;
        if (::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0 || domain != AF_INET) return;
        len = sizeof type;
        if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) return;
        len = sizeof listening;
        if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || listening) return;
        sockaddr_in peer{};
        len = sizeof peer;
        if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) == 0 || errno != ENOTCONN) return;
        if (Runtime* rt = Runtime::get()) (void)rt->place_received_listener(fd, SOMAXCONN, ms::ctl::ClaimRole::passed);
    });
}

// A descriptor number stops naming what it named (close, or the target of dup2).
void forget(int fd) {
    Socket* s = fd_table().socket(fd);
    if (!s && fd_table().pending(fd) == 0) return;
    if (in_vfork_child()) return;  // the memory is the parent's: its sockets stay as they are
    if (s && Runtime::inherited(*s)) {
        fd_table().set_socket(fd, nullptr);  // the parent's stack is not ours to touch
    } else if (s) {
        InsideLibrary inside;
        s->owner->close(fd);
    }
    fd_table().set_pending(fd, 0);
}

void after_duplicate(int from, int to) {
    if (to < 0 || (!fd_table().socket(from) && fd_table().pending(from) == 0) || in_vfork_child()) return;
    if (Socket* s = fd_table().socket(from); s && !Runtime::inherited(*s)) {
        InsideLibrary inside;
        s->owner->duplicate(from, to);
    } else if (is_pending(from)) {
        settle_in_kernel(from);  // two numbers for one pending socket: it stays with the kernel
    }
}

void take_over_exec_listeners();

__attribute__((constructor)) void start() {
    g_process.store(::getpid());
    ::pthread_atfork(nullptr, nullptr, [] {
        g_process.store(::getpid());
        Runtime::forget_after_fork();
    });
    take_over_exec_listeners();
}

// Whether an environment loads this library into the new image.
bool loads_library(char* const envp[]) {
    for (char* const* e = envp; e && *e; ++e) {
        if (std::strncmp(*e, "LD_PRELOAD=", 11) == 0 && std::strstr(*e, "libmultistack-preload")) return true;
    }
    return false;
}

// Runs `exec` (an exec call of libc's that takes an environment) with the program's UTCP
// listeners handed to the new image (posix/exec_listeners.hpp); puts them back if it fails.
// A vfork() child shares its parent's memory, so it execs with nothing handed over.
template <class Exec>
int exec_with_listeners(char* const envp[], Exec&& exec) {
    if (ms::posix::t_inside_library || in_vfork_child()) return exec(envp);
    InsideLibrary inside;
    auto handed = ms::posix::ExecListeners::prepare(envp, loads_library(envp));
    const int r = exec(handed.envp());
    const int error = errno;
    handed.undo();
    errno = error;
    return r;
}

// execl, execle and execlp: their variadic arguments as an argv (the first is `arg`).
std::vector<char*> variadic_argv(const char* arg, va_list& args) {
    std::vector<char*> argv{const_cast<char*>(arg)};
    while (argv.back()) argv.push_back(va_arg(args, char*));
    return argv;
}

}  // namespace

extern "C" {

int socket(int domain, int type, int protocol) {
    return ms::preload::guarded("socket", [&]() -> int {
        const int fd = NEXT(socket)(domain, type, protocol);
        if (fd < 0 || ms::posix::t_inside_library) return fd;
        fd_table().set_socket(fd, nullptr);
        const int base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
        const bool tcp = domain == AF_INET && base == SOCK_STREAM && (protocol == 0 || protocol == IPPROTO_TCP);
        const bool udp = domain == AF_INET && base == SOCK_DGRAM && (protocol == 0 || protocol == IPPROTO_UDP);
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
            } else if (!place_datagram(fd) && ms::posix::settings().require) {
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
        if (is_pending(fd) && addr && len >= static_cast<socklen_t>(sizeof(sockaddr_in)) && addr->sa_family == AF_INET &&
            !ms::posix::is_loopback(to_of(addr)) && !bound_to_loopback(fd)) {
            if (Runtime* rt = Runtime::get()) {
                InsideLibrary inside;
                auto placed = rt->connect(fd, to_of(addr));
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
            if (got >= 0 && !ms::posix::t_inside_library) adopt_passed_listeners(*msg);
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

int close(int fd) {
    return ms::preload::guarded("close", [&]() -> int {
        if (!ms::posix::t_inside_library) forget(fd);
        return NEXT(close)(fd);
    });
}

int close_range(unsigned first, unsigned last, int flags) {
    return ms::preload::guarded("close_range", [&]() -> int {
        if (!ms::posix::t_inside_library && !(flags & CLOSE_RANGE_CLOEXEC)) {
            for (unsigned fd = first; fd <= last && fd_table().in_range(static_cast<int>(fd)); ++fd) {
                forget(static_cast<int>(fd));
            }
        }
        return NEXT(close_range)(first, last, flags);
    });
}

int dup(int fd) {
    return ms::preload::guarded("dup", [&]() -> int {
        const int r = NEXT(dup)(fd);
        if (!ms::posix::t_inside_library) after_duplicate(fd, r);
        return r;
    });
}

// The number `to` named something else until the kernel's dup succeeded: it forgets that
// only then (a failed dup leaves it as it was).
int dup3(int from, int to, int flags) {
    return ms::preload::guarded("dup3", [&]() -> int {
        if (ms::posix::t_inside_library) return NEXT(dup3)(from, to, flags);
        const int r = NEXT(dup3)(from, to, flags);
        if (r >= 0) {
            forget(to);
            after_duplicate(from, r);
        }
        return r;
    });
}

int dup2(int from, int to) {
    return ms::preload::guarded("dup2", [&]() -> int {
        if (ms::posix::t_inside_library || from == to) return NEXT(dup2)(from, to);
        const int r = NEXT(dup2)(from, to);
        if (r >= 0) {
            forget(to);
            after_duplicate(from, r);
        }
        return r;
    });
}

int fcntl(int fd, int cmd, ...) {
    va_list ap;
    va_start(ap, cmd);
    void* arg = va_arg(ap, void*);
    va_end(ap);
    return ms::preload::guarded("fcntl", [&]() -> int {
        const int r = NEXT(fcntl)(fd, cmd, arg);
        if ((cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) && !ms::posix::t_inside_library) after_duplicate(fd, r);
        if (cmd == F_SETFL && r == 0) {
            if (Socket* s = ours(fd); s && !Runtime::inherited(*s)) {
                InsideLibrary inside;
                s->owner->set_nonblocking(fd, (reinterpret_cast<std::intptr_t>(arg) & O_NONBLOCK) != 0);
            }
        }
        return r;
    });
}

int fcntl64(int fd, int cmd, ...) {
    va_list ap;
    va_start(ap, cmd);
    void* arg = va_arg(ap, void*);
    va_end(ap);
    return ms::preload::guarded("fcntl64", [&]() -> int { return fcntl(fd, cmd, arg); });
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

// An application thread that waits in epoll does the stack's receive work itself
// (runtime.hpp, Polling).
int epoll_pwait(int epfd, epoll_event* events, int max, int timeout, const sigset_t* mask) {
    return ms::preload::guarded("epoll_pwait", [&]() -> int {
        Runtime* rt = ms::posix::t_inside_library ? nullptr : Runtime::current();
        if (!rt) return NEXT(epoll_pwait)(epfd, events, max, timeout, mask);
        InsideLibrary inside;
        return rt->epoll_wait_polling(epfd, events, max, timeout, mask, NEXT(epoll_pwait));
    });
}

int epoll_wait(int epfd, epoll_event* events, int max, int timeout) {
    return epoll_pwait(epfd, events, max, timeout, nullptr);
}

// A new epoll set: its number may have been another's (the port is not in this one).
int epoll_create1(int flags) {
    return ms::preload::guarded("epoll_create1", [&]() -> int {
        const int fd = NEXT(epoll_create1)(flags);
        if (fd >= 0 && !ms::posix::t_inside_library) fd_table().set_pending(fd, 0);
        return fd;
    });
}

int epoll_create(int size) {
    return ms::preload::guarded("epoll_create", [&]() -> int {
        const int fd = NEXT(epoll_create)(size);
        if (fd >= 0 && !ms::posix::t_inside_library) fd_table().set_pending(fd, 0);
        return fd;
    });
}

// A listener inherited across fork moves to this process when the child first watches it.
int epoll_ctl(int epfd, int op, int fd, epoll_event* event) {
    return ms::preload::guarded("epoll_ctl", [&]() -> int {
        if (op == EPOLL_CTL_ADD || op == EPOLL_CTL_MOD) {
            if (Socket* s = ours(fd); s && Runtime::inherited(*s)) (void)runtime_for(fd, *s);
        }
        return NEXT(epoll_ctl)(epfd, op, fd, event);
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
        return static_cast<int>(on_runtime(fd, [&](Runtime& rt) { return rt.get_option(fd, level, name, value, len); }));
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
        return static_cast<int>(on_runtime(fd, [&](Runtime& rt) { return rt.set_option(fd, level, name, value, len); }));
    });
}

int execve(const char* path, char* const argv[], char* const envp[]) {
    return ms::preload::guarded("execve", [&]() -> int {
        return exec_with_listeners(envp, [&](char* const* env) { return NEXT(execve)(path, argv, env); });
    });
}

int execv(const char* path, char* const argv[]) { return execve(path, argv, environ); }

int execvpe(const char* file, char* const argv[], char* const envp[]) {
    return ms::preload::guarded("execvpe", [&]() -> int {
        return exec_with_listeners(envp, [&](char* const* env) { return NEXT(execvpe)(file, argv, env); });
    });
}

int execvp(const char* file, char* const argv[]) { return execvpe(file, argv, environ); }

int execl(const char* path, const char* arg, ...) {
    va_list args;
    va_start(args, arg);
    const std::vector<char*> argv = variadic_argv(arg, args);
    va_end(args);
    return execve(path, argv.data(), environ);
}

int execlp(const char* file, const char* arg, ...) {
    va_list args;
    va_start(args, arg);
    const std::vector<char*> argv = variadic_argv(arg, args);
    va_end(args);
    return execvpe(file, argv.data(), environ);
}

int execle(const char* path, const char* arg, ...) {
    va_list args;
    va_start(args, arg);
    const std::vector<char*> argv = variadic_argv(arg, args);
    char* const* envp = va_arg(args, char* const*);
    va_end(args);
    return execve(path, argv.data(), envp);
}

}  // extern "C"

namespace {

// In a new image: the listeners an exec handed over listen again, on UTCP if this
// process has it (the same proof joins the claim), else on the kernel.
void take_over_exec_listeners() {
    std::vector<ms::posix::InheritedListener> handed;
    {
        InsideLibrary inside;
        handed = ms::posix::take_exec_listeners();
    }
    for (const auto& l : handed) {
        if (!l.owned) {  // the exec'ing process had inherited it: join, taking no new connection
            if (Runtime* rt = Runtime::get()) {
                InsideLibrary inside;
                (void)rt->place_received_listener(l.fd, static_cast<std::uint32_t>(l.backlog), ms::ctl::ClaimRole::draining);
            }
            continue;
        }
        int reuse_port = 0;
        socklen_t len = sizeof reuse_port;
        const bool shared = NEXT(getsockopt)(l.fd, SOL_SOCKET, SO_REUSEPORT, &reuse_port, &len) == 0 && reuse_port;
        fd_table().set_pending(l.fd, pending::stream | (shared ? pending::reuse_port : 0));
        if (listen(l.fd, l.backlog) != 0) ms::posix::log_line(1, "a listener handed over by exec cannot listen again");
    }
}

}  // namespace
