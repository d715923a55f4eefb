// Contract: the other ways a program moves bytes through a descriptor, on a UTCP socket
// (docs/DESIGN.md §7, "Unmodified applications"):
//   - stdio: fdopen() gives a FILE* whose reads, writes and close go through the
//     library's read, write and close (glibc's stdio calls the kernel directly, past any
//     interposition, and would read the readiness pair instead of the connection), and
//     dprintf() formats, then writes through the library;
//   - message batches: sendmmsg() and recvmmsg() send and receive message by message,
//     with Linux's results (the count done, or -1 if the first fails), on UTCP sockets,
//     on unbound UDP sockets (the first send may place them on UTCP) and for messages that
//     carry control data (SCM_RIGHTS);
//   - splice() cannot move a UTCP socket's bytes (they are in this process, not in the
//     kernel's socket): it fails with EINVAL, as Linux's does on a descriptor it cannot
//     splice, with one log line per process. tee() and vmsplice() take pipes only, and
//     the kernel already refuses the socket.
// Every other descriptor goes straight to libc.
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "posix/sockaddr.hpp"
#include "preload/guarded.hpp"
#include "preload/interposition.hpp"

using namespace ms::preload;

namespace {

// A stdio stream's cookie is the descriptor itself: nothing to allocate or free.
int fd_of(void* cookie) { return static_cast<int>(reinterpret_cast<std::intptr_t>(cookie)); }

ssize_t stream_read(void* cookie, char* buf, size_t n) { return ::read(fd_of(cookie), buf, n); }

// Writes until every byte is taken or a write fails (a send timeout, a signal, a full
// non-blocking socket; errno says which); returns the bytes taken.
size_t write_all(int fd, const char* buf, size_t n) {
    size_t taken = 0;
    while (taken < n) {
        const ssize_t wrote = ::write(fd, buf + taken, n - taken);
        if (wrote <= 0) break;
        taken += static_cast<size_t>(wrote);
    }
    return taken;
}

// fopencookie's contract: the bytes taken, or 0 on an error (never negative). glibc
// drops what a short write leaves, so this takes all it can, as a real stream does.
ssize_t stream_write(void* cookie, const char* buf, size_t n) {
    return static_cast<ssize_t>(write_all(fd_of(cookie), buf, n));
}

// A socket cannot seek: ESPIPE, which glibc's fflush of a read stream expects.
int stream_seek(void* /*cookie*/, off64_t* /*offset*/, int /*whence*/) {
    errno = ESPIPE;
    return -1;
}

int stream_close(void* cookie) { return ::close(fd_of(cookie)); }

// Whether a batch on a descriptor that is not (yet) a UTCP socket must still go message by
// message through the sendmsg/recvmsg hooks: an unbound UDP socket goes to UTCP at its
// first send, and descriptors passed with SCM_RIGHTS are translated.
bool needs_message_hooks(int fd, const mmsghdr* messages, unsigned int count) {
    if (is_pending_datagram(fd)) return true;
    for (unsigned int i = 0; messages && i < count && i < UIO_MAXIOV; ++i) {
        if (messages[i].msg_hdr.msg_controllen > 0) return true;
    }
    return false;
}

// recvmmsg's timeout: its end, counted from the call; passed() writes back what is left.
class Deadline {
public:
    explicit Deadline(const timespec* timeout) : end_ns_(timeout ? now_ns() + ns(*timeout) : 0) {}
    bool passed(timespec& timeout) const {
        const long long left = end_ns_ - now_ns();
        timeout = left > 0 ? timespec{.tv_sec = static_cast<time_t>(left / kNsPerS), .tv_nsec = left % kNsPerS} : timespec{};
        return left <= 0;
    }

private:
    static constexpr long long kNsPerS = 1'000'000'000;
    // Seconds capped at 2^32 (136 years), so that nothing overflows.
    static long long ns(const timespec& t) { return std::min<long long>(t.tv_sec, 1LL << 32) * kNsPerS + t.tv_nsec; }
    static long long now_ns() {
        timespec now{};
        ::clock_gettime(CLOCK_MONOTONIC, &now);
        return ns(now);
    }
    long long end_ns_;
};

}  // namespace

