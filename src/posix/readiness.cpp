#include "posix/readiness.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "posix/sockaddr.hpp"

namespace ms::posix {

SysResult<Readiness> Readiness::make(int app_flags, int min_own_fd) {
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) != 0) return Errno{errno};
    const int own = move_descriptor_above(pair[0], min_own_fd);
    const int lib = move_descriptor_above(pair[1], min_own_fd);
    const int app = ::fcntl(own, (app_flags & SOCK_CLOEXEC) ? F_DUPFD_CLOEXEC : F_DUPFD, 0);
    if (app < 0) {
        const int err = errno;
        ::close(own);
        ::close(lib);
        return Errno{err};
    }
    // The descriptors share one open file description: O_NONBLOCK is the application's
    // to set; the library's own reads and writes pass MSG_DONTWAIT.
    const int flags = ::fcntl(app, F_GETFL);
    ::fcntl(app, F_SETFL, (app_flags & SOCK_NONBLOCK) ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK));
    const int smallest = 1;  // the kernel rounds it up to its minimum
    ::setsockopt(own, SOL_SOCKET, SO_SNDBUF, &smallest, sizeof smallest);
    return Readiness(app, own, lib);
}

Readiness::Readiness(Readiness&& other) noexcept
    : app_(std::exchange(other.app_, -1)),
      own_(std::exchange(other.own_, -1)),
      lib_(std::exchange(other.lib_, -1)),
      token_(other.token_),
      filled_(other.filled_),
      ended_(other.ended_),
      hung_up_(other.hung_up_) {}

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

}  // namespace ms::posix
