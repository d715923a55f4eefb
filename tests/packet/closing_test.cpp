// Contract: closing (RFC 9293 §3.10.4, §3.10.7.4 FIN processing, RFC 2525 §2.17): FIN_WAIT_1/2, CLOSING, CLOSE_WAIT,
 // LAST_ACK, half close, abort.
#include <gtest/gtest.h>

#include "script.hpp"

namespace ms::utcp::test {
namespace {

TEST(Closing, PeerClosesFirst_CloseWaitThenLastAck) {
    PacketScript s;
    s.run(kPassiveOpen);
    s.run(R"(
< F. seq=1 ack=1 win=512
> . seq=1 ack=2
state CLOSE_WAIT
event peer_closed
app close
> F. seq=1 ack=2
state LAST_ACK
< . seq=2 ack=2 win=512
state NONE
event closed
> none
)");
}

TEST(Closing, WeCloseFirst_FinWait1FinWait2TimeWait) {
    PacketScript s;
    s.run(kPassiveOpen);
    s.run(R"(
app close
> F. seq=1 ack=1
state FIN_WAIT_1
< . seq=1 ack=2 win=512
state FIN_WAIT_2
< F. seq=1 ack=2 win=512
> . seq=2 ack=2
state TIME_WAIT
event closed
)");
}

TEST(Closing, FinAndAckOfOurFinTogetherGoStraightToTimeWait) {
    PacketScript s;
    s.run(kPassiveOpen);
    s.run(R"(
app close
> F. seq=1 ack=1
< F. seq=1 ack=2 win=512
> . seq=2 ack=2
state TIME_WAIT
)");
}

TEST(Closing, SimultaneousCloseGoesThroughClosing) {
    PacketScript s;
    s.run(kPassiveOpen);
    s.run(R"(
app close
> F. seq=1 ack=1
< F. seq=1 ack=1 win=512
> . seq=2 ack=2
state CLOSING
< . seq=2 ack=2 win=512
state TIME_WAIT
)");
}

TEST(Closing, FinCarryingDataDeliversTheDataThenEndOfStream) {
    PacketScript s;
    s.run(kPassiveOpen);
    s.run(R"(
< FP. seq=1 ack=1 win=512 len=100
> . ack=102
event readable
event peer_closed
state CLOSE_WAIT
app recv 100
)");
}

TEST(Closing, FinBeforeMissingDataWaitsForTheData) {
    PacketScript s;
    s.run(kPassiveOpen);
    s.run(R"(
< F. seq=101 ack=1 win=512
> . ack=1
state ESTABLISHED
< . seq=1 ack=1 win=512 len=100
> . ack=102
state CLOSE_WAIT
app recv 100
)");
}

TEST(Closing, HalfCloseByUs_PeerKeepsSending) {
    PacketScript s;
    s.run(kPassiveOpen);
    s.run(R"(
app shutdown
> F. seq=1 ack=1
< . seq=1 ack=2 win=512 len=100
> . ack=101
state FIN_WAIT_2
app recv 100
< F. seq=101 ack=2 win=512
> . seq=2 ack=102
state TIME_WAIT
)");
}

TEST(Closing, HalfCloseByThePeer_WeKeepSending) {
    PacketScript s;
    s.run(kPassiveOpen);
    s.run(R"(
< F. seq=1 ack=1 win=512
> . ack=2
app send 3000
> . seq=1 len=1460
> . seq=1461 len=1460
> none
app close
> F. seq=2921 len=80
state LAST_ACK
< . seq=2 ack=3002 win=512
state NONE
)");
}

TEST(Closing, FinIsRetransmittedLikeData) {
    PacketScript s;
    s.run(kPassiveOpen);
    s.run(R"(
app close
> F. seq=1 ack=1
+200
> F. seq=1 ack=1
+400
> F. seq=1 ack=1
< . seq=1 ack=2 win=512
state FIN_WAIT_2
)");
}

TEST(Closing, FinWait2TimesOutWhenTheApplicationHasClosed) {
    ScriptConfig config;
    config.options.fin_wait_2_timeout_ms = 5000;
    PacketScript s(config);
    s.run(kPassiveOpen);
    s.run(R"(
app close
> F. seq=1 ack=1
< . seq=1 ack=2 win=512
state FIN_WAIT_2
+4999
state FIN_WAIT_2
+1
state NONE
> none
)");
}

TEST(Closing, HalfClosedFinWait2WaitsForThePeer) {
    ScriptConfig config;
    config.options.fin_wait_2_timeout_ms = 5000;
    PacketScript s(config);
    s.run(kPassiveOpen);
    // After shutdown (not close) the application still reads: no timeout.
    s.run(R"(
app shutdown
> F. seq=1 ack=1
< . seq=1 ack=2 win=512
+10000
state FIN_WAIT_2
)");
}

TEST(Closing, CloseWithUnreadDataResets) {
    PacketScript s;
    s.run(kPassiveOpen);
    // RFC 2525 §2.17: data the application never read is reported lost with a RST.
    s.run(R"(
< . seq=1 ack=1 win=512 len=100
> . ack=101
app close
> R. seq=1
state NONE
)");
}

TEST(Closing, AbortSendsRst) {
    PacketScript s;
    s.run(kPassiveOpen);
    s.run(R"(
app send 100
> . seq=1 len=100
app abort
> R. seq=101
state NONE
event closed
)");
}

TEST(Closing, ShutdownInSynReceivedSendsFinOnceEstablished) {
    PacketScript s;
    s.run(R"(
listen 80
< S seq=0 win=65535
> S. seq=0 ack=1
)");
    ASSERT_NE(s.conn(), nullptr);
    s.conn()->shutdown_write();
    s.run(R"(
flush
> none
< . seq=1 ack=1 win=65535
> F. seq=1 ack=1
state FIN_WAIT_1
)");
}

}  // namespace
}  // namespace ms::utcp::test
