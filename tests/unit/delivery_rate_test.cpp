// Delivery rate samples (utcp/delivery_rate.hpp): the rate of the newest delivered
// segment's interval, the longer of its send and ACK spans; no RTT from a segment that
// was sent more than once (an ACK of the first transmission would look like a
// microseconds-long round trip, and BBR's min RTT would take it for ten seconds).
#include <gtest/gtest.h>

#include "utcp/delivery_rate.hpp"

namespace ms::utcp {
namespace {

TEST(DeliveryRate, SamplesTheNewestSegmentOverItsLongerInterval) {
    DeliveryRate d;
    const SendStamp first = d.on_send(1000, 0, 1'000);     // a flight starts at 1 ms
    const SendStamp second = d.on_send(1000, 1000, 2'000);  // sent 1 ms later
    d.on_delivered(1000, 1'000, first, 21'000);
    d.on_delivered(1000, 2'000, second, 22'000);
    const RateSample s = d.take(0, 20'000);
    ASSERT_TRUE(s.valid());
    EXPECT_EQ(s.delivered, 2000u);
    EXPECT_EQ(s.interval_us, 21'000u) << "the ACK span (22 ms - 1 ms) is longer than the send span (1 ms)";
    EXPECT_EQ(s.delivery_rate, 2000u * 1'000'000 / 21'000);
    EXPECT_EQ(s.rtt_us, 20'000u);
    EXPECT_EQ(s.tx_in_flight, 2000u);
    EXPECT_EQ(s.newly_acked, 2000u);
    EXPECT_EQ(s.total_delivered, 2000u);
}

TEST(DeliveryRate, ARetransmittedSegmentGivesNoRttAndShortIntervalsNoRate) {
    DeliveryRate d;
    const SendStamp once = d.on_send(1000, 0, 0);
    d.on_delivered(1000, 30'000, once, 30'100, /*resent=*/true);  // the first transmission's ACK, just after a resend
    const RateSample s = d.take(0, 20'000);
    EXPECT_TRUE(s.has_data);
    EXPECT_EQ(s.rtt_us, 0u) << "ambiguous: no RTT";
    d.on_lost(500);
    const SendStamp next = d.on_send(1000, 0, 40'000);
    d.on_delivered(1000, 40'000, next, 40'500);
    const RateSample quick = d.take(0, 20'000);
    EXPECT_FALSE(quick.valid()) << "an interval under the min RTT is too noisy to be a rate";
    EXPECT_EQ(quick.tx_lost, 0u) << "the loss came before the sampled segment went";
    EXPECT_EQ(d.lost(), 500u);
}

TEST(DeliveryRate, AppLimitedSamplesAreMarkedUntilTheFlightIsDelivered) {
    DeliveryRate d;
    const SendStamp a = d.on_send(1000, 0, 0);
    d.on_app_limited(1000);
    const SendStamp b = d.on_send(1000, 1000, 100);
    EXPECT_FALSE(a.app_limited);
    EXPECT_TRUE(b.app_limited);
    d.on_delivered(1000, 0, a, 20'000);
    d.on_delivered(1000, 100, b, 20'100);
    EXPECT_TRUE(d.take(0, 0).app_limited);
    const SendStamp c = d.on_send(1000, 0, 30'000);
    EXPECT_FALSE(c.app_limited) << "the bubble ended once its bytes were delivered";
}

// An application that went idle (nothing in flight) and writes again: its first flight
// measures the application's pace, not the path's.
TEST(DeliveryRate, AfterAnIdleMarkTheNextSendIsAppLimited) {
    DeliveryRate d;
    const SendStamp a = d.on_send(1000, 0, 0);
    d.on_delivered(1000, 0, a, 20'000);
    (void)d.take(0, 0);
    d.on_app_limited(0);
    const SendStamp b = d.on_send(1000, 0, 50'000);
    EXPECT_TRUE(b.app_limited);
    d.on_delivered(1000, 50'000, b, 70'000);
    EXPECT_TRUE(d.take(0, 0).app_limited);
    EXPECT_FALSE(d.on_send(1000, 0, 70'000).app_limited) << "its ACK delivered beyond the bubble";
}

}  // namespace
}  // namespace ms::utcp
