#include "daemon/reaper.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <system_error>
#include <thread>

#include "daemon/claim_proof.hpp"

namespace ms::daemon {
namespace {

// True for a socket whose close cannot block once linger is off.
bool closes_at_once(int fd) {
    int domain = 0;
    socklen_t len = sizeof domain;
    if (::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0) return false;  // not a socket
    return domain == AF_INET || domain == AF_INET6;
}

}  // namespace

base::Result<Reaper, ReaperError> Reaper::start() {
    auto queue = std::make_shared<CloseQueue>();
    try {
        std::thread([queue] { run(queue); }).detach();
    } catch (const std::system_error&) {
        return ReaperError::no_thread;
    }
    return Reaper(std::move(queue));
}

Reaper::~Reaper() {
    if (!queue_) return;  // moved from
    std::unique_lock guard(queue_->lock);
    queue_->stopping = true;
    queue_->wake.notify_one();
    (void)queue_->exited.wait_for(guard, std::chrono::seconds(1), [&] { return queue_->done; });
}

void Reaper::discard(int fd, uid_t uid) {
    if (fd < 0) return;
    if (closes_at_once(fd)) {
        never_linger(fd);
        ::close(fd);
        return;
    }
    std::lock_guard guard(queue_->lock);
    queue_->waiting.push_back({fd, uid});
    ++queue_->pending[uid];
    queue_->wake.notify_one();
}

void Reaper::discard_all(std::span<const int> fds, uid_t uid) {
    for (int fd : fds) discard(fd, uid);
}

std::size_t Reaper::pending(uid_t uid) const {
    std::lock_guard guard(queue_->lock);
    const auto it = queue_->pending.find(uid);
    return it == queue_->pending.end() ? 0 : it->second;
}

void Reaper::run(const std::shared_ptr<CloseQueue>& queue) {
    std::unique_lock guard(queue->lock);
    for (;;) {
        queue->wake.wait(guard, [&] { return queue->stopping || !queue->waiting.empty(); });
        if (queue->waiting.empty()) break;  // stopping, and nothing left
        const PendingClose d = queue->waiting.front();
        queue->waiting.pop_front();
        guard.unlock();
        ::close(d.fd);  // may block for as long as the sender arranged
        guard.lock();
        if (--queue->pending[d.uid] == 0) queue->pending.erase(d.uid);
    }
    queue->done = true;
    queue->exited.notify_all();
}

}  // namespace ms::daemon
