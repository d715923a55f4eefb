// Contract: keepalive (RFC 9293 §3.8.4, RFC 1122 §4.2.3.6): probes of an idle connection, giving up, and probes that are
 // answered.
#include <gtest/gtest.h>

#include "script.hpp"

namespace ms::utcp::test {
namespace {

TEST(Keepalive, KeepaliveProbesAnIdlePeerAndGivesUp) {
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

TEST(Keepalive, KeepaliveAnsweredKeepsTheConnection) {
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
