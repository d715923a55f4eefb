// SYN_SENT (RFC 9293 §3.10.7.3): active opens, simultaneous open, and the SYN's own
// retransmission timer.
#include <gtest/gtest.h>

#include "script.hpp"

namespace ms::utcp::test {
namespace {

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

TEST(SynSent, SynAckWithoutWindowScaleTurnsScalingOff) {
    PacketScript s;
    s.run(R"(
connect 80
> S seq=0 ws=3
< S. seq=0 ack=1 win=1000 mss=1000
> . seq=1 ack=1 win=65535
app send 3000
> . seq=1 len=1000
> none
)");
}

}  // namespace
}  // namespace ms::utcp::test
