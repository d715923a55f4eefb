// Contract: RFC 5961's checks in ESTABLISHED (§3 RST, §4 SYN, §5 ACK, §7 rate limit): what resets, what draws a challenge
// ACK, what is dropped.
#include <gtest/gtest.h>

#include "script.hpp"

namespace ms::utcp::test {
namespace {

TEST(ChallengeAck, RstAtRcvNxtResetsTheConnection) {
    PacketScript s;
    s.run(kPassiveOpen);
    s.run(R"(
< R seq=1
state NONE
event error:connection_reset
event closed
> none
)");
}

TEST(ChallengeAck, RstInTheWindowButNotExactDrawsAChallengeAck) {
    PacketScript s;
    s.run(kPassiveOpen);
    s.run(R"(
< R seq=1000
> . seq=1 ack=1
state ESTABLISHED
# The genuine peer answers the challenge with an exact RST.
< R seq=1
state NONE
)");
}

TEST(ChallengeAck, RstOutsideTheWindowIsDropped) {
    PacketScript s;
    s.run(kPassiveOpen);
    s.run(R"(
< R seq=900000
> none
< R seq=abs:999
> none
state ESTABLISHED
)");
}

TEST(ChallengeAck, SynDrawsAChallengeAck) {
    PacketScript s;
    s.run(kPassiveOpen);
    // RFC 5961 §4.2: in the window or not.
    s.run(R"(
< S seq=100 win=65535
> . seq=1 ack=1
< S seq=abs:77 win=65535
> . seq=1 ack=1
state ESTABLISHED
)");
    EXPECT_EQ(s.conn()->stats().challenge_acks, 2u);
}

TEST(ChallengeAck, ChallengeAcksAreRateLimited) {
    ScriptConfig config;
    config.challenge_acks_per_second = 2;
    PacketScript s(config);
    s.run(kPassiveOpen);
    s.run(R"(
< R seq=100
> . ack=1
< R seq=200
> . ack=1
< R seq=300
> none
+1000
< R seq=400
> . ack=1
)");
    EXPECT_EQ(s.stack().stats().challenge_acks_limited, 1u);
}

TEST(ChallengeAck, AckOfUnsentDataIsAnsweredAndIgnored) {
    PacketScript s;
    s.run(kPassiveOpen);
    s.run(R"(
< . seq=1 ack=500 win=512
> . seq=1 ack=1
state ESTABLISHED
app send 100
> . seq=1 len=100
)");
}

TEST(ChallengeAck, AckTooFarBehindDrawsAChallengeAck) {
    PacketScript s;
    s.run(kPassiveOpen);
    // RFC 5961 §5.2: acceptable only from SND.UNA - MAX.SND.WND (65536 here).
    s.run(R"(
app send 1000
> . seq=1 len=1000
< . seq=1 ack=1001 win=512
< . seq=1 ack=abs:4294903297 win=512
> . seq=1001 ack=1
)");
    EXPECT_EQ(s.conn()->stats().challenge_acks, 1u);
}

}  // namespace
}  // namespace ms::utcp::test
