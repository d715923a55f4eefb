#include "daemon/reaper.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
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

Reaper::Reaper() : state_(std::make_shared<State>()) {
    std::thread([state = state_] { run(state); }).detach();
}

Reaper::~Reaper() {
    std::unique_lock guard(state_->lock);
    state_->stopping = true;
    state_->wake.notify_one();
    (void)state_->exited.wait_for(guard, std::chrono::seconds(1), [&] { return state_->done; });
}

void Reaper::discard(int fd, uid_t uid) {
    if (fd < 0) return;
    if (closes_at_once(fd)) {
        never_linger(fd);
        ::close(fd);
        return;
    }
    std::lock_guard guard(state_->lock);
    state_->queue.push_back({fd, uid});
    ++state_->pending[uid];
    state_->wake.notify_one();
}

void Reaper::discard_all(std::span<const int> fds, uid_t uid) {
    for (int fd : fds) discard(fd, uid);
}

std::size_t Reaper::pending(uid_t uid) const {
    std::lock_guard guard(state_->lock);
    const auto it = state_->pending.find(uid);
    return it == state_->pending.end() ? 0 : it->second;
}

void Reaper::run(const std::shared_ptr<State>& state) {
    std::unique_lock guard(state->lock);
    for (;;) {
        state->wake.wait(guard, [&] { return state->stopping || !state->queue.empty(); });
        if (state->queue.empty()) break;  // stopping, and nothing left
        const Doomed d = state->queue.front();
        state->queue.pop_front();
        guard.unlock();
        ::close(d.fd);  // may block for as long as the sender arranged
        guard.lock();
        if (--state->pending[d.uid] == 0) state->pending.erase(d.uid);
    }
    state->done = true;
    state->exited.notify_all();
}

}  // namespace ms::daemon
