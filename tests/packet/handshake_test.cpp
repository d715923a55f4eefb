// Contract: the three-way handshake (RFC 9293 §3.5, §3.10.7.1-3): LISTEN and its queues, SYN_RECEIVED, SYN_SENT and the RFC
// 6528 ISN.
#include <gtest/gtest.h>

#include "script.hpp"

namespace ms::utcp::test {
namespace {

constexpr const char* kSynReceived = R"(
listen 80
< S seq=0 win=65535 mss=1460 ws=7
> S. seq=0 ack=1
state SYN_RECEIVED
)";

TEST(Listen, SynIsAnsweredWithSynAckCarryingMssAndWindowScale) {
    PacketScript s;
    s.run(kPassiveOpen);
}

TEST(Listen, SynWithoutOptionsGetsDefaultMssAndNoScaling) {
    PacketScript s;
    // RFC 9293 §3.7.1: no MSS option means 536; RFC 7323 §2.2: no scaling unless both offer it.
    s.run(R"(
listen 80
< S seq=0 win=8192
> S. seq=0 ack=1 win=65535 mss=1460 nows=1
< . seq=1 ack=1 win=8192
state ESTABLISHED
app send 2000
> . seq=1 len=536
> . seq=537 len=536
> . seq=1073 len=536
> none
# Nagle (RFC 9293 §3.7.4): the last small segment waits for the outstanding ACK.
< . seq=1 ack=1609 win=8192
> . seq=1609 len=392
)");
}

TEST(Listen, MssIsClampedToOurMtu) {
    PacketScript s;
    s.run(R"(
listen 80
< S seq=0 win=65535 mss=9000
> S. seq=0 ack=1 mss=1460
< . seq=1 ack=1 win=65535
app send 3000
> . seq=1 len=1460
> . seq=1461 len=1460
> none
< . seq=1 ack=2921 win=65535
> . seq=2921 len=80
)");
}

TEST(Listen, RstIsIgnoredAndAckDrawsRst) {
    PacketScript s;
    s.run(R"(
listen 80
< R seq=0
> none
< . seq=7 ack=abs:12345
> R seq=abs:12345
state NONE
)");
}

TEST(Listen, SegmentToNoConnectionGetsRst) {
    PacketScript s;
    // §3.10.7.1: without ACK, <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
    s.run(R"(
< S seq=0 win=65535
> R. seq=abs:0 ack=1
< . seq=5 ack=abs:777 len=10
> R seq=abs:777
< R seq=0
> none
)");
    EXPECT_EQ(s.stack().stats().no_connection, 3u);
}

// With SYN cookies off (syn_cookie_test.cpp has them on).
TEST(Listen, SynQueueLimitDropsExtraSyns) {
    ScriptConfig config;
    config.syn_queue = 1;
    config.syn_cookies = false;
    PacketScript s(config);
    s.run(R"(
listen 80
< S seq=0 win=65535
> S. seq=0 ack=1
# A second SYN, from another port, is over the limit: no answer.
peer_port 40001
< S seq=0 win=65535
> none
)");
    EXPECT_EQ(s.stack().stats().syn_queue_full, 1u);
    // Once the first completes, the queue has room again.
    s.run(R"(
peer_port 40000
< . seq=1 ack=1
state ESTABLISHED
peer_port 40001
< S seq=0 win=65535
> S. seq=0 ack=1
)");
}

TEST(Listen, BacklogLimitsConnectionsWaitingToBeAccepted) {
    ScriptConfig config;
    config.backlog = 1;
    PacketScript s(config);
    s.run(R"(
listen 80 raw
< S seq=0 win=65535
> S. seq=0 ack=1
< . seq=1 ack=1
state ESTABLISHED
peer_port 40001
< S seq=0 win=65535
> none
)");
    EXPECT_EQ(s.stack().stats().backlog_full, 1u);
    EXPECT_EQ(s.stack().listen(80), nullptr) << "one listener per port";
}

TEST(SynReceived, AckCompletesAndTheApplicationIsTold) {
    PacketScript s;
    s.run(kSynReceived);
    s.run(R"(
< . seq=1 ack=1 win=512
state ESTABLISHED
event accepted
)");
}

TEST(SynReceived, DuplicateSynGetsTheSynAckAgain) {
    PacketScript s;
    s.run(kSynReceived);
    s.run(R"(
< S seq=0 win=65535 mss=1460 ws=7
> S. seq=0 ack=1
state SYN_RECEIVED
)");
}

TEST(SynReceived, UnacceptableAckDrawsRst) {
    PacketScript s;
    s.run(kSynReceived);
    s.run(R"(
< . seq=1 ack=7
> R seq=7
state SYN_RECEIVED
)");
}

TEST(SynReceived, RstAtRcvNxtRemovesTheHalfOpenConnectionQuietly) {
    PacketScript s;
    s.run(kSynReceived);
    s.run(R"(
< R seq=1
state NONE
> none
)");
    EXPECT_TRUE(s.handler().events.empty()) << "the application never heard of it";
}

TEST(SynReceived, SynAckIsRetransmittedOnTimeout) {
    PacketScript s;
    s.run(kSynReceived);
    s.run(R"(
+1000
> S. seq=0 ack=1
+2000
> S. seq=0 ack=1
< . seq=1 ack=1 win=512
state ESTABLISHED
)");
}

TEST(SynReceived, DataWithTheHandshakeAckIsDelivered) {
    PacketScript s;
    s.run(kSynReceived);
    s.run(R"(
< P. seq=1 ack=1 win=512 len=100
event accepted
event readable
> . seq=1 ack=101
app recv 100
)");
}

TEST(SynSent, SynAckCompletesTheActiveOpen) {
    PacketScript s;
    s.run(kActiveOpen);
    EXPECT_EQ(s.conn()->send_mss(), 1460);
}

// Each reason an active open is refused has its own name (the event loop reports it).
TEST(SynSent, ConnectNamesWhyItFails) {
    PacketScript s({.max_connections = 2});
    Stack& st = s.stack();
    const wire::IpAddr peer = s.tuple().remote;
    ASSERT_TRUE(st.connect(40000, peer, 80).ok());
    const ConnectResult again = st.connect(40000, peer, 80);
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.error(), ConnectError::in_use);
    const ConnectResult nowhere = st.connect(40001, wire::IpAddr::v4(0xc6130001), 80);  // 198.19.0.1
    ASSERT_FALSE(nowhere.ok());
    EXPECT_EQ(nowhere.error(), ConnectError::no_route);
    EXPECT_EQ(st.stats().no_route, 1u);
    ASSERT_TRUE(st.connect(40002, peer, 80).ok());
    const ConnectResult full = st.connect(40003, peer, 80);
    ASSERT_FALSE(full.ok());
    EXPECT_EQ(full.error(), ConnectError::too_many_connections);
    EXPECT_STREQ(to_string(ConnectError::too_many_connections), "the stack's connection limit is reached");
}