extern "C" {

FILE* fdopen(int fd, const char* mode) {
    if (!ours(fd)) return NEXT(fdopen)(fd, mode);
    const cookie_io_functions_t io{.read = stream_read, .write = stream_write, .seek = stream_seek, .close = stream_close};
    FILE* stream = ::fopencookie(reinterpret_cast<void*>(static_cast<std::intptr_t>(fd)), mode, io);
    // glibc: fileno() reports _fileno (a cookie stream's is -2); the cookie's functions do
    // all the I/O, and fclose() calls stream_close once. Programs select() on fileno().
    if (stream) stream->_fileno = fd;
    try {
        ms::posix::log_line(2, "fdopen on the UTCP socket " + std::to_string(fd) + ": a stdio stream through the library");
    } catch (...) {  // nothing unwinds into the program's frames (guarded.hpp); the stream stands
    }
    return stream;
}

// dprintf formats into the descriptor through glibc's internal write, as stdio does.
int vdprintf(int fd, const char* format, va_list args) {
    if (!ours(fd)) return NEXT(vdprintf)(fd, format, args);
    char* text = nullptr;
    const int length = ::vasprintf(&text, format, args);
    if (length < 0) return -1;
    const size_t taken = write_all(fd, text, static_cast<size_t>(length));
    std::free(text);
    return taken == static_cast<size_t>(length) ? length : -1;
}

int dprintf(int fd, const char* format, ...) {
    va_list args;
    va_start(args, format);
    const int length = vdprintf(fd, format, args);
    va_end(args);
    return length;
}

// _FORTIFY_SOURCE's names for them (their flag, which asks for checks of %n, is not applied).
int __vdprintf_chk(int fd, int /*flag*/, const char* format, va_list args) { return vdprintf(fd, format, args); }

int __dprintf_chk(int fd, int /*flag*/, const char* format, ...) {
    va_list args;
    va_start(args, format);
    const int length = vdprintf(fd, format, args);
    va_end(args);
    return length;
}

int sendmmsg(int fd, mmsghdr* messages, unsigned int count, int flags) {
    return guarded("sendmmsg", [&]() -> int {
        if (!ours(fd) && !needs_message_hooks(fd, messages, count)) return NEXT(sendmmsg)(fd, messages, count, flags);
        count = std::min(count, static_cast<unsigned int>(UIO_MAXIOV));  // as Linux
        const int caller_errno = errno;  // a batch that ends early reports no error, as Linux's
        unsigned int done = 0;
        while (done < count) {
            const msghdr& m = messages[done].msg_hdr;
            const ssize_t sent = ::sendmsg(fd, &m, flags);
            if (sent < 0 && done == 0) return -1;
            if (sent < 0) break;
            messages[done++].msg_len = static_cast<unsigned int>(sent);
            // A message cut short ends the batch: the next one's bytes must not follow it.
            if (static_cast<size_t>(sent) < ms::posix::total_length({m.msg_iov, m.msg_iovlen})) break;
        }
        errno = caller_errno;
        return static_cast<int>(done);
    });
}

int recvmmsg(int fd, mmsghdr* messages, unsigned int count, int flags, timespec* timeout) {
    return guarded("recvmmsg", [&]() -> int {
        if (!ours(fd) && !needs_message_hooks(fd, messages, count))
            return NEXT(recvmmsg)(fd, messages, count, flags, timeout);
        if (timeout && (timeout->tv_sec < 0 || timeout->tv_nsec < 0 || timeout->tv_nsec >= 1'000'000'000)) {
            return static_cast<int>(fail(EINVAL));
        }
        count = std::min(count, static_cast<unsigned int>(UIO_MAXIOV));
        const int caller_errno = errno;
        const Deadline deadline(timeout);
        const int each = flags & ~MSG_WAITFORONE;
        unsigned int done = 0;
        while (done < count) {
            // After the first message, MSG_WAITFORONE takes only what is there.
            const int these = done > 0 && (flags & MSG_WAITFORONE) ? each | MSG_DONTWAIT : each;
            const ssize_t got = ::recvmsg(fd, &messages[done].msg_hdr, these);
            if (got < 0 && done == 0) return -1;
            if (got < 0) break;
            messages[done++].msg_len = static_cast<unsigned int>(got);
            // As Linux: the timeout is looked at after each message (a blocking receive may
            // still wait past it for the next one), and what is left of it is written back.
            if (timeout && deadline.passed(*timeout)) break;
        }
        errno = caller_errno;
        return static_cast<int>(done);
    });
}

ssize_t splice(int fd_in, loff_t* off_in, int fd_out, loff_t* off_out, size_t len, unsigned int flags) {
    return guarded("splice", [&]() -> ssize_t {
        const int utcp_fd = ours(fd_in) ? fd_in : ours(fd_out) ? fd_out : -1;
        if (utcp_fd < 0) return NEXT(splice)(fd_in, off_in, fd_out, off_out, len, flags);
        static std::atomic<bool> said{false};
        say_once(said, "splice on the UTCP socket " + std::to_string(utcp_fd) +
                           " is not supported: EINVAL (read and write move its bytes)");
        return fail(EINVAL);
    });
}

}  // extern "C"
