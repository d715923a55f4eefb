// The program's epoll calls: application threads that poll the port from epoll_wait
// (runtime.hpp, Polling), and the library's part of each epoll set (epoll_sets.hpp).
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>

#include "posix/fd_table.hpp"
#include "posix/reentry.hpp"
#include "posix/runtime.hpp"
#include "posix/sockaddr.hpp"

namespace ms::posix {

namespace {

// The port's entry in an application's epoll set, and the set's wake-up entry: values no
// pointer or descriptor has.
constexpr std::uint64_t kPortMark = 0xfff0'6d73'706f'7274ull;
constexpr std::uint64_t kWakeMark = 0xfff0'6d73'7761'6b65ull;

std::uint64_t deadline_after(std::uint64_t now_ms, int timeout_ms) {
    return timeout_ms < 0 ? UINT64_MAX : now_ms + static_cast<std::uint64_t>(timeout_ms);
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

bool Runtime::drop_wake_events(int epfd, epoll_event* events, int& n) {
    bool port = false;
    bool set = false;
    for (int i = 0; i < n; ++i) {
        port = port || events[i].data.u64 == kPortMark;
        set = set || events[i].data.u64 == kWakeMark;
    }
    if (!drop_library_marks(events, n)) return false;
    std::unique_lock lock(mutex_);
    if (port) {
        std::uint64_t count = 0;
        (void)!::read(loop_->port().rx_event_fd(), &count, sizeof count);
    }
    if (auto it = epoll_sets_.find(epfd); set && it != epoll_sets_.end()) it->second->woken();
    return true;
}

// The library's part and the kernel's take turns at going first. When the library's goes
// first and reports something, the kernel's waits for the next call, where it goes first:
// under load that halves the system calls, and neither part can starve the other.
int Runtime::gather_ready(int epfd, epoll_event* events, int max, const sigset_t* mask, EpollPwait real) {
    const auto library_part = [&](EpollSet& set, epoll_event* out, int room) {
        return room <= 0 ? 0 : set.collect(out, room, [this](const Socket& s) { return events_of(s); });
    };
    {
        std::unique_lock lock(mutex_);
        auto it = epoll_sets_.find(epfd);
        if (it != epoll_sets_.end() && !it->second->kernel_first()) {
            if (const int n = library_part(*it->second, events, max); n > 0) return n;
        }
    }
    int n = real(epfd, events, max, 0, mask);
    if (n < 0) return n;
    drop_wake_events(epfd, events, n);
    std::unique_lock lock(mutex_);
    auto it = epoll_sets_.find(epfd);
    return it == epoll_sets_.end() ? n : n + library_part(*it->second, events + n, max - n);
}

// Turn, look (without sleeping), and only then sleep on the application's set and the
// port together; frames that wake it are taken in by the next turn, and a UTCP socket of
// the set that turns ready meanwhile writes the set's wake-up eventfd.
int Runtime::epoll_wait_polling(int epfd, epoll_event* events, int max, int timeout_ms, const sigset_t* mask,
                                EpollPwait real) {
    if (max <= 0) return real(epfd, events, max, timeout_ms, mask);
    watch_port_from(epfd);
    std::uint64_t deadline = 0;  // set on the first turn
    for (;;) {
        const std::uint64_t now = run_turn();
        if (deadline == 0) deadline = deadline_after(now, timeout_ms);
        int n = gather_ready(epfd, events, max, mask, real);
        last_polled_ms_.store(now, std::memory_order_relaxed);
        if (n != 0 || timeout_ms == 0) return n;
        EpollSet* set = nullptr;
        {
            std::unique_lock lock(mutex_);
            if (loop_->port().rx().prepare_to_sleep()) continue;  // frames came meanwhile
            if (auto it = epoll_sets_.find(epfd); it != epoll_sets_.end()) set = it->second.get();
            if (set && set->has_ready()) continue;  // another thread made one ready meanwhile
            if (set) set->sleeping(true);
            pollers_.fetch_add(1);
        }
        const int wait_ms = remaining_ms(deadline);
        {
            OutsideLibrary outside;  // a signal handler may use the library meanwhile
            n = real(epfd, events, max, wait_ms, mask);
        }
        const int saved = errno;
        {
            std::unique_lock lock(mutex_);
            // The set may have gone meanwhile (another thread closed its number).
            if (auto it = epoll_sets_.find(epfd); set && it != epoll_sets_.end() && it->second.get() == set) {
                set->sleeping(false);
            }
            // Awake, it takes the frames in itself: no kicks until a thread sleeps on the port again.
            if (!stack_watches_port_.load()) loop_->port().rx().wake();
        }
        if (pollers_.fetch_sub(1) == 1) ensure_port_watched();
        errno = saved;
        if (n < 0) return n;
        const bool woken = drop_wake_events(epfd, events, n);
        if (n > 0) return n;
        if (!woken && remaining_ms(deadline) == 0) return 0;
    }
}

// --- the library's part of the program's epoll sets ---------------------------------------

EpollSet* Runtime::library_epoll_set(int epfd) {
    if (!(fd_table().pending(epfd) & pending::epoll_set)) return nullptr;
    if (auto it = epoll_sets_.find(epfd); it != epoll_sets_.end()) return it->second.get();
    const int wake = move_descriptor_above(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), fd_table().own_fd_floor());
    if (wake < 0) return nullptr;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kWakeMark;
    if (::epoll_ctl(epfd, EPOLL_CTL_ADD, wake, &ev) != 0) {
        ::close(wake);
        return nullptr;
    }
    auto& made = epoll_sets_.emplace(epfd, std::make_unique<EpollSet>(epfd, wake)).first->second;
    // A thread may sleep in this set already, uncounted: it wakes once, and counts itself.
    made->wake_sleepers();
    return made.get();
}

namespace {

// The entry of `s` that EPOLL_CTL_ADD made in `set` under number `fd`; else null.
EpollWatch* watch_in(Socket& s, const EpollSet* set, int fd) {
    for (const auto& w : s.watches) {
        if (w->set == set && w->fd == fd) return w.get();
    }
    return nullptr;
}

// EPOLLEXCLUSIVE goes only with these (fs/eventpoll.c, EPOLLEXCLUSIVE_OK_BITS).
constexpr std::uint32_t kExclusiveOk = EPOLLIN | EPOLLOUT | EPOLLRDNORM | EPOLLRDBAND | EPOLLWRNORM | EPOLLWRBAND | EPOLLERR |
                                       EPOLLHUP | EPOLLWAKEUP | EPOLLET | EPOLLEXCLUSIVE;

}  // namespace

base::Result<int, Errno> Runtime::epoll_control(int epfd, int op, int fd, epoll_event* event) {
    std::unique_lock lock(mutex_);
    Socket* s = live(fd);
    if (!s) return Errno{EBADF};
    EpollSet* set = library_epoll_set(epfd);
    if (!set) {  // the kernel keeps this set whole: it sees the socket through its pair
        expose(*s);
        lock.unlock();
        return ::epoll_ctl(epfd, op, fd, event) == 0 ? base::Result<int, Errno>(0) : Errno{errno};
    }
    if (op != EPOLL_CTL_DEL && !event) return Errno{EFAULT};
    EpollWatch* w = watch_in(*s, set, fd);
    switch (op) {
        case EPOLL_CTL_ADD: {
            if (w) return Errno{EEXIST};
            if ((event->events & EPOLLEXCLUSIVE) && (event->events & ~kExclusiveOk)) return Errno{EINVAL};
            auto& added = s->watches.emplace_back(std::make_unique<EpollWatch>());
            *added = EpollWatch{.set = set, .socket = s, .fd = fd, .events = event->events, .data = event->data};
            w = added.get();
            break;
        }
        case EPOLL_CTL_MOD:
            if (!w) return Errno{ENOENT};
            if ((event->events | w->events) & EPOLLEXCLUSIVE) return Errno{EINVAL};
            w->events = event->events;
            w->data = event->data;
            w->armed = true;
            break;
        case EPOLL_CTL_DEL:
            if (!w) return Errno{ENOENT};
            set->withdraw(*w);
            std::erase_if(s->watches, [w](const auto& each) { return each.get() == w; });
            return 0;
        default: return Errno{EINVAL};
    }
    // As Linux's ep_insert and ep_modify: ready now, it is reported (edge-triggered too).
    set->offer(*w, s->events, s->events);
    return 0;
}

void Runtime::forget_watches(Socket& s) {
    for (const auto& w : s.watches) w->set->withdraw(*w);
    s.watches.clear();
}

void Runtime::merge_into_kernel(EpollSet& set) {
    for (Socket& s : sockets_) {
        std::erase_if(s.watches, [&](const std::unique_ptr<EpollWatch>& w) {
            if (w->set != &set) return false;
            set.withdraw(*w);
            expose(s);
            epoll_event ev{};
            ev.events = w->armed ? w->events : w->events & (EPOLLET | EPOLLONESHOT);
            ev.data = w->data;
            // The number may name something else by now (dup, then close): then the kernel
            // cannot keep the entry under it, and it goes.
            if (fd_table().socket(w->fd) == &s) ::epoll_ctl(set.epfd(), EPOLL_CTL_ADD, w->fd, &ev);
            return true;
        });
    }
}

void Runtime::make_visible(int fd) {
    std::unique_lock lock(mutex_);
    if (Socket* s = live(fd)) expose(*s);
}

void Runtime::hand_epoll_set_to_kernel(int epfd) {
    std::unique_lock lock(mutex_);
    fd_table().set_pending(epfd, fd_table().pending(epfd) & ~pending::epoll_set);
    auto it = epoll_sets_.find(epfd);
    if (it == epoll_sets_.end()) return;
    merge_into_kernel(*it->second);
    epoll_sets_.erase(it);
}

void Runtime::hand_everything_to_kernel() {
    std::unique_lock lock(mutex_);
    show_everything_to_kernel();
}

void Runtime::show_everything_to_kernel() {
    for (auto& [epfd, set] : epoll_sets_) {
        merge_into_kernel(*set);
        fd_table().set_pending(epfd, fd_table().pending(epfd) & ~pending::epoll_set);
    }
    epoll_sets_.clear();
    for (Socket& s : sockets_) expose(s);
}

bool Runtime::drop_library_marks(epoll_event* events, int& n) {
    int kept = 0;
    for (int i = 0; i < n; ++i) {
        if (events[i].data.u64 != kPortMark && events[i].data.u64 != kWakeMark) events[kept++] = events[i];
    }
    const bool dropped = kept != n;
    n = kept;
    return dropped;
}

void Runtime::forget_epoll_set(int epfd) {
    std::unique_lock lock(mutex_);
    auto it = epoll_sets_.find(epfd);
    if (it == epoll_sets_.end()) return;
    EpollSet& set = *it->second;
    for (Socket& s : sockets_) {
        std::erase_if(s.watches, [&](const std::unique_ptr<EpollWatch>& w) {
            if (w->set != &set) return false;
            set.withdraw(*w);
            return true;
        });
    }
    epoll_sets_.erase(it);
}

}  // namespace ms::posix
