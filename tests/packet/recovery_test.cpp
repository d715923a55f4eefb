// Loss recovery and timers (RFC 6298, RFC 5681, RFC 6582, RFC 1122 §4.2.3.6), tested
// in ESTABLISHED: the retransmission timer, fast retransmit, NewReno's partial ACKs,
// and keepalive.
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

TEST(Recovery, RetransmissionTimerBacksOffExponentially) {
    PacketScript s;
    s.run(kPassiveOpen);
    // The handshake's RTT sample (0 ms in virtual time) gives RTO = the 200 ms minimum.
    s.run(R"(
app send 100
> . seq=1 len=100
+199
> none
+1
> . seq=1 len=100
+399
> none
+1
> . seq=1 len=100
+800
> . seq=1 len=100
)");
    EXPECT_EQ(s.conn()->stats().timeouts, 3u);
    EXPECT_EQ(s.conn()->cwnd(), 1460u) << "RFC 5681 §3.1: a loss window of one segment";
}

TEST(Recovery, MinimumRtoIsConfigurable) {
    PacketScript s;
    s.run(kPassiveOpen);
    s.run(R"(
app min_rto 500
app send 100
> . seq=1 len=100
+499
> none
+1
> . seq=1 len=100
)");
}

TEST(Recovery, KarnsRuleTakesNoSampleFromARetransmission) {
    PacketScript s;
    s.run(kPassiveOpen);
    s.run(R"(
app send 100
> . seq=1 len=100
+200
> . seq=1 len=100
+300
< . seq=1 ack=101 win=512
)");
    EXPECT_EQ(s.conn()->rtt().srtt(), 0u) << "the ACK of a retransmitted segment gives no sample";
    EXPECT_EQ(s.conn()->rtt().backoff(), 1u) << "the backoff stays until a valid sample (RFC 6298 §5.7)";
    s.run(R"(
app send 100
> . seq=101 len=100
+50
< . seq=1 ack=201 win=512
)");
    EXPECT_EQ(s.conn()->rtt().srtt(), 6u) << "7/8 * 0 + 1/8 * 50";
    EXPECT_EQ(s.conn()->rtt().backoff(), 0u);
}

TEST(Recovery, ConnectionFailsAfterTooManyRetransmissions) {
    ScriptConfig config;
    config.options.max_retransmits = 2;
    PacketScript s(config);
    s.run(kPassiveOpen);
    s.run(R"(
app send 100
> . seq=1 len=100
+200
> . seq=1 len=100
+400
> . seq=1 len=100
+800
state NONE
event error:timed_out
)");
}

TEST(Recovery, AfterATimeoutTheWindowRestartsFromOneSegment) {
    PacketScript s;
    s.run(kPassiveOpen);
    std::string script = "app send 14600\n";
    for (int k = 0; k < 10; ++k) script += "> . seq=" + std::to_string(1 + 1460 * k) + " len=1460\n";
    // Every segment is lost: go back to SND.UNA with one segment, then two (slow start).
    script += R"(
+200
> . seq=1 len=1460
> none
< . seq=1 ack=1461 win=512
> . seq=1461 len=1460
> . seq=2921 len=1460
> none
)";
    s.run(script);
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

TEST(Recovery, KeepaliveProbesAnIdlePeerAndGivesUp) {
    PacketScript s;
    s.run(kPassiveOpen);
    // RFC 1122 §4.2.3.6: a probe is SND.UNA - 1 with no data.
    s.run(R"(
app keepalive 1000 500 2
+999
> none
+1
> . seq=0 len=0 ack=1
+500
> . seq=0 len=0
+500
state NONE
event error:timed_out
)");
    EXPECT_EQ(s.stack().stats().connections_closed, 1u);
}

TEST(Recovery, KeepaliveAnsweredKeepsTheConnection) {
    PacketScript s;
    s.run(kPassiveOpen);
    s.run(R"(
app keepalive 1000 500 2
+1000
> . seq=0 len=0
< . seq=1 ack=1 win=512
+500
> none
+500
> . seq=0 len=0
< . seq=1 ack=1 win=512
+1000
> . seq=0 len=0
state ESTABLISHED
)");
}

}  // namespace
}  // namespace ms::utcp::test
