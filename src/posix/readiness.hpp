// Contract: what the kernel's poll, select and epoll see of a UTCP socket (docs/DESIGN.md §7,
// "Unmodified applications"). The descriptor the application holds is one end of an
// AF_UNIX stream socketpair; the library keeps the other end and a duplicate of the
// application's end. The socket's state is given as epoll events (show()); while the
// pair is visible, the library expresses them through it:
//   - readable (EPOLLIN): one token byte waits in the application end's queue (written
//     from the library's end; each new token is a new edge for EPOLLET);
//   - not writable (no EPOLLOUT): the library filled the application end's send side
//     (its SO_SNDBUF at the kernel's minimum); writable again once the library's end
//     drains it;
//   - end of stream (EPOLLRDHUP): the library's end shut down for writing;
//   - hang-up (EPOLLHUP): both directions of the library's end shut down.
// A pair starts invisible: then showing costs no system call, and the library's own
// epoll sets (epoll_sets.hpp) report the state. It turns visible, for good, once the
// kernel has to see it: poll or select on it, a kernel epoll set, a blocking call's
// sleep, or another process that holds it. A pair that never turned visible is as new
// when its socket closes, and serves the next one (ReadinessPool).
// The application never reads or writes the pair itself: the preload library takes
// every read and write on the descriptor. Not thread-safe: the caller holds its lock.
//
// A connection that moves to another process (handoff.cpp) takes its pair with it: the
// other process holds the application's end already (fork, exec, SCM_RIGHTS) and gets
// the library's end from the daemon (adopt()).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "posix/errno.hpp"

namespace ms::posix {

// An open socket as the kernel names it (st_dev, st_ino).
struct OpenSocketIdentity {
    std::uint64_t device = 0;
    std::uint64_t inode = 0;
};

class Readiness {
public:
    // A new pair. `app_flags` (SOCK_CLOEXEC, SOCK_NONBLOCK) apply to the application's end,
    // which is on number `at` (dup3 over what it was), or on the lowest free one (`at` < 0);
    // the library's descriptors are close-on-exec and placed above `min_own_fd`.
    static base::Result<Readiness, Errno> make(int app_flags, int min_own_fd, int at = -1);
    // The pair another process made: `app_fd` is this process's descriptor of the
    // application's end, `lib_fd` the library's end (taken, moved above `min_own_fd`).
    // What the other process left in the pair (a token, the filler) is drained. Visible.
    static base::Result<Readiness, Errno> adopt(int app_fd, int lib_fd, int min_own_fd);
    Readiness(Readiness&& other) noexcept;
    Readiness& operator=(Readiness&& other) noexcept;
    Readiness(const Readiness&) = delete;
    Readiness& operator=(const Readiness&) = delete;
    ~Readiness();

    // The application's end: the caller hands this number to the application (or
    // dup2s it onto the number the application already holds, then closes it).
    [[nodiscard]] int app_fd() const { return app_; }
    // The socket's state as epoll events (EPOLLIN, EPOLLOUT, EPOLLRDHUP, EPOLLHUP; the
    // last two for good): expressed through the pair if visible, else kept until it is.
    void show(std::uint32_t events);
    // The kernel sees the state from now on.
    void make_visible();
    [[nodiscard]] bool visible() const { return visible_; }

    // The application's end, as the kernel names it.
    [[nodiscard]] std::optional<OpenSocketIdentity> app_end_identity() const;
    // Once this process has closed every number of the application's end: lets go of the
    // library's duplicate of it, and says whether another process still holds it.
    [[nodiscard]] bool held_elsewhere();
    // The library's end, now the caller's; the readiness shows nothing more.
    [[nodiscard]] int release_library_end();

private:
    friend class ReadinessPool;
    Readiness(int app, int own, int lib) : app_(app), own_(own), lib_(lib) {}
    // Makes the kernel report exactly these conditions (level; a new token on each rise).
    void set(bool readable, bool writable);
    // End of stream: readable from now on, with POLLRDHUP.
    void end_of_stream();
    // Hang-up: readable, writable and POLLHUP from now on.
    void hang_up();
    void express(std::uint32_t events);
    void fill();
    void drain();
    int app_ = -1;   // the application's end, as first made (the application owns it)
    int own_ = -1;   // the library's duplicate of the application's end
    int lib_ = -1;   // the library's end
    bool token_ = false;
    bool filled_ = false;
    bool ended_ = false;
    bool hung_up_ = false;
    bool small_send_buffer_ = false;  // the application end's SO_SNDBUF is at its minimum
    bool visible_ = false;
    std::uint32_t events_ = 0;  // what show() last gave
};

// Pairs that never turned visible, kept when their sockets closed: the next socket takes
// one with one system call (its number) where a new pair costs four, and its close costs
// none. At most kKept are kept; the rest close. Not thread-safe: the caller holds its lock.
class ReadinessPool {
public:
    ReadinessPool() = default;
    ReadinessPool(const ReadinessPool&) = delete;
    ReadinessPool& operator=(const ReadinessPool&) = delete;
    ~ReadinessPool() { forget(); }
    // A kept pair, or a new one (Readiness::make's arguments).
    base::Result<Readiness, Errno> take(int app_flags, int min_own_fd, int at = -1);
    // A closed socket's pair: kept if it never turned visible, else closed. `nonblocking`:
    // O_NONBLOCK as the application's end has it now.
    void give_back(Readiness&& pair, bool nonblocking);
    // Closes every kept pair (in a forked child: this process's copies).
    void forget();

private:
    struct Kept {
        int own;
        int lib;
        bool nonblocking;
    };
    static constexpr std::size_t kKept = 256;
    std::vector<Kept> kept_;
};

}  // namespace ms::posix
