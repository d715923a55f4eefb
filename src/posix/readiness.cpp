#include "posix/readiness.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "posix/sockaddr.hpp"

namespace ms::posix {

// Four system calls (a new connection's cost is in them): the pair, made with the flags
// the application asked for (O_NONBLOCK is then the application's to change; the
// library's own reads and writes pass MSG_DONTWAIT), and the library's two descriptors
// moved high; two more to put the application's end on `at`.
base::Result<Readiness, Errno> Readiness::make(int app_flags, int min_own_fd, int at) {
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | (app_flags & (SOCK_NONBLOCK | SOCK_CLOEXEC)), 0, pair) != 0) {
        return Errno{errno};
    }
    int own = ::fcntl(pair[0], F_DUPFD_CLOEXEC, min_own_fd);
    if (own < 0) own = ::fcntl(pair[0], F_DUPFD_CLOEXEC, 0);
    const int lib = move_descriptor_above(pair[1], min_own_fd);
    if (lib == pair[1]) ::fcntl(lib, F_SETFD, FD_CLOEXEC);  // no room up there: it stays, close-on-exec
    int app = pair[0];
    if (own >= 0 && at >= 0) {
        app = ::dup3(pair[0], at, (app_flags & SOCK_CLOEXEC) ? O_CLOEXEC : 0);
        ::close(pair[0]);
    }
    if (own < 0 || app < 0) {
        const int err = errno;
        if (own >= 0) ::close(own);
        if (app >= 0) ::close(app);
        ::close(lib);
        return Errno{err};
    }
    return Readiness(app, own, lib);
}

base::Result<Readiness, Errno> Readiness::adopt(int app_fd, int lib_fd, int min_own_fd) {
    int own = ::fcntl(app_fd, F_DUPFD_CLOEXEC, min_own_fd);
    if (own < 0) own = ::fcntl(app_fd, F_DUPFD_CLOEXEC, 0);
    if (own < 0) {
        const int err = errno;
        ::close(lib_fd);
        return Errno{err};
    }
    const int lib = move_descriptor_above(lib_fd, min_own_fd);
    ::fcntl(lib, F_SETFD, FD_CLOEXEC);
    Readiness adopted(-1, own, lib);
    adopted.visible_ = true;
    char sink[4096];
    while (::recv(own, sink, sizeof sink, MSG_DONTWAIT) > 0) {  // a token the other process left
    }
    adopted.drain();  // and its filler
    return adopted;
}

std::optional<OpenSocketIdentity> Readiness::app_end_identity() const {
    struct stat st {};
    if (own_ < 0 || ::fstat(own_, &st) != 0) return std::nullopt;
    return OpenSocketIdentity{static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)};
}

bool Readiness::held_elsewhere() {
    if (own_ >= 0) ::close(std::exchange(own_, -1));
    pollfd pfd{.fd = lib_, .events = POLLIN | POLLRDHUP, .revents = 0};
    return ::poll(&pfd, 1, 0) >= 0 && (pfd.revents & POLLHUP) == 0;
}

int Readiness::release_library_end() {
    if (own_ >= 0) ::close(std::exchange(own_, -1));
    return std::exchange(lib_, -1);
}

Readiness::Readiness(Readiness&& other) noexcept
    : app_(std::exchange(other.app_, -1)),
      own_(std::exchange(other.own_, -1)),
      lib_(std::exchange(other.lib_, -1)),
      token_(other.token_),
      filled_(other.filled_),
      ended_(other.ended_),
      hung_up_(other.hung_up_),
      small_send_buffer_(other.small_send_buffer_),
      visible_(other.visible_),
      events_(other.events_) {}

Readiness& Readiness::operator=(Readiness&& other) noexcept {
    if (this != &other) {
        this->~Readiness();
        new (this) Readiness(std::move(other));
    }
    return *this;
}

