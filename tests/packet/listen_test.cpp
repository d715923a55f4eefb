// LISTEN (RFC 9293 §3.10.7.2) and segments to no connection (§3.10.7.1).
#include <gtest/gtest.h>

#include "script.hpp"

namespace ms::utcp::test {
namespace {

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

}  // namespace
}  // namespace ms::utcp::test
