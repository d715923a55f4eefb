// Contract: RACK-TLP over the SACK scoreboard (RFC 8985 §6-7, RFC 6675): losses found by time, the reordering window, tail
 // loss probes.
#include <gtest/gtest.h>

#include "script.hpp"

namespace ms::utcp::test {
namespace {

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
// §6.2) on its reorder timer, to the microsecond (2.5 ms of a 10 ms RTT), then resends.
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
> none
+499us
> none
+1us
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
// At a 100 µs RTT the reordering window is 25 µs (min_rtt / 4): a hole below a single
// SACKed segment is resent 125 µs after the SACKed one went, not a millisecond later.
TEST(Rack, SubMillisecondRttDetectsALossWithinAQuarterRtt) {
    PacketScript s;
    s.run(kSackOpenRtt100us);
    s.run(R"(
app send 2920
> . seq=1 len=1460
> . seq=1461 len=1460
+100us
< . seq=1 ack=1 win=65535 sack=1461-2921
> none
+24us
> none
+1us
> . seq=1 len=1460
+100us
< . seq=1 ack=2921 win=65535
> none
)");
    EXPECT_EQ(s.conn()->stats().lost_segments, 1u);
    EXPECT_EQ(s.conn()->rtt().srtt(), 100u) << "the handshake's sample, in µs";
}

// At a 100 µs RTT a lost tail is probed after 2 SRTT + 2 ms (2.2 ms), where a millisecond
// clock waited at least 10 ms; the RTO (200 ms) never fires.
TEST(Tlp, SubMillisecondRttProbesTheTailAfterTwoSrttAndTheSlack) {
    PacketScript s;
    s.run(kSackOpenRtt100us);
    s.run(kTwoSegmentsAndATail);
    s.run(R"(
+2199us
> none
+1us
> . seq=2921 len=80
+100us
< . seq=1 ack=1461 win=65535 sack=2921-3001
> . seq=1461 len=1460
+100us
< . seq=1 ack=3001 win=65535
> none
)");
    EXPECT_EQ(s.conn()->stats().loss_probes, 1u);
    EXPECT_EQ(s.conn()->stats().timeouts, 0u);
}

TEST(Tlp, TailLossIsProbedBeforeTheRto) {
    PacketScript s;
    s.run(kSackOpenRtt10);
    s.run(kTwoSegmentsAndATail);
    s.run(R"(
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

}  // namespace
}  // namespace ms::utcp::test
