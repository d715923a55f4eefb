// Contract: loss recovery without SACK (RFC 5681 §3.2 fast retransmit, RFC 6582 NewReno, RFC 3042 limited transmit):
 // duplicate and partial ACKs.
#include <gtest/gtest.h>

#include "script.hpp"

namespace ms::utcp::test {
namespace {

// The NewReno figures of RFC 5681 and RFC 6582 (CUBIC, the default, backs off less).
ScriptConfig newreno() {
    ScriptConfig c;
    c.options.congestion = "newreno";
    return c;
}

// Ten segments out; the second is lost (and, in the NewReno test, the fourth too).
std::string ten_segments_out() {
    std::string script = "app send 30000\n" + segments_out(1, 10);
    // The first segment arrives: slow start grows cwnd by one segment, so two more go.
    script += R"(
< . seq=1 ack=1461 win=512
> . seq=14601 len=1460
> . seq=16061 len=1460
)";
    return script;
}

TEST(Recovery, ThreeDuplicateAcksTriggerFastRetransmitWithoutTimeout) {
    PacketScript s(newreno());
    s.run(kPassiveOpen);
    s.run(ten_segments_out());
    // RFC 5681 §3.2: the third duplicate ACK resends the missing segment at once (the
    // first two each let a new segment go, RFC 3042).
    s.run(R"(
< . seq=1 ack=1461 win=512
> . seq=17521 len=1460
< . seq=1 ack=1461 win=512
> . seq=18981 len=1460
< . seq=1 ack=1461 win=512
> . seq=1461 len=1460
> none
)");
    EXPECT_TRUE(s.conn()->in_recovery());
    // RFC 6582 §3.2 step 2: ssthresh = FlightSize / 2 = 18980 / 2, cwnd = ssthresh + 3 MSS.
    EXPECT_EQ(s.conn()->ssthresh(), 9490u);
    EXPECT_EQ(s.conn()->cwnd(), 9490u + 3 * 1460);
    // Everything arrives once the hole is filled: recovery ends, no timeout ever fired.
    s.run(R"(
< . seq=1 ack=20441 win=512
> . seq=20441 len=1460
> . seq=21901 len=1460
> none
)");
    EXPECT_FALSE(s.conn()->in_recovery());
    EXPECT_EQ(s.conn()->stats().timeouts, 0u);
    EXPECT_EQ(s.conn()->stats().fast_retransmits, 1u);
    EXPECT_EQ(s.conn()->cwnd(), 2920u) << "RFC 6582 step 6: min(ssthresh, max(FlightSize, SMSS) + SMSS)";
}

// RFC 3042: the first two duplicate ACKs each release one new segment beyond cwnd (10
// segments at first); the third starts fast retransmit.
TEST(Recovery, LimitedTransmitSendsANewSegmentOnEachOfTwoDuplicateAcks) {
    PacketScript s(newreno());
    s.run(kActiveOpen);
    s.run("app nodelay on\napp send 20000\n" + segments_out(1, 10) + R"(> none
< . seq=1 ack=1461 win=65535
> . seq=14601 len=1460
> . seq=16061 len=1460
< . seq=1 ack=1461 win=65535
> . seq=17521 len=1460
< . seq=1 ack=1461 win=65535
> . seq=18981 len=1020
< . seq=1 ack=1461 win=65535
> . seq=1461 len=1460
)");
    EXPECT_EQ(s.conn()->stats().fast_retransmits, 1u);
}

TEST(Recovery, PartialAckResendsTheNextHoleAtOnce) {
    PacketScript s(newreno());
    s.run(kPassiveOpen);
    s.run(ten_segments_out());
    s.run(R"(
< . seq=1 ack=1461 win=512
> . seq=17521 len=1460
< . seq=1 ack=1461 win=512
> . seq=18981 len=1460
< . seq=1 ack=1461 win=512
> . seq=1461 len=1460
# The retransmission fills the first hole; the fourth segment is missing too.
< . seq=1 ack=4381 win=512
> . seq=4381 len=1460
> none
)");
    // RFC 6582 §3.2 step 5: deflate by the 2920 bytes acknowledged, add one MSS back.
    EXPECT_EQ(s.conn()->cwnd(), 9490u + 3 * 1460 - 2920 + 1460);
    EXPECT_TRUE(s.conn()->in_recovery());
    s.run(R"(
< . seq=1 ack=20441 win=512
> . seq=20441 len=1460
> . seq=21901 len=1460
)");
    EXPECT_FALSE(s.conn()->in_recovery());
    EXPECT_EQ(s.conn()->stats().timeouts, 0u);
    EXPECT_EQ(s.conn()->stats().fast_retransmits, 1u) << "one recovery episode";
}

TEST(Recovery, DuplicateAcksInRecoveryInflateTheWindow) {
    PacketScript s(newreno());
    s.run(kPassiveOpen);
    s.run(ten_segments_out());
    s.run(R"(
< . seq=1 ack=1461 win=512
> . seq=17521 len=1460
< . seq=1 ack=1461 win=512
> . seq=18981 len=1460
< . seq=1 ack=1461 win=512
> . seq=1461 len=1460
)");
    // cwnd 13870 against 18980 in flight (two segments went by limited transmit): four
    // more duplicates (5840 more) let 730 bytes of new data go, which is less than a
    // segment: SWS avoidance holds it. A fifth lets a whole segment go.
    std::string more;
    for (int k = 0; k < 5; ++k) more += "< . seq=1 ack=1461 win=512\n";
    more += "> . seq=20441 len=1460\n> none\n";
    s.run(more);
}

TEST(Recovery, WindowUpdatesAndDataAreNotDuplicateAcks) {
    PacketScript s;
    s.run(kPassiveOpen);
    s.run(ten_segments_out());
    // RFC 5681 §2: an ACK that carries data or changes the window is not a duplicate.
    s.run(R"(
< . seq=1 ack=1461 win=511
< . seq=1 ack=1461 win=510
< . seq=1 ack=1461 win=509 len=10
> . ack=11
> none
)");
    EXPECT_FALSE(s.conn()->in_recovery());
}

}  // namespace
}  // namespace ms::utcp::test