Readiness::~Readiness() {
    if (own_ >= 0) ::close(own_);
    if (lib_ >= 0) ::close(lib_);
}

void Readiness::show(std::uint32_t events) {
    events_ = events;
    if (visible_) express(events);
}

void Readiness::make_visible() {
    if (visible_) return;
    visible_ = true;
    express(events_);
}

void Readiness::express(std::uint32_t events) {
    if (events & EPOLLHUP) {
        hang_up();
        return;
    }
    if (events & EPOLLRDHUP) end_of_stream();
    set((events & EPOLLIN) != 0, (events & EPOLLOUT) != 0);
}

void Readiness::set(bool readable, bool writable) {
    if (readable && !token_ && !ended_) {
        const char token = 'r';
        token_ = ::send(lib_, &token, 1, MSG_DONTWAIT | MSG_NOSIGNAL) == 1;
    } else if (!readable && token_) {
        char tokens[16];
        while (::recv(own_, tokens, sizeof tokens, MSG_DONTWAIT) > 0) {
        }
        token_ = false;
    }
    if (writable && filled_) drain();
    if (!writable && !filled_ && !hung_up_) fill();
}

void Readiness::end_of_stream() {
    if (ended_) return;
    ::shutdown(lib_, SHUT_WR);
    ended_ = true;
}

void Readiness::hang_up() {
    if (hung_up_) return;
    drain();
    ::shutdown(lib_, SHUT_RDWR);
    ended_ = hung_up_ = true;
}

// The application's end stops being writable once its send side holds SO_SNDBUF bytes.
void Readiness::fill() {
    if (!small_send_buffer_) {  // set once, when first needed: most sockets never fill
        const int smallest = 1;  // the kernel rounds it up to its minimum
        ::setsockopt(own_, SOL_SOCKET, SO_SNDBUF, &smallest, sizeof smallest);
        small_send_buffer_ = true;
    }
    static const char filler[4096] = {};
    while (::send(own_, filler, sizeof filler, MSG_DONTWAIT | MSG_NOSIGNAL) > 0) {
    }
    filled_ = true;
}

void Readiness::drain() {
    char sink[4096];
    while (::recv(lib_, sink, sizeof sink, MSG_DONTWAIT) > 0) {
    }
    filled_ = false;
}

// --- the pool ----------------------------------------------------------------------------

// One system call for the number (two if O_NONBLOCK differs): the kept pair's two
// library descriptors stay where they are.
base::Result<Readiness, Errno> ReadinessPool::take(int app_flags, int min_own_fd, int at) {
    if (kept_.empty()) return Readiness::make(app_flags, min_own_fd, at);
    const Kept pair = kept_.back();
    const bool cloexec = (app_flags & SOCK_CLOEXEC) != 0;
    const int app = at >= 0 ? ::dup3(pair.own, at, cloexec ? O_CLOEXEC : 0)
                            : ::fcntl(pair.own, cloexec ? F_DUPFD_CLOEXEC : F_DUPFD, 0);
    if (app < 0) return Errno{errno};  // the pair stays kept
    kept_.pop_back();
    const bool nonblocking = (app_flags & SOCK_NONBLOCK) != 0;
    if (nonblocking != pair.nonblocking) ::fcntl(app, F_SETFL, nonblocking ? O_NONBLOCK : 0);
    return Readiness(app, pair.own, pair.lib);
}

void ReadinessPool::give_back(Readiness&& pair, bool nonblocking) {
    Readiness taken = std::move(pair);
    if (taken.visible_ || taken.own_ < 0 || taken.lib_ < 0 || kept_.size() >= kKept) return;  // it closes
    kept_.push_back({std::exchange(taken.own_, -1), std::exchange(taken.lib_, -1), nonblocking});
}

void ReadinessPool::forget() {
    for (const Kept& pair : kept_) {
        ::close(pair.own);
        ::close(pair.lib);
    }
    kept_.clear();
}

}  // namespace ms::posix
