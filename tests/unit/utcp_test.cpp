// UTCP building blocks: sequence-number arithmetic across the wrap, and the timer wheel.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "utcp/seq.hpp"
#include "utcp/timer_wheel.hpp"

namespace ms::utcp {
namespace {

TEST(Seq32, ComparesAcrossTheWrap) {
    const Seq32 before(0xfffffff0u);
    const Seq32 after = before + 0x20;  // wrapped past zero
    EXPECT_EQ(after.value(), 0x10u);
    EXPECT_LT(before, after);
    EXPECT_GT(after, before);
    EXPECT_LE(before, before);
    EXPECT_EQ(after - before, 0x20);
    EXPECT_EQ(before - after, -0x20);
    EXPECT_EQ(Seq32::max(before, after), after);
    EXPECT_EQ(Seq32::min(before, after), before);
    Seq32 s(5);
    s += 0xffffffffu;
    EXPECT_EQ(s.value(), 4u);
}

TEST(Seq32, WindowsIncludeTheStartAndExcludeTheEnd) {
    const Seq32 start(0xfffffffeu);
    EXPECT_TRUE(Seq32::in_window(start, start, 10));
    EXPECT_TRUE(Seq32::in_window(start + 9, start, 10));  // across the wrap
    EXPECT_FALSE(Seq32::in_window(start + 10, start, 10));
    EXPECT_FALSE(Seq32::in_window(start - 1, start, 10));
    EXPECT_FALSE(Seq32::in_window(start, start, 0));  // a zero window holds nothing
}

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
            default:
                w.cancel(t);
                expected.erase(&t);
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
    }
}

}  // namespace
}  // namespace ms::utcp
