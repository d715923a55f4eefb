// Contract: SYN cookies (RFC 4987 §3.6): stateless SYN,ACKs beyond the SYN queue, and the options a returned cookie brings
 // back.
#include <gtest/gtest.h>

#include "script.hpp"

namespace ms::utcp::test {
namespace {

ScriptConfig no_syn_queue() {
    ScriptConfig c;
    c.syn_queue = 0;  // every SYN is answered with a cookie
    return c;
}

TEST(SynCookie, RoundTripKeepsTheOptionsInTheTimestamp) {
    PacketScript s(no_syn_queue());
    // A peer ISN half the sequence space away from zero: SND.WL1 must start at it.
    s.run(R"(
peer_isn 2333008987
listen 80
< SEW seq=0 win=65535 mss=1460 ws=7 sackok tsval=100
> S.E ack=1 mss=1460 ws=3 sackok tsecr=100 learn_isn
state NONE
< . seq=1 ack=1 win=512 tsval=101 tsecr=echo
state ESTABLISHED
event accepted
< . seq=1 ack=1 win=512 len=100 tsval=102 tsecr=echo
> . ack=101 tsecr=102
)");
    const Connection* c = s.conn();
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->send_mss(), 1460);
    EXPECT_TRUE(c->sack_enabled());
    EXPECT_TRUE(c->timestamps_enabled());
    EXPECT_TRUE(c->ecn_enabled());
    EXPECT_EQ(c->snd().wnd, 512u << 7) << "the peer's window scale came back from the cookie";
    EXPECT_EQ(s.stack().stats().syn_cookies_sent, 1u);
    EXPECT_EQ(s.stack().stats().syn_cookies_accepted, 1u);
}

// Without timestamps a cookie holds only the MSS, rounded down to its table (1440 for
// 1452); no window scale, no SACK.
TEST(SynCookie, WithoutTimestampsOnlyTheMssSurvives) {
    PacketScript s(no_syn_queue());
    s.run(R"(
listen 80
< S seq=0 win=65535 mss=1452 ws=7 sackok
> S. ack=1 mss=1460 nows=1 nosackok learn_isn
< . seq=1 ack=1 win=512
state ESTABLISHED
)");
    EXPECT_EQ(s.conn()->send_mss(), 1440);
    EXPECT_FALSE(s.conn()->sack_enabled());
    EXPECT_EQ(s.conn()->snd().wnd, 512u) << "no window scale";
}

// An ACK that returns no cookie of ours draws a RST, as for any ACK to a listener; so
// does a real one after two 64-second ticks.
TEST(SynCookie, ForgedOrStaleCookiesAreRefused) {
    PacketScript s(no_syn_queue());
    s.run(R"(
listen 80
< S seq=0 win=65535 mss=1460
> S. ack=1 learn_isn
< . seq=1 ack=7 win=512
> R seq=7
state NONE
+130000
< . seq=1 ack=1 win=512
> R seq=1
state NONE
)");
    EXPECT_EQ(s.stack().stats().syn_cookies_rejected, 1u) << "the stale one comes after the window for checking closed";
    EXPECT_EQ(s.stack().stats().syn_cookies_accepted, 0u);
}

}  // namespace
}  // namespace ms::utcp::test
