// Contract: the UTCP members of the application's epoll sets, kept by the library
// (docs/DESIGN.md §7, "Unmodified applications"). A set the program made with
// epoll_create is kept in two parts: its kernel descriptors in the kernel's set, and its
// UTCP sockets here. EPOLL_CTL_ADD, MOD and DEL of a UTCP socket change only this list,
// and epoll_wait reports what is ready here beside what the kernel reports: no system
// call per socket, and none per readiness change.
//
// The semantics are Linux's (fs/eventpoll.c):
//   - a level-triggered entry stays on the ready list while its socket is ready;
//   - an edge-triggered (EPOLLET) one is queued on each new event: a condition that
//     rises, or new data;
//   - EPOLLONESHOT disarms an entry once it is reported, until EPOLL_CTL_MOD;
//   - EPOLLERR and EPOLLHUP are reported whether asked for or not;
//   - an entry belongs to the open socket and the number it was added under: it stays
//     when another number of the socket closes (dup), and goes with the socket;
//   - EPOLLEXCLUSIVE entries are all reported (Linux wakes "one or more").
// A thread that sleeps in epoll_wait sleeps in the kernel's set, where the set's wake-up
// eventfd stands for this part: a socket that turns ready while a thread sleeps writes it.
// Not thread-safe: the runtime's lock guards it.
#pragma once

#include <sys/epoll.h>

#include <algorithm>
#include <cstdint>
#include <deque>

namespace ms::posix {

struct Socket;
class EpollSet;

// One socket in one set, under one number: what EPOLL_CTL_ADD made.
struct EpollWatch {
    EpollSet* set = nullptr;
    Socket* socket = nullptr;
    int fd = -1;
    std::uint32_t events = 0;  // as asked, with the flags (EPOLLET, EPOLLONESHOT, EPOLLEXCLUSIVE)
    epoll_data_t data{};
    bool queued = false;
    bool armed = true;  // false once an EPOLLONESHOT entry was reported, until EPOLL_CTL_MOD

    // The conditions `now` (a socket's epoll events) that this entry reports.
    [[nodiscard]] std::uint32_t reported(std::uint32_t now) const { return armed ? now & (events | EPOLLERR | EPOLLHUP) : 0; }
};

class EpollSet {
public:
    // The program's set `epfd`; `wake_fd`, an eventfd the caller added to it.
    EpollSet(int epfd, int wake_fd) : epfd_(epfd), wake_fd_(wake_fd) {}
    EpollSet(const EpollSet&) = delete;
    EpollSet& operator=(const EpollSet&) = delete;
    ~EpollSet();

    [[nodiscard]] int epfd() const { return epfd_; }
    // The entry `w`, with its socket's events `now`: on the ready list if it reports any
    // (an edge-triggered one only if `edge` holds some of them: a new event).
    void offer(EpollWatch& w, std::uint32_t now, std::uint32_t edge);
    void withdraw(EpollWatch& w);
    [[nodiscard]] bool has_ready() const { return !ready_.empty(); }
    // Reports up to `max` ready entries into `out`, each with its socket's events now
    // (`events_of`); level-triggered ones still ready go to the back of the list.
    template <class EventsOf>
    int collect(epoll_event* out, int max, EventsOf&& events_of);

    // A thread goes to sleep in the kernel's set, or wakes: one that sleeps is woken
    // through the eventfd when an entry turns ready.
    void sleeping(bool asleep) { sleepers_ = asleep ? sleepers_ + 1 : std::max(sleepers_ - 1, 0); }
    // Writes the eventfd (once until woken()).
    void wake_sleepers();
    // The eventfd woke a thread: it is read, and written again at once if another thread
    // still sleeps while entries wait.
    void woken();
    // Which part epoll_wait reads first, turn about, so that neither starves the other.
    bool kernel_first() { return kernel_first_ = !kernel_first_; }

private:
    int epfd_;
    int wake_fd_;
    std::deque<EpollWatch*> ready_;
    int sleepers_ = 0;
    bool wake_written_ = false;
    bool kernel_first_ = false;
};

template <class EventsOf>
int EpollSet::collect(epoll_event* out, int max, EventsOf&& events_of) {
    int n = 0;
    for (std::size_t left = ready_.size(); left > 0 && n < max; --left) {
        EpollWatch* w = ready_.front();
        ready_.pop_front();
        w->queued = false;
        const std::uint32_t now = w->reported(events_of(*w->socket));
        if (now == 0) continue;
        out[n].events = now;
        out[n].data = w->data;
        ++n;
        if (w->events & EPOLLONESHOT) {
            w->armed = false;
        } else if (!(w->events & EPOLLET)) {
            w->queued = true;
            ready_.push_back(w);
        }
    }
    return n;
}

}  // namespace ms::posix
