// The pacer (utcp/pacer.hpp): departure times at the rate after the unpaced start, a
// schedule that late sends do not push back (up to a millisecond), and the burst it allows.
#include <gtest/gtest.h>

#include "utcp/pacer.hpp"

namespace ms::utcp {
namespace {

TEST(Pacer, DeparturesFollowTheRateAfterTheFirstTenSegments) {
    Pacer p;
    p.set_rate(1'000'000);  // a byte a microsecond
    for (int k = 0; k < 10; ++k) p.on_sent(1000, 1, 0);
    EXPECT_FALSE(p.holds(0)) << "the initial window leaves at once";
    p.on_sent(1000, 1, 0);
    EXPECT_TRUE(p.holds(999));
    EXPECT_FALSE(p.holds(1000));
    p.on_sent(500, 1, 1000);
    EXPECT_EQ(p.next_departure(), 1500u);
    p.on_sent(1000, 1, 1900);  // 400 µs late: the schedule holds
    EXPECT_EQ(p.next_departure(), 2500u);
    EXPECT_TRUE(p.holds(2499));
    p.on_sent(1000, 1, 10'000);  // long late: it catches up at most 2 segments' time (2 ms here)
    EXPECT_EQ(p.next_departure(), 9000u);
    EXPECT_FALSE(p.holds(10'000)) << "the next goes at once";
    p.on_sent(1000, 1, 10'000);
    p.on_sent(1000, 1, 10'000);
    EXPECT_EQ(p.next_departure(), 11'000u);
    EXPECT_TRUE(p.holds(10'999));
    p.set_rate(0);
    EXPECT_FALSE(p.holds(0)) << "rate 0: no pacing";
}

TEST(Pacer, ASuperSegmentHoldsAboutAMillisecondAndAtLeastTwoSegments) {
    Pacer p;
    EXPECT_EQ(p.burst_limit(1448, 64 * 1448), 64u * 1448) << "no rate: the room";
    p.set_rate(100'000'000);  // 100 MB/s: 100 KB a millisecond
    EXPECT_EQ(p.burst_limit(1448, 64 * 1448), 64u * 1448) << "69 segments a millisecond: the room bounds it";
    p.set_rate(10'000'000);  // 10 KB a millisecond: 6 segments
    EXPECT_EQ(p.burst_limit(1448, 64 * 1448), 6u * 1448);
    p.set_rate(1'000);
    EXPECT_EQ(p.burst_limit(1448, 64 * 1448), 2u * 1448);
}

}  // namespace
}  // namespace ms::utcp
