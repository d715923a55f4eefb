// Contract: the readiness calls of the preload library. epoll_wait and its kin do the
// stack's receive work and report the UTCP sockets of the program's sets from the
// library's part of each set (posix/epoll_sets.hpp); epoll_ctl of a UTCP socket changes
// only that part. poll, ppoll, select and pselect go to the kernel, which must then see
// what they watch: a UTCP socket's pair turns visible (posix/readiness.hpp), and a set
// whose UTCP part the library keeps becomes the kernel's whole, as it does when another
// epoll set watches it.
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/select.h>

#include <atomic>
#include <ctime>

#include "preload/guarded.hpp"
#include "preload/interposition.hpp"

using namespace ms::preload;

namespace {

// The kernel is about to watch `fd` for the program.
void show_to_kernel(int fd) {
    if (Socket* s = ours(fd); s && !Runtime::inherited(*s)) {
        InsideLibrary inside;
        s->owner->make_visible(fd);
    } else if (fd_table().pending(fd) & pending::epoll_set) {
        if (Runtime* rt = Runtime::current()) {
            InsideLibrary inside;
            rt->hand_epoll_set_to_kernel(fd);
        }
    }
}

// More entries than the descriptor table holds (the hard RLIMIT_NOFILE, at most 2^20):
// the kernel refuses the call (EINVAL), and the entries are not read.
void show_polled(const pollfd* fds, nfds_t n) {
    if (ms::posix::t_inside_library || !fds || n == 0 || n > (nfds_t{1} << 20) ||
        !fd_table().in_range(static_cast<int>(n) - 1)) {
        return;
    }
    for (nfds_t i = 0; i < n; ++i) show_to_kernel(fds[i].fd);
}

void show_selected(int n, const fd_set* read, const fd_set* write, const fd_set* except) {
    if (ms::posix::t_inside_library) return;
    for (int fd = 0; fd < n && fd < FD_SETSIZE; ++fd) {
        if ((read && FD_ISSET(fd, read)) || (write && FD_ISSET(fd, write)) || (except && FD_ISSET(fd, except))) {
            show_to_kernel(fd);
        }
    }
}

// The highest number an epoll set of the program had (forget_inherited_epoll_sets).
std::atomic<int> g_highest_epoll_set{-1};

// A set the program made: the library keeps its UTCP part.
int note_epoll_set(int fd) {
    if (fd < 0 || ms::posix::t_inside_library) return fd;
    fd_table().set_pending(fd, pending::epoll_set);
    int seen = g_highest_epoll_set.load(std::memory_order_relaxed);
    while (fd > seen && !g_highest_epoll_set.compare_exchange_weak(seen, fd, std::memory_order_relaxed)) {
    }
    return fd;
}

// epoll_pwait2's timeout in whole milliseconds, rounded up (-1: none).
int timeout_ms(const timespec* t) {
    if (!t) return -1;
    const long long ms = static_cast<long long>(t->tv_sec) * 1000 + (t->tv_nsec + 999'999) / 1'000'000;
    return ms > INT32_MAX ? INT32_MAX : static_cast<int>(ms);
}

}  // namespace

namespace ms::preload {

// In a forked child: the sets it inherited are shared with the parent, whose stack keeps
// their UTCP part; the child's own UTCP sockets join their kernel part, through their
// pairs, and the child's port joins them when it first waits there.
void forget_inherited_epoll_sets() {
    const int highest = g_highest_epoll_set.load(std::memory_order_relaxed);
    constexpr std::uint8_t kSetBits = pending::epoll_set | pending::watching_epoll;
    for (int fd = 0; fd <= highest; ++fd) {
        if (fd_table().pending(fd) & kSetBits) fd_table().set_pending(fd, fd_table().pending(fd) & ~kSetBits);
    }
}

}  // namespace ms::preload

extern "C" {

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

// With the runtime, the timeout counts in milliseconds (rounded up).
int epoll_pwait2(int epfd, epoll_event* events, int max, const timespec* timeout, const sigset_t* mask) {
    return ms::preload::guarded("epoll_pwait2", [&]() -> int {
        if (ms::posix::t_inside_library || !Runtime::current()) return NEXT(epoll_pwait2)(epfd, events, max, timeout, mask);
        return epoll_pwait(epfd, events, max, timeout_ms(timeout), mask);
    });
}

// A new epoll set: the library keeps its UTCP part (its number may have been another's).
int epoll_create1(int flags) {
    return ms::preload::guarded("epoll_create1", [&]() -> int { return note_epoll_set(NEXT(epoll_create1)(flags)); });
}

int epoll_create(int size) {
    return ms::preload::guarded("epoll_create", [&]() -> int { return note_epoll_set(NEXT(epoll_create)(size)); });
}

// A listener inherited across fork moves to this process when the child first watches it.
int epoll_ctl(int epfd, int op, int fd, epoll_event* event) {
    return ms::preload::guarded("epoll_ctl", [&]() -> int {
        if (ms::posix::t_inside_library) return NEXT(epoll_ctl)(epfd, op, fd, event);
        if (Socket* s = ours(fd); s && Runtime::inherited(*s) && op != EPOLL_CTL_DEL) (void)runtime_for(fd, *s);
        if (Socket* s = ours(fd); s && !Runtime::inherited(*s)) {
            return static_cast<int>(on_runtime(fd, [&](Runtime& rt) { return rt.epoll_control(epfd, op, fd, event); }));
        }
        if (op != EPOLL_CTL_DEL) show_to_kernel(fd);  // a set in a set
        return NEXT(epoll_ctl)(epfd, op, fd, event);
    });
}

int poll(pollfd* fds, nfds_t n, int timeout) {
    return ms::preload::guarded("poll", [&]() -> int {
        show_polled(fds, n);
        return NEXT(poll)(fds, n, timeout);
    });
}

int __poll_chk(pollfd* fds, nfds_t n, int timeout, size_t /*fdslen*/) { return poll(fds, n, timeout); }

int ppoll(pollfd* fds, nfds_t n, const timespec* timeout, const sigset_t* mask) {
    return ms::preload::guarded("ppoll", [&]() -> int {
        show_polled(fds, n);
        return NEXT(ppoll)(fds, n, timeout, mask);
    });
}

int __ppoll_chk(pollfd* fds, nfds_t n, const timespec* timeout, const sigset_t* mask, size_t /*fdslen*/) {
    return ppoll(fds, n, timeout, mask);
}

int select(int n, fd_set* read, fd_set* write, fd_set* except, timeval* timeout) {
    return ms::preload::guarded("select", [&]() -> int {
        show_selected(n, read, write, except);
        return NEXT(select)(n, read, write, except, timeout);
    });
}

int pselect(int n, fd_set* read, fd_set* write, fd_set* except, const timespec* timeout, const sigset_t* mask) {
    return ms::preload::guarded("pselect", [&]() -> int {
        show_selected(n, read, write, except);
        return NEXT(pselect)(n, read, write, except, timeout, mask);
    });
}

}  // extern "C"
