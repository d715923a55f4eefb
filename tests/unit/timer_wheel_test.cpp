// Contract: UTCP's hashed timer wheel (Varghese and Lauck): deadline order, never early, cancel and reschedule, and a
 // reference model.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <vector>

#include "utcp/timer_wheel.hpp"

namespace ms::utcp {
namespace {

TEST(TimerWheel, FiresInDeadlineOrderAndNotEarly) {
    TimerWheel w(1000);
    Timer a, b, c;
    w.schedule(a, 1005);
    w.schedule(b, 1003);
    w.schedule(c, 1003 + 4096 * 3);  // three turns away: shares a slot, must wait
    std::vector<Timer*> fired;
    auto record = [&](Timer& t) { fired.push_back(&t); };
    EXPECT_EQ(w.next_deadline(), 1003u);
    EXPECT_EQ(w.advance(1002, record), 0u);
    EXPECT_EQ(w.advance(1005, record), 2u);
    EXPECT_EQ(fired, (std::vector<Timer*>{&b, &a}));
    EXPECT_FALSE(a.pending());
    EXPECT_TRUE(c.pending());
    EXPECT_EQ(w.advance(1003 + 4096 * 3 - 1, record), 0u);
    EXPECT_EQ(w.advance(1003 + 4096 * 3, record), 1u);
    EXPECT_EQ(w.size(), 0u);
    EXPECT_EQ(w.next_deadline(), UINT64_MAX);
}

TEST(TimerWheel, CancelsReschedulesAndUnlinksOnDestruction) {
    TimerWheel w(0);
    Timer a;
    w.schedule(a, 10);
    w.schedule(a, 50);  // replaces the first deadline
    EXPECT_EQ(w.size(), 1u);
    {
        Timer gone;
        w.schedule(gone, 20);
        EXPECT_EQ(w.size(), 2u);
    }
    EXPECT_EQ(w.size(), 1u);  // a destroyed timer leaves the wheel
    int fired = 0;
    EXPECT_EQ(w.advance(30, [&](Timer&) { ++fired; }), 0u);
    w.cancel(a);
    EXPECT_EQ(w.advance(100, [&](Timer&) { ++fired; }), 0u);
    EXPECT_EQ(fired, 0);
    w.schedule(a, 5);  // in the past: fires at the next advance
    EXPECT_EQ(w.advance(100, [&](Timer&) { ++fired; }), 1u);
}

TEST(TimerWheel, MatchesAReferenceUnderRandomUse) {
    std::mt19937 rng(11);
    TimerWheel w(0, 256, 1);
    std::vector<Timer> timers(500);
    std::map<Timer*, std::uint64_t> expected;  // what is pending, by the reference
    std::uint64_t now = 0;
    for (int step = 0; step < 20000; ++step) {
        Timer& t = timers[rng() % timers.size()];
        switch (rng() % 3) {
            case 0:
            case 1: {
                const std::uint64_t deadline = now + rng() % 2000;  // up to ~8 turns ahead
                w.schedule(t, deadline);
                expected[&t] = deadline;
                break;
            }
            default: w.cancel(t); expected.erase(&t);
        }
        if (step % 7 == 0) {
            now += rng() % 50;
            w.advance(now, [&](Timer& f) {
                ASSERT_TRUE(expected.contains(&f));
                ASSERT_LE(expected[&f], now);
                expected.erase(&f);
            });
            for (const auto& [timer, deadline] : expected) ASSERT_GT(deadline, now) << "a due timer did not fire";
        }
        ASSERT_EQ(w.size(), expected.size());
        std::uint64_t soonest = UINT64_MAX;
        for (const auto& [timer, deadline] : expected) soonest = std::min(soonest, deadline);
        ASSERT_EQ(w.next_deadline(), soonest) << "at step " << step;
    }
}

// The soonest deadline is remembered between calls and forgotten when its timer goes:
// the next one, several turns away, is then found again.
TEST(TimerWheel, NextDeadlineFollowsCancelsAndFiresBeyondATurn) {
    TimerWheel w(0, 64, 10);  // a turn is 640 µs
    Timer near, far, farther;
    w.schedule(far, 5'000);
    w.schedule(farther, 9'000);
    EXPECT_EQ(w.next_deadline(), 5'000u);
    EXPECT_EQ(w.next_deadline(), 5'000u);
    w.schedule(near, 100);
    EXPECT_EQ(w.next_deadline(), 100u);
    w.cancel(near);
    EXPECT_EQ(w.next_deadline(), 5'000u);
    w.schedule(far, 9'500);  // moved later: the old soonest is gone
    EXPECT_EQ(w.next_deadline(), 9'000u);
    EXPECT_EQ(w.advance(9'000, [](Timer&) {}), 1u);
    EXPECT_EQ(w.next_deadline(), 9'500u);
    w.cancel(far);
    EXPECT_EQ(w.next_deadline(), UINT64_MAX);
}

}  // namespace
}  // namespace ms::utcp
