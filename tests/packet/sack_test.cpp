// SACK (RFC 2018) with D-SACK (RFC 2883): negotiation, and the blocks a receiver reports;
// RACK-TLP (RFC 8985) over the SACK scoreboard: losses found by time, the reordering
// window, the tail loss probe, and PRR (RFC 6937) pacing the recovery.
#include <gtest/gtest.h>

#include "script.hpp"

namespace ms::utcp::test {
namespace {

TEST(Sack, OfferedInOurSynAndEchoedOnlyWhenThePeerOffersIt) {
    PacketScript active;
    active.run(R"(
connect 80
> S seq=0 sackok
< S. seq=0 ack=1 win=65535 mss=1460 sackok
> . seq=1 ack=1
)");
    EXPECT_TRUE(active.conn()->sack_enabled());
    PacketScript without;
    without.run(R"(
listen 80
< S seq=0 win=65535 mss=1460
> S. seq=0 ack=1 nosackok
)");
    PacketScript with;
    with.run(kSackOpen);
    EXPECT_TRUE(with.conn()->sack_enabled());
}

TEST(Sack, OffCanBeChosenPerConnection) {
    ConnOptions o;
    o.sack = false;
    PacketScript s({.options = o});
    s.run(R"(
listen 80
< S seq=0 win=65535 mss=1460 sackok
> S. seq=0 ack=1 nosackok
< . seq=1 ack=1 win=512
< . seq=101 ack=1 win=512 len=100
> . ack=1 nosack
)");
    EXPECT_FALSE(s.conn()->sack_enabled());
}

// RFC 2018 §4: the first block holds the segment that arrived last; the others repeat
// the most recently reported ones; blocks merge as holes fill.
TEST(Sack, BlocksReportTheLatestRangeFirst) {
    PacketScript s;
    s.run(kSackOpen);
    s.run(R"(
< . seq=1 ack=1 win=512 len=100
> . ack=101 nosack
< . seq=201 ack=1 win=512 len=100
> . ack=101 sack=201-301
< . seq=401 ack=1 win=512 len=100
> . ack=101 sack=401-501,201-301
< . seq=601 ack=1 win=512 len=100
> . ack=101 sack=601-701,401-501,201-301
# The hole between the first two closes: one block, and it is the latest.
< . seq=301 ack=1 win=512 len=100
> . ack=101 sack=201-501,601-701
< . seq=101 ack=1 win=512 len=100
> . ack=501 sack=601-701
< . seq=501 ack=1 win=512 len=100
> . ack=701 nosack
)");
}

// RFC 2883: a duplicate segment is reported in the first block of the next ACK, once.
TEST(Sack, DuplicateSegmentIsReportedAsDsack) {
    PacketScript s;
    s.run(kSackOpen);
    s.run(R"(
< . seq=1 ack=1 win=512 len=100
> . ack=101 nosack
< . seq=1 ack=1 win=512 len=100
> . ack=101 sack=1-101
< . seq=101 ack=1 win=512 len=100
> . ack=201 nosack
# Partly old, partly new: the old part is the duplicate.
< . seq=151 ack=1 win=512 len=100
> . ack=251 sack=151-201
)");
}

// Blocks take option room: a data segment that carries them carries less payload, so
// that the frame never exceeds the MTU (RFC 9293 §3.7.1).
TEST(Sack, BlocksOnADataSegmentShrinkItsPayload) {
    PacketScript s;
    s.run(kSackOpen);
    s.run(R"(
< . seq=201 ack=1 win=512 len=100
> . ack=1 sack=201-301
app nodelay on
app send 3000
> . seq=1 ack=1 len=1448 sack=201-301
> . seq=1449 len=1448
> . seq=2897 len=104
)");
}

// A SACK open with a 10 ms RTT sample from the handshake (SRTT 10 ms, RTO 200 ms).
constexpr const char* kSackOpenRtt10 = R"(
connect 80
> S seq=0 sackok
+10
< S. seq=0 ack=1 win=65535 mss=1460 sackok
> . seq=1 ack=1
state ESTABLISHED
app nodelay on
)";

// Three segments SACKed above a hole (DupThresh, RFC 6675): RACK's reordering window is
// zero, so the hole is lost at once and goes again; SACKed data never does.
TEST(Rack, HoleBelowThreeSackedSegmentsIsResentAtOnce) {
    PacketScript s;
    s.run(kSackOpenRtt10);
    s.run("app send 7300\n" + segments_out(1, 5) + R"(+10
< . seq=1 ack=1461 win=65535 sack=2921-7301
> . seq=1461 len=1460
> none
< . seq=1 ack=7301 win=65535
> none
)");
    EXPECT_EQ(s.conn()->stats().lost_segments, 1u);
    EXPECT_EQ(s.conn()->stats().retransmits, 1u);
    EXPECT_EQ(s.conn()->stats().timeouts, 0u);
}

// One segment SACKed above a hole may be reordering: RACK waits min_rtt / 4 (RFC 8985
// §6.2) on its reorder timer, then resends.
TEST(Rack, SingleSackWaitsTheReorderingWindow) {
    PacketScript s;
    s.run(kSackOpenRtt10);
    s.run(R"(
app send 2920
> . seq=1 len=1460
> . seq=1461 len=1460
+10
< . seq=1 ack=1 win=65535 sack=1461-2921
> none
+1
> none
+1
> . seq=1 len=1460
< . seq=1 ack=2921 win=65535
> none
)");
    EXPECT_EQ(s.conn()->stats().timeouts, 0u);
}

// Reordering that RACK waited out costs nothing: the hole arrives inside the window.
TEST(Rack, ReorderingInsideTheWindowIsNotALoss) {
    PacketScript s;
    s.run(kSackOpenRtt10);
    s.run(R"(
app send 2920
> . seq=1 len=1460
> . seq=1461 len=1460
+10
< . seq=1 ack=1 win=65535 sack=1461-2921
+1
< . seq=1 ack=2921 win=65535
+50
> none
)");
    EXPECT_EQ(s.conn()->stats().lost_segments, 0u);
    EXPECT_EQ(s.conn()->stats().retransmits, 0u);
}

// RFC 8985 §7: when the tail of a flight draws no ACK, a probe (the last segment again,
// as there is no new data) goes after 2 SRTT (and 2 ms of timer slack), long before the RTO; its SACK reveals the
// lost segment, which RACK then resends.
TEST(Tlp, TailLossIsProbedBeforeTheRto) {
    PacketScript s;
    s.run(kSackOpenRtt10);
    s.run(R"(
app send 3000
> . seq=1 len=1460
> . seq=1461 len=1460
> . seq=2921 len=80
+21
> none
+1
> . seq=2921 len=80
+10
< . seq=1 ack=1461 win=65535 sack=2921-3001
> . seq=1461 len=1460
+10
< . seq=1 ack=3001 win=65535
> none
)");
    EXPECT_EQ(s.conn()->stats().loss_probes, 1u);
    EXPECT_EQ(s.conn()->stats().timeouts, 0u);
}

// A retransmission lost at the tail of a recovery: nothing sent after it can be delivered
// to reveal the loss (RACK, §6.2), so UTCP probes in recovery too (unlike RFC 8985 §7.2):
// after 2 SRTT + 2 ms it resends the first segment not delivered, instead of waiting for
// the RTO (200 ms at least).
TEST(Tlp, LostRetransmissionAtTheTailOfARecoveryIsProbed) {
    PacketScript s;
    s.run(kSackOpenRtt10);
    s.run("app send 7300\n" + segments_out(1, 5) + R"(+10
< . seq=1 ack=1461 win=65535 sack=2921-7301
> . seq=1461 len=1460
+21
> none
+1
> . seq=1461 len=1460
+10
< . seq=1 ack=7301 win=65535
> none
)");
    EXPECT_EQ(s.conn()->stats().loss_probes, 1u);
    EXPECT_EQ(s.conn()->stats().timeouts, 0u);
}

// Without SACK, NewReno (RFC 6582) recovers as before: no RACK, no probe.
TEST(Tlp, NoProbeWithoutSack) {
    PacketScript s;
    s.run(kActiveOpen);
    s.run(R"(
app nodelay on
app send 1000
> . seq=1 len=1000
+199
> none
+1
> . seq=1 len=1000
)");
    EXPECT_EQ(s.conn()->stats().loss_probes, 0u);
    EXPECT_EQ(s.conn()->stats().timeouts, 1u);
}

// PRR (RFC 6937): in recovery, what goes out follows what the peer delivers, in the
// proportion ssthresh / RecoverFS (here 6570 / 13140: one byte for two), not a burst.
TEST(Prr, RecoverySendsInProportionToWhatIsDelivered) {
    ConnOptions newreno;
    newreno.congestion = "newreno";  // its ssthresh is half the flight: round numbers
    PacketScript s({.options = newreno});
    s.run(kSackOpenRtt10);
    s.run("app send 20440\n" + segments_out(1, 10) + R"(> none
+10
# 1460 bytes acknowledged and 4380 SACKed: 5840 delivered, so 2920 may go.
< . seq=1 ack=1461 win=65535 sack=2921-7301
> . seq=1461 len=1460
> . seq=14601 len=1460
> none
# 2920 more delivered: 1460 more may go.
< . seq=1 ack=1461 win=65535 sack=2921-10221
> . seq=16061 len=1460
> none
)");
    EXPECT_TRUE(s.conn()->in_recovery());
    EXPECT_EQ(s.conn()->stats().lost_segments, 1u);
    EXPECT_EQ(s.conn()->ssthresh(), (14600u - 1460u) / 2);  // RFC 5681 eqn. 4: half the flight
}

}  // namespace
}  // namespace ms::utcp::test
