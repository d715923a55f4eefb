// Contract: the descriptor calls of the preload library (close, close_range, dup, dup2,
// dup3, fcntl): a number that stops naming a UTCP socket drops its reference, and a
// duplicated number names the same socket; a pending socket duplicated stays with the
// kernel, and so does an epoll set whose number is duplicated (posix/epoll_sets.hpp).
#include <fcntl.h>
#include <stdarg.h>
#include <unistd.h>

#include <cstdint>

#include "preload/guarded.hpp"
#include "preload/interposition.hpp"

using namespace ms::preload;

namespace {

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
    } else if (fd_table().pending(fd) & pending::epoll_set) {
        if (Runtime* rt = Runtime::current()) {
            InsideLibrary inside;
            rt->forget_epoll_set(fd);
        }
    }
    fd_table().set_pending(fd, 0);
}

void after_duplicate(int from, int to) {
    if (to < 0 || (!fd_table().socket(from) && fd_table().pending(from) == 0) || in_vfork_child()) return;
    if (Socket* s = fd_table().socket(from); s && !Runtime::inherited(*s)) {
        InsideLibrary inside;
        s->owner->duplicate(from, to);
    } else if (s) {  // another process's (fork, exec, SCM_RIGHTS): the new number names it too
        fd_table().set_socket(to, s);
        ++s->references;
    } else if (is_pending(from)) {
        settle_in_kernel(from);  // two numbers for one pending socket: it stays with the kernel
    } else if (fd_table().pending(from) & pending::epoll_set) {
        // Two numbers for one set: the kernel keeps it whole (neither number is marked now).
        if (Runtime* rt = Runtime::current()) {
            InsideLibrary inside;
            rt->hand_epoll_set_to_kernel(from);
        }
        fd_table().set_pending(from, fd_table().pending(from) & ~pending::epoll_set);
    }
}

}  // namespace

extern "C" {

int close(int fd) {
    return ms::preload::guarded("close", [&]() -> int {
        if (!ms::posix::t_inside_library) forget(fd);
        const int r = NEXT(close)(fd);
        settle_closed_shared();
        return r;
    });
}

int close_range(unsigned first, unsigned last, int flags) {
    return ms::preload::guarded("close_range", [&]() -> int {
        if (!ms::posix::t_inside_library && !(flags & CLOSE_RANGE_CLOEXEC)) {
            for (unsigned fd = first; fd <= last && fd_table().in_range(static_cast<int>(fd)); ++fd) {
                forget(static_cast<int>(fd));
            }
        }
        const int r = NEXT(close_range)(first, last, flags);
        settle_closed_shared();
        return r;
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
            settle_closed_shared();
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
            settle_closed_shared();
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

// glibc's fcntl64 is fcntl itself on 64-bit targets: the same entry serves both names.
int fcntl64(int fd, int cmd, ...) __attribute__((alias("fcntl")));

}  // extern "C"
