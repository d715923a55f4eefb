// SYN_RECEIVED (RFC 9293 §3.10.7.4 with §3.10.7.2's passive open).
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

}  // namespace
}  // namespace ms::utcp::test
