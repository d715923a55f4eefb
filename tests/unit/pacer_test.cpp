// The pacer (utcp/pacer.hpp): departure times at the rate after the unpaced start, the
// credit a late send earns back (at most half its time), and the burst it allows.
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
    p.on_sent(1000, 1, 1900);  // 400 µs late: earns back 400 of its 1000
    EXPECT_EQ(p.next_departure(), 2500u);
    p.on_sent(1000, 1, 10'000);  // long late: at most half its own time
    EXPECT_EQ(p.next_departure(), 10'500u);
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
