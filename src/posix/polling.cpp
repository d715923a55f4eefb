// Application threads that poll the port from epoll_wait (runtime.hpp, Polling).
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>

#include "posix/fd_table.hpp"
#include "posix/reentry.hpp"
#include "posix/runtime.hpp"

namespace ms::posix {

namespace {

// The port's entry in an application's epoll set: a value no pointer or descriptor has.
constexpr std::uint64_t kPortMark = 0xfff0'6d73'706f'7274ull;

std::uint64_t deadline_after(int timeout_ms) {
    return timeout_ms < 0 ? UINT64_MAX : loop::EventLoop::clock_ms() + static_cast<std::uint64_t>(timeout_ms);
}

int remaining_ms(std::uint64_t deadline) {
    if (deadline == UINT64_MAX) return -1;
    const std::uint64_t now = loop::EventLoop::clock_ms();
    return now >= deadline ? 0 : static_cast<int>(std::min<std::uint64_t>(deadline - now, INT32_MAX));
}

}  // namespace

void Runtime::watch_port_from(int epfd) {
    if (fd_table().pending(epfd) & pending::watching_epoll) return;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kPortMark;
    if (::epoll_ctl(epfd, EPOLL_CTL_ADD, port_event_fd_, &ev) == 0 || errno == EEXIST) {
        fd_table().set_pending(epfd, fd_table().pending(epfd) | pending::watching_epoll);
    }
}

bool Runtime::drop_port_events(epoll_event* events, int& n) {
    bool found = false;
    int kept = 0;
    for (int i = 0; i < n; ++i) {
        if (events[i].data.u64 == kPortMark) {
            found = true;
        } else {
            events[kept++] = events[i];
        }
    }
    if (found) {
        std::uint64_t count = 0;
        std::unique_lock lock(mutex_);
        (void)!::read(loop_->port().rx_event_fd(), &count, sizeof count);
    }
    n = kept;
    return found;
}

// Turn, look (without sleeping), and only then sleep on the application's set and the
// port together; frames that wake it are taken in by the next turn.
int Runtime::epoll_wait_polling(int epfd, epoll_event* events, int max, int timeout_ms, const sigset_t* mask,
                                EpollPwait real) {
    if (max <= 0 || daemon_gone_) return real(epfd, events, max, timeout_ms, mask);
    watch_port_from(epfd);
    const std::uint64_t deadline = deadline_after(timeout_ms);
    for (;;) {
        run_turn();
        int n = real(epfd, events, max, 0, mask);
        if (n < 0) return n;
        drop_port_events(events, n);
        if (n > 0 || timeout_ms == 0) return n;
        {
            std::unique_lock lock(mutex_);
            if (loop_->port().rx().prepare_to_sleep()) continue;  // frames came meanwhile
            pollers_.fetch_add(1);
        }
        int wait_ms = remaining_ms(deadline);
        {
            OutsideLibrary outside;  // a signal handler may use the library meanwhile
            n = real(epfd, events, max, wait_ms, mask);
        }
        const int saved = errno;
        if (pollers_.fetch_sub(1) == 1) ensure_port_watched();
        errno = saved;
        if (n < 0) return n;
        const bool frames = drop_port_events(events, n);
        if (n > 0) return n;
        if (!frames && remaining_ms(deadline) == 0) return 0;
    }
}

}  // namespace ms::posix
