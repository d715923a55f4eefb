// Contract: closes descriptors that came from clients without ever blocking the control
// plane (docs/DESIGN.md §6). A close can block for as long as the sender
// likes: a TCP socket with SO_LINGER waits for its peer, a file on a FUSE mount waits for
// the mount's daemon, and the last close of a UNIX socket releases every descriptor in
// flight inside it, in the closing thread. So:
//   - an AF_INET or AF_INET6 socket (what a claim proves with) gets SO_LINGER off and is
//     closed at once: with linger off its close returns without waiting;
//   - anything else is handed to one reaper thread, which closes it there. The sender's
//     uid is charged for every descriptor the reaper has not closed yet; the control
//     plane stops reading from a user whose charge reaches kMaxPendingClosesPerUser, so
//     a stuck close holds back only the user who caused it.
// A session's own socket is closed through the reaper too (messages still queued in it
// may carry descriptors).
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <span>

#include "base/result.hpp"

namespace ms::daemon {

// The descriptors one user may have waiting for the reaper.
inline constexpr std::size_t kMaxPendingClosesPerUser = 64;

// Why a Reaper could not start.
enum class ReaperError {
    no_thread,  // the system would not start the reaper's thread
};

class Reaper {
public:
    // A Reaper with its thread running.
    [[nodiscard]] static base::Result<Reaper, ReaperError> start();
    // Stops the thread; if a close still blocks it after a second, leaves it behind (the
    // process's exit ends it) rather than blocking the daemon's shutdown.
    ~Reaper();
    Reaper(Reaper&&) noexcept = default;
    Reaper& operator=(Reaper&&) = delete;
    Reaper(const Reaper&) = delete;
    Reaper& operator=(const Reaper&) = delete;

    // Closes `fd`, which `uid` sent; never blocks.
    void discard(int fd, uid_t uid);
    void discard_all(std::span<const int> fds, uid_t uid);
    // Descriptors from `uid` not yet closed.
    [[nodiscard]] std::size_t pending(uid_t uid) const;
    [[nodiscard]] bool saturated(uid_t uid) const { return pending(uid) >= kMaxPendingClosesPerUser; }

private:
    struct PendingClose {
        int fd;
        uid_t uid;
    };
    // What the daemon and the reaper thread share: the descriptors waiting to be closed,
    // each user's count of them, and the thread's stop and exit flags.
    struct CloseQueue {
        mutable std::mutex lock;
        std::condition_variable wake;
        std::condition_variable exited;
        std::deque<PendingClose> waiting;
        std::map<uid_t, std::size_t> pending;
        bool stopping = false;
        bool done = false;
    };
    explicit Reaper(std::shared_ptr<CloseQueue> queue) : queue_(std::move(queue)) {}
    static void run(const std::shared_ptr<CloseQueue>& queue);

    std::shared_ptr<CloseQueue> queue_;  // shared with the thread, which may outlive this object
};

}  // namespace ms::daemon
