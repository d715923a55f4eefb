// The kernel's view of a UTCP socket (posix/readiness.hpp): what poll and epoll report on
// the application's end of the pair as the library sets readable, writable, end of
// stream and hang-up, and that edge-triggered epoll sees a new edge for each rise.
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "posix/readiness.hpp"

namespace {

using ms::posix::Readiness;

short events_of(int fd) {
    pollfd p{fd, POLLIN | POLLOUT | POLLRDHUP, 0};
    EXPECT_GE(::poll(&p, 1, 0), 0);
    return p.revents;
}

Readiness make(int flags = SOCK_CLOEXEC | SOCK_NONBLOCK) {
    auto r = Readiness::make(flags, 0);
    EXPECT_TRUE(r.ok());
    return std::move(r.value());
}

TEST(Readiness, ReportsExactlyWhatItIsSet) {
    Readiness r = make();
    const int fd = r.app_fd();
    EXPECT_EQ(events_of(fd), POLLOUT) << "a fresh pair is writable only";
    r.set(true, true);
    EXPECT_EQ(events_of(fd), POLLIN | POLLOUT);
    r.set(false, false);
    EXPECT_EQ(events_of(fd), 0) << "neither readable nor writable";
    r.set(true, false);
    EXPECT_EQ(events_of(fd), POLLIN);
    r.set(false, true);
    EXPECT_EQ(events_of(fd), POLLOUT);
    ::close(fd);
}

TEST(Readiness, EndOfStreamAndHangUpStay) {
    Readiness r = make();
    const int fd = r.app_fd();
    r.end_of_stream();
    EXPECT_EQ(events_of(fd) & (POLLIN | POLLRDHUP), POLLIN | POLLRDHUP);
    r.set(false, true);
    EXPECT_TRUE(events_of(fd) & POLLIN) << "the end of the stream stays readable";
    r.set(false, false);
    r.hang_up();
    const short ev = events_of(fd);
    EXPECT_TRUE(ev & POLLHUP);
    EXPECT_TRUE(ev & POLLIN);
    EXPECT_TRUE(ev & POLLOUT) << "a hung-up socket is writable (its writes fail at once)";
    ::close(fd);
}

TEST(Readiness, EachRiseIsANewEdgeForEpollEt) {
    Readiness r = make();
    const int fd = r.app_fd();
    const int ep = ::epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{.events = EPOLLIN | EPOLLET, .data = {.fd = fd}};
    ASSERT_EQ(::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), 0);
    epoll_event out[4];
    EXPECT_EQ(::epoll_wait(ep, out, 4, 0), 0);
    r.set(true, true);
    EXPECT_EQ(::epoll_wait(ep, out, 4, 0), 1);
    EXPECT_EQ(::epoll_wait(ep, out, 4, 0), 0) << "one edge per rise";
    r.set(true, true);
    EXPECT_EQ(::epoll_wait(ep, out, 4, 0), 0) << "still readable: no new edge";
    r.set(false, true);
    r.set(true, true);
    EXPECT_EQ(::epoll_wait(ep, out, 4, 0), 1) << "readable again after it was not";
    ::close(ep);
    ::close(fd);
}

TEST(Readiness, TheApplicationsEndHasTheFlagsItAskedFor) {
    Readiness blocking = make(0);
    EXPECT_EQ(::fcntl(blocking.app_fd(), F_GETFL) & O_NONBLOCK, 0);
    EXPECT_EQ(::fcntl(blocking.app_fd(), F_GETFD) & FD_CLOEXEC, 0);
    Readiness nonblocking = make(SOCK_NONBLOCK | SOCK_CLOEXEC);
    EXPECT_NE(::fcntl(nonblocking.app_fd(), F_GETFL) & O_NONBLOCK, 0);
    EXPECT_NE(::fcntl(nonblocking.app_fd(), F_GETFD) & FD_CLOEXEC, 0);
    ::close(blocking.app_fd());
    ::close(nonblocking.app_fd());
}

// The library's descriptors go with it: the application's end then hangs up.
TEST(Readiness, ItsEndClosesWithIt) {
    int fd;
    {
        Readiness r = make();
        fd = r.app_fd();
        r.set(false, true);
    }
    EXPECT_TRUE(events_of(fd) & POLLHUP);
    ::close(fd);
}

}  // namespace
