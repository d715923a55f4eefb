// Contract: data transfer in ESTABLISHED (RFC 9293 §3.10.7.4, RFC 1122 §4.2.3.2, RFC 5681 §4.2, RFC 6928): delivery, ACKs,
// Nagle, the initial window.
#include <gtest/gtest.h>

#include "script.hpp"

namespace ms::utcp::test {
namespace {

ScriptConfig no_quick_acks() {
    ScriptConfig c;
    c.options.quick_acks = 0;
    return c;
}

TEST(Established, InOrderDataIsDeliveredAndAckedAtOnceAtTheStart) {
    PacketScript s;
    s.run(kPassiveOpen);
    // Quick ACKs at the start (slow start wants every ACK it can get).
    s.run(R"(
< . seq=1 ack=1 win=512 len=1000
> . seq=1 ack=1001 win=32643
< P. seq=1001 ack=1 win=512 len=500
> . ack=1501
event readable
app recv 1500
)");
}

TEST(Established, DelayedAckFiresAfterItsTimer) {
    PacketScript s(no_quick_acks());
    // RFC 1122 §4.2.3.2: a lone segment is ACKed within the delayed-ACK time (40 ms).
    s.run(kPassiveOpen);
    s.run(R"(
< . seq=1 ack=1 win=512 len=1000
> none
+39
> none
+1
> . ack=1001
)");
}

TEST(Established, EverySecondFullSegmentIsAckedAtOnce) {
    PacketScript s(no_quick_acks());
    s.run(kPassiveOpen);
    s.run(R"(
< . seq=1 ack=1 win=512 len=1460
> none
< . seq=1461 ack=1 win=512 len=1460
> . ack=2921
+100
> none
)");
}

TEST(Established, AcksAreCoalescedAcrossABatch) {
    PacketScript s;
    s.run(kPassiveOpen);
    // Four segments in one batch (the paper's batching): one ACK for all of them.
    s.run(R"(
<< . seq=1 ack=1 win=512 len=1000
<< . seq=1001 ack=1 win=512 len=1000
<< . seq=2001 ack=1 win=512 len=1000
<< . seq=3001 ack=1 win=512 len=1000
flush
> . ack=4001
> none
app recv 4000
)");
    // GRO-like coalescing: in-order data of one connection with the same
    // ACK, window and options is a train; each segment after the first skips the lookup
    // and the ACK processing.
    EXPECT_EQ(s.stack().stats().train_segments_in, 3u);
}

// A new ACK, a new window or a FIN goes through TCP input in full, and PSH ends a train:
// here the ACK of our data must take effect (nothing is resent), the FIN must close.
TEST(Established, ATrainEndsAtAnythingTcpInputMustSee) {
    PacketScript s;
    s.run(kPassiveOpen);
    s.run(R"(
app send 500
> . seq=1 len=500
<< . seq=1 ack=1 win=512 len=1000
<< . seq=1001 ack=501 win=512 len=1000
<< . seq=2001 ack=501 win=512 len=1000
<< P. seq=3001 ack=501 win=512 len=1000
<< . seq=4001 ack=501 win=512 len=1000
<< . seq=5001 ack=501 win=600 len=1000
<< F. seq=6001 ack=501 win=600 len=1000
flush
> . ack=7002
state CLOSE_WAIT
app recv 7000
+5000
> none
)");
    // seq=2001 and the PSH segment continue trains; the rest start one or end one.
    EXPECT_EQ(s.stack().stats().train_segments_in, 2u);
}

// A train that fills the last hole before a FIN that came out of order takes the FIN,
// as full input would.
TEST(Established, ATrainThatFillsTheLastHoleTakesTheWaitingFin) {
    PacketScript s;
    s.run(kPassiveOpen);
    s.run(R"(
< . seq=2001 ack=1 win=512 len=1000
> . ack=1
< F. seq=3001 ack=1 win=512
> . ack=1
<< . seq=1 ack=1 win=512 len=1000
<< . seq=1001 ack=1 win=512 len=1000
flush
> . ack=3002
state CLOSE_WAIT
app recv 3000
)");
    EXPECT_EQ(s.stack().stats().train_segments_in, 1u);
}

TEST(Established, OutOfOrderDataIsKeptAndTheHoleFilledAcksEverything) {
    PacketScript s(no_quick_acks());
    s.run(kPassiveOpen);
    // RFC 5681 §4.2: duplicate ACKs at once for out-of-order data, and an immediate ACK
    // when the hole is filled.
    s.run(R"(
< . seq=1001 ack=1 win=512 len=1000
> . ack=1
< . seq=3001 ack=1 win=512 len=1000
> . ack=1
< . seq=1 ack=1 win=512 len=1000
> . ack=2001
< . seq=2001 ack=1 win=512 len=1000
> . ack=4001
app recv 4000
)");
    EXPECT_EQ(s.conn()->stats().out_of_order, 2u);
}

TEST(Established, EachOutOfOrderSegmentOfABatchGetsItsOwnDuplicateAck) {
    PacketScript s;
    s.run(kPassiveOpen);
    // Batching must not merge the duplicate ACKs the sender counts (RFC 5681 §4.2).
    s.run(R"(
<< . seq=1001 ack=1 win=512 len=1000
<< . seq=2001 ack=1 win=512 len=1000
<< . seq=3001 ack=1 win=512 len=1000
flush
> . ack=1
> . ack=1
> . ack=1
> none
)");
}

TEST(Established, ABatchThatFillsItsOwnHoleOwesNoDuplicateAcks) {
    PacketScript s;
    s.run(kPassiveOpen);
    s.run(R"(
<< . seq=1001 ack=1 win=512 len=1000
<< . seq=1 ack=1 win=512 len=1000
flush
> . ack=2001
> none
)");
}

TEST(Established, ALargeBatchIsAckedEveryEightSegments) {
    PacketScript s;
    s.run(kPassiveOpen);
    std::string script;
    for (int k = 0; k < 20; ++k) script += "<< . seq=" + std::to_string(1 + 1000 * k) + " ack=1 win=512 len=1000\n";
    script += "flush\n> . ack=8001\n> . ack=16001\n> . ack=20001\n> none\n";
    s.run(script);
}

TEST(Established, OldDuplicateIsAckedAndDropped) {
    PacketScript s;
    s.run(kPassiveOpen);
    s.run(R"(
< . seq=1 ack=1 win=512 len=1000
> . ack=1001
< . seq=1 ack=1 win=512 len=1000
> . ack=1001
app recv 1000
)");
    EXPECT_EQ(s.conn()->readable(), 0u);
}

TEST(Established, OverlappingRetransmissionDeliversOnlyTheNewPart) {
    PacketScript s;
    s.run(kPassiveOpen);
    // The pattern check of `app recv` proves that bytes 500..999 were not taken twice.
    s.run(R"(
< . seq=1 ack=1 win=512 len=1000
> . ack=1001
< . seq=501 ack=1 win=512 len=1000
> . ack=1501
app recv 1500
)");
}

TEST(Established, InitialWindowIsTenSegments) {
    PacketScript s;
    s.run(kPassiveOpen);
    // RFC 6928: min(10*MSS, max(2*MSS, 14600)) = 14600 with MSS 1460.
    std::string script = "app send 30000\n";
    for (int k = 0; k < 10; ++k) script += "> . seq=" + std::to_string(1 + 1460 * k) + " len=1460\n";
    script += "> none\n";
    s.run(script);
}

TEST(Established, NagleHoldsSmallSegmentsWhileDataIsUnacked) {
    PacketScript s;
    s.run(kPassiveOpen);
    s.run(R"(
app send 100
> . seq=1 len=100
app send 100
app send 100
> none
< . seq=1 ack=101 win=512
> . seq=101 len=200
)");
}

TEST(Established, NoDelayTurnsNagleOff) {
    PacketScript s;
    s.run(kPassiveOpen);
    s.run(R"(
app nodelay on
app send 100
> . seq=1 len=100
app send 100
> . seq=101 len=100
)");
}

TEST(Established, SequenceNumbersWrapAround) {
    PacketScript s;
    s.run("peer_isn 4294967000\nour_isn 4294966800");
    s.run(kPassiveOpen);
    // Both directions cross 2^32 within the first 1000 bytes.
    s.run(R"(
< . seq=1 ack=1 win=512 len=1000
> . ack=1001
< . seq=1001 ack=1 win=512 len=1000
> . ack=2001
app recv 2000
app send 1460
> . seq=1 len=1460
< . seq=2001 ack=1461 win=512
app send 1000
> . seq=1461 len=1000
)");
}

// An idle connection holds no buffer memory (buffers.hpp): the send buffer gives its
// array back once everything is acknowledged, the receive buffer once it is read, and the
// stack's pool keeps them for the next burst.
TEST(Established, IdleConnectionHoldsNoBufferMemory) {
    PacketScript s;
    s.run(kPassiveOpen);
    EXPECT_FALSE(s.conn()->holds_buffer_memory());
    s.run(R"(
< . seq=1 ack=1 win=512 len=100
> . ack=101
app nodelay on
app send 200
> . seq=1 ack=101 len=200
)");
    EXPECT_TRUE(s.conn()->holds_buffer_memory());
    s.run(R"(
< . seq=101 ack=201 win=512
app recv 100
)");
    EXPECT_FALSE(s.conn()->holds_buffer_memory());
    EXPECT_EQ(s.stack().buffer_pool().kept(), 2u);
    s.run(R"(
app send 10
> . seq=201 ack=101 len=10
)");
    EXPECT_EQ(s.stack().buffer_pool().kept(), 1u) << "the send buffer took its array from the pool";
}

}  // namespace
}  // namespace ms::utcp::test
