// The kernel's view of a UTCP socket (posix/readiness.hpp): what poll and epoll report on
// the application's end of the pair as the library shows readable, writable, end of
// stream and hang-up, that edge-triggered epoll sees a new edge for each rise, that an
// invisible pair shows nothing until it turns visible, and which pairs the pool keeps.
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "posix/readiness.hpp"

namespace {

using ms::posix::Readiness;
using ms::posix::ReadinessPool;

constexpr std::uint32_t kIn = EPOLLIN;
constexpr std::uint32_t kOut = EPOLLOUT;

short events_of(int fd) {
    pollfd p{fd, POLLIN | POLLOUT | POLLRDHUP, 0};
    EXPECT_GE(::poll(&p, 1, 0), 0);
    return p.revents;
}

Readiness make(int flags = SOCK_CLOEXEC | SOCK_NONBLOCK) {
    auto r = Readiness::make(flags, 0);
    EXPECT_TRUE(r.ok());
    r.value().show(kOut);  // as a fresh socket: writable only
    r.value().make_visible();
    return std::move(r.value());
}

ino_t inode_of(int fd) {
    struct stat st {};
    EXPECT_EQ(::fstat(fd, &st), 0);
    return st.st_ino;
}

TEST(Readiness, ReportsExactlyWhatItIsSet) {
    Readiness r = make();
    const int fd = r.app_fd();
    EXPECT_EQ(events_of(fd), POLLOUT) << "a fresh pair is writable only";
    r.show(kIn | kOut);
    EXPECT_EQ(events_of(fd), POLLIN | POLLOUT);
    r.show(0);
    EXPECT_EQ(events_of(fd), 0) << "neither readable nor writable";
    r.show(kIn);
    EXPECT_EQ(events_of(fd), POLLIN);
    r.show(kOut);
    EXPECT_EQ(events_of(fd), POLLOUT);
    ::close(fd);
}

TEST(Readiness, EndOfStreamAndHangUpStay) {
    Readiness r = make();
    const int fd = r.app_fd();
    r.show(kIn | kOut | EPOLLRDHUP);
    EXPECT_EQ(events_of(fd) & (POLLIN | POLLRDHUP), POLLIN | POLLRDHUP);
    r.show(kOut);
    EXPECT_TRUE(events_of(fd) & POLLIN) << "the end of the stream stays readable";
    r.show(0);
    r.show(EPOLLHUP);
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
    r.show(kIn | kOut);
    EXPECT_EQ(::epoll_wait(ep, out, 4, 0), 1);
    EXPECT_EQ(::epoll_wait(ep, out, 4, 0), 0) << "one edge per rise";
    r.show(kIn | kOut);
    EXPECT_EQ(::epoll_wait(ep, out, 4, 0), 0) << "still readable: no new edge";
    r.show(kOut);
    r.show(kIn | kOut);
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
        r.show(kOut);
    }
    EXPECT_TRUE(events_of(fd) & POLLHUP);
    ::close(fd);
}

TEST(Readiness, AnInvisiblePairShowsNothingUntilItTurnsVisible) {
    auto made = Readiness::make(SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    ASSERT_TRUE(made.ok());
    Readiness& r = made.value();
    const int fd = r.app_fd();
    EXPECT_FALSE(r.visible());
    r.show(kIn);
    EXPECT_EQ(events_of(fd), POLLOUT) << "no token, no filler while invisible";
    r.make_visible();
    EXPECT_TRUE(r.visible());
    EXPECT_EQ(events_of(fd), POLLIN) << "the state shown last, once visible";
    ::close(fd);
}

TEST(ReadinessPool, KeepsAPairThatNeverTurnedVisibleAndGivesItOutAgain) {
    ReadinessPool pool;
    auto first = pool.take(SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    ASSERT_TRUE(first.ok());
    const int fd = first.value().app_fd();
    const ino_t inode = inode_of(fd);
    first.value().show(kIn);
    pool.give_back(std::move(first.value()), true);
    ::close(fd);
    auto again = pool.take(0, 0);  // blocking, no close-on-exec this time
    ASSERT_TRUE(again.ok());
    const int number = again.value().app_fd();
    EXPECT_EQ(inode_of(number), inode) << "the kept pair serves again";
    EXPECT_EQ(::fcntl(number, F_GETFL) & O_NONBLOCK, 0);
    EXPECT_EQ(::fcntl(number, F_GETFD) & FD_CLOEXEC, 0);
    EXPECT_EQ(events_of(number), POLLOUT) << "as new: nothing the last socket showed";
    again.value().make_visible();
    again.value().show(0);
    pool.give_back(std::move(again.value()), false);
    ::close(number);
    auto fresh = pool.take(SOCK_CLOEXEC, 0);
    ASSERT_TRUE(fresh.ok());
    EXPECT_NE(inode_of(fresh.value().app_fd()), inode) << "a pair that turned visible is not kept";
    ::close(fresh.value().app_fd());
}

TEST(ReadinessPool, PutsTheApplicationsEndOnTheNumberAsked) {
    ReadinessPool pool;
    const int target = ::dup(0);
    ASSERT_GE(target, 0);
    auto r = pool.take(SOCK_CLOEXEC, 0, target);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r.value().app_fd(), target);
    EXPECT_NE(::fcntl(target, F_GETFD) & FD_CLOEXEC, 0);
    EXPECT_EQ(events_of(target), POLLOUT) << "the number names the pair now";
    ::close(target);
}

}  // namespace