TEST(SynSent, AckOutsideOurSequenceSpaceDrawsRstAndKeepsWaiting) {
    PacketScript s;
    s.run(R"(
connect 80
> S seq=0
< S. seq=0 ack=5 win=65535
> R seq=5
state SYN_SENT
< S. seq=0 ack=1 win=65535
> . seq=1 ack=1
state ESTABLISHED
)");
}

TEST(SynSent, RstWithAcceptableAckRefusesTheConnection) {
    PacketScript s;
    s.run(R"(
connect 80
> S seq=0
# RFC 5961 §3.2: a RST without an acceptable ACK is ignored in SYN_SENT.
< R seq=0
state SYN_SENT
< R. seq=0 ack=1
state NONE
event error:connection_refused
event closed
)");
}

TEST(SynSent, SimultaneousOpen) {
    PacketScript s;
    // RFC 9293 Figure 7: both SYNs cross; each side goes to SYN_RECEIVED and answers
    // with SYN,ACK, then each SYN,ACK's ACK completes the open.
    s.run(R"(
connect 80
> S seq=0 ws=3
< S seq=0 win=65535 mss=1460 ws=7
> S. seq=0 ack=1 ws=3
state SYN_RECEIVED
< S. seq=0 ack=1 win=512
state ESTABLISHED
event connected
> . seq=1 ack=1
)");
}

TEST(SynSent, SynIsRetransmittedWithBackoffThenGivesUp) {
    ScriptConfig config;
    config.options.max_syn_retransmits = 2;
    PacketScript s(config);
    // RFC 6298 §2.1: 1 s before any sample, doubled on each expiry (§5.5).
    s.run(R"(
connect 80
> S seq=0
+999
> none
+1
> S seq=0
+1999
> none
+1
> S seq=0
+4000
state NONE
event error:timed_out
)");
}

TEST(Isn, KeyedHashOfTheTupleAdvancesWithTheClock) {
    const wire::IpAddr kLocalIp = wire::IpAddr::v4(0xc6120001);
    const wire::IpAddr kPeerIp = wire::IpAddr::v4(0xc6120002);
    IsnGenerator isn(draw_secrets()->isn);
    const FourTuple a{kLocalIp, kPeerIp, 80, 40000};
    const FourTuple b{kLocalIp, kPeerIp, 80, 40001};
    // RFC 6528 §3: M ticks every 4 µs, so 1 ms (the clock counts µs) moves the ISN by 250.
    EXPECT_EQ(isn(a, 2000) - isn(a, 1000), 250);
    EXPECT_EQ(isn(a, 1004) - isn(a, 1000), 1);
    EXPECT_NE(isn(a, 1000), isn(b, 1000)) << "another 4-tuple, another sequence space";
    IsnGenerator other(draw_secrets()->isn);
    EXPECT_NE(isn(a, 1000), other(a, 1000)) << "the key is secret and random per stack";
}

}  // namespace
}  // namespace ms::utcp::test
