// The library's part of an epoll set (posix/epoll_sets.hpp): level-triggered entries stay
// ready while their socket is, edge-triggered ones report each new event once,
// EPOLLONESHOT disarms, EPOLLERR and EPOLLHUP come unasked, and a sleeper is woken (and
// another that still sleeps is not forgotten).
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <vector>

#include "posix/epoll_sets.hpp"
#include "posix/socket.hpp"

namespace {

using ms::posix::EpollSet;
using ms::posix::EpollWatch;
using ms::posix::Socket;

struct Bed {
    Bed() : set(-1, ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}
    EpollWatch watch(std::uint32_t events, std::uint64_t data) {
        return EpollWatch{.set = &set, .socket = &socket, .fd = 3, .events = events, .data = {.u64 = data}};
    }
    // What epoll_wait would report now.
    std::vector<epoll_event> wait(int max = 8) {
        std::vector<epoll_event> out(max);
        const int n = set.collect(out.data(), max, [this](const Socket&) { return now; });
        out.resize(n);
        return out;
    }
    EpollSet set;
    Socket socket;
    std::uint32_t now = 0;
};

TEST(EpollSet, LevelTriggeredStaysReadyWhileTheSocketIs) {
    Bed bed;
    EpollWatch w = bed.watch(EPOLLIN, 7);
    bed.now = EPOLLIN;
    bed.set.offer(w, bed.now, bed.now);
    auto got = bed.wait();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].events, EPOLLIN);
    EXPECT_EQ(got[0].data.u64, 7u);
    EXPECT_EQ(bed.wait().size(), 1u) << "still readable: reported again";
    bed.now = 0;
    EXPECT_TRUE(bed.wait().empty()) << "no longer ready: it leaves the list";
    EXPECT_FALSE(bed.set.has_ready());
}

TEST(EpollSet, EdgeTriggeredReportsEachNewEventOnce) {
    Bed bed;
    EpollWatch w = bed.watch(EPOLLIN | EPOLLET, 1);
    bed.now = EPOLLIN;
    bed.set.offer(w, bed.now, EPOLLIN);
    EXPECT_EQ(bed.wait().size(), 1u);
    EXPECT_TRUE(bed.wait().empty()) << "one report per edge";
    bed.set.offer(w, bed.now, 0);
    EXPECT_TRUE(bed.wait().empty()) << "still readable, no new event: nothing";
    bed.set.offer(w, bed.now, EPOLLIN);
    EXPECT_EQ(bed.wait().size(), 1u) << "new data: a new edge";
}

TEST(EpollSet, OneShotDisarmsUntilModified) {
    Bed bed;
    EpollWatch w = bed.watch(EPOLLIN | EPOLLONESHOT, 1);
    bed.now = EPOLLIN;
    bed.set.offer(w, bed.now, bed.now);
    EXPECT_EQ(bed.wait().size(), 1u);
    bed.set.offer(w, bed.now, bed.now);
    EXPECT_TRUE(bed.wait().empty()) << "disarmed";
    w.armed = true;  // EPOLL_CTL_MOD
    bed.set.offer(w, bed.now, bed.now);
    EXPECT_EQ(bed.wait().size(), 1u);
}

TEST(EpollSet, ErrorsAndHangUpsComeUnasked) {
    Bed bed;
    EpollWatch w = bed.watch(EPOLLOUT, 1);
    bed.now = EPOLLIN | EPOLLHUP | EPOLLERR;
    bed.set.offer(w, bed.now, bed.now);
    auto got = bed.wait();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].events, static_cast<std::uint32_t>(EPOLLHUP | EPOLLERR)) << "EPOLLIN was not asked for";
}

TEST(EpollSet, ReportsAtMostMaxAndKeepsTheRestInOrder) {
    Bed bed;
    EpollWatch a = bed.watch(EPOLLIN, 1);
    EpollWatch b = bed.watch(EPOLLIN, 2);
    bed.now = EPOLLIN;
    bed.set.offer(a, bed.now, bed.now);
    bed.set.offer(b, bed.now, bed.now);
    auto first = bed.wait(1);
    auto second = bed.wait(1);
    ASSERT_EQ(first.size(), 1u);
    ASSERT_EQ(second.size(), 1u);
    EXPECT_EQ(first[0].data.u64, 1u);
    EXPECT_EQ(second[0].data.u64, 2u) << "the one reported goes to the back: each gets its turn";
    bed.set.withdraw(a);
    bed.set.withdraw(b);
    EXPECT_FALSE(bed.set.has_ready());
}

TEST(EpollSet, ASleeperIsWokenOnce) {
    const int wake = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    EpollSet set(-1, wake);
    Socket socket;
    EpollWatch a{.set = &set, .socket = &socket, .fd = 3, .events = EPOLLIN};
    EpollWatch b{.set = &set, .socket = &socket, .fd = 4, .events = EPOLLIN};
    pollfd p{wake, POLLIN, 0};
    set.offer(a, EPOLLIN, EPOLLIN);
    EXPECT_EQ(::poll(&p, 1, 0), 0) << "nobody sleeps: no system call";
    set.withdraw(a);
    set.sleeping(true);
    set.offer(a, EPOLLIN, EPOLLIN);
    set.offer(b, EPOLLIN, EPOLLIN);
    EXPECT_EQ(::poll(&p, 1, 0), 1);
    std::uint64_t count = 0;
    set.sleeping(true);  // a second thread sleeps too
    set.sleeping(false);  // the first wakes, and reads the eventfd
    set.woken();
    EXPECT_EQ(::poll(&p, 1, 0), 1) << "another still sleeps while entries wait: written again";
    set.sleeping(false);
    set.woken();
    EXPECT_LT(::read(wake, &count, sizeof count), 0) << "nobody sleeps: woken() read it, and that is all";
    set.withdraw(a);
    set.withdraw(b);
}

}  // namespace
