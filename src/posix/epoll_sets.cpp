#include "posix/epoll_sets.hpp"

#include <unistd.h>

#include <algorithm>

namespace ms::posix {

// Its entries are withdrawn by then (their owners go first). The wake-up eventfd leaves the
// kernel's set explicitly: a forked child's copy of it would keep it registered there.
EpollSet::~EpollSet() {
    if (wake_fd_ < 0) return;
    ::epoll_ctl(epfd_, EPOLL_CTL_DEL, wake_fd_, nullptr);
    ::close(wake_fd_);
}

void EpollSet::offer(EpollWatch& w, std::uint32_t now, std::uint32_t edge) {
    const std::uint32_t reported = w.reported(now);
    if (w.queued || reported == 0) return;
    if ((w.events & EPOLLET) && (reported & edge) == 0) return;
    w.queued = true;
    ready_.push_back(&w);
    if (sleepers_ > 0) wake_sleepers();
}

void EpollSet::wake_sleepers() {
    if (wake_written_) return;
    const std::uint64_t one = 1;
    wake_written_ = ::write(wake_fd_, &one, sizeof one) == sizeof one;
}

void EpollSet::withdraw(EpollWatch& w) {
    if (!w.queued) return;
    std::erase(ready_, &w);
    w.queued = false;
}

void EpollSet::woken() {
    std::uint64_t count = 0;
    (void)!::read(wake_fd_, &count, sizeof count);
    wake_written_ = false;
    // The thread that read it may not be the one asleep: another still sleeps while
    // entries wait.
    if (sleepers_ > 0 && !ready_.empty()) wake_sleepers();
}

}  // namespace ms::posix
