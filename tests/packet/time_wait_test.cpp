// Contract: TIME_WAIT as a compact record (RFC 9293 §3.10.7.4, RFC 1337, RFC 1122 §4.2.2.13, RFC 6191): expiry, RSTs,
 // reopening.
#include <gtest/gtest.h>

#include "script.hpp"

namespace ms::utcp::test {
namespace {

constexpr const char* kToTimeWait = R"(
app close
> F. seq=1 ack=1
< F. seq=1 ack=2 win=512
> . seq=2 ack=2
state TIME_WAIT
)";

ScriptConfig short_time_wait() {
    ScriptConfig c;
    c.time_wait_ms = 2000;
    return c;
}

TEST(TimeWait, IsARecordNotAConnection) {
    PacketScript s;
    s.run(kPassiveOpen);
    s.run(kToTimeWait);
    EXPECT_EQ(s.stack().connection_count(), 0u);
    EXPECT_EQ(s.stack().time_wait().size(), 1u);
}

TEST(TimeWait, RetransmittedFinIsAckedAgainAndRestartsTheTimer) {
    PacketScript s(short_time_wait());
    s.run(kPassiveOpen);
    s.run(kToTimeWait);
    s.run(R"(
+1500
< F. seq=1 ack=2 win=512
> . seq=2 ack=2
+1500
state TIME_WAIT
+500
state NONE
)");
}

TEST(TimeWait, ExpiresAfterTwoMsl) {
    PacketScript s(short_time_wait());
    s.run(kPassiveOpen);
    s.run(kToTimeWait);
    s.run(R"(
+1999
state TIME_WAIT
+1
state NONE
< . seq=2 ack=2 win=512
> R seq=2
)");
}

TEST(TimeWait, KeepsThePortInUseUntilItExpires) {
    PacketScript s(short_time_wait());
    s.run(kPassiveOpen);
    s.stack().unlisten(80);  // a closed listener: its accepted connection still uses the port
    EXPECT_TRUE(s.stack().port_in_use(80));
    EXPECT_FALSE(s.stack().port_in_use(81));
    s.run(kToTimeWait);
    EXPECT_TRUE(s.stack().port_in_use(80));
    s.run("+2000\nstate NONE\n");
    EXPECT_FALSE(s.stack().port_in_use(80));
}

TEST(TimeWait, RstIsIgnored) {
    PacketScript s;
    s.run(kPassiveOpen);
    s.run(kToTimeWait);
    // RFC 1337: no TIME_WAIT assassination.
    s.run(R"(
< R seq=2
> none
state TIME_WAIT
)");
}

TEST(TimeWait, NewSynAboveTheOldSequenceSpaceReopens) {
    PacketScript s;
    s.run(kPassiveOpen);
    s.run(kToTimeWait);
    // RFC 1122 §4.2.2.13: the client reuses its port at once with a higher ISN; the new
    // connection's ISS is above everything the old one sent (5002 + 2 * 65536 = 136074).
    s.run(R"(
< S seq=100000 win=65535 mss=1460
> S. seq=abs:136074 ack=100001
state SYN_RECEIVED
)");
    EXPECT_EQ(s.stack().stats().time_wait_reused, 1u);
    EXPECT_EQ(s.stack().time_wait().size(), 0u);
}

// RFC 6191: with timestamps on both incarnations, a SYN whose TSval is above the old
// connection's TS.Recent reopens the 4-tuple whatever its sequence number; one with an
// older TSval is an old duplicate, even above the old sequence space.
constexpr const char* kTimeWaitWithTimestamps = R"(
listen 80
< S seq=0 win=65535 mss=1460 tsval=100
> S. seq=0 ack=1 tsecr=100
< . seq=1 ack=1 win=512 tsval=101 tsecr=1005000
app close
> F. seq=1 ack=1 tsecr=101
< F. seq=1 ack=2 win=512 tsval=102 tsecr=1005000
> . seq=2 ack=2 tsecr=102
state TIME_WAIT
)";

TEST(TimeWait, SynWithANewerTimestampReopensWhateverItsSequence) {
    PacketScript s;
    s.run(kTimeWaitWithTimestamps);
    s.run(R"(
< S seq=0 win=65535 mss=1460 tsval=103
> S. seq=abs:136074 ack=1 tsecr=103
state SYN_RECEIVED
)");
    EXPECT_EQ(s.stack().stats().time_wait_reused, 1u);
}

TEST(TimeWait, SynWithAnOlderTimestampIsAnOldDuplicateEvenAboveTheSequence) {
    PacketScript s;
    s.run(kTimeWaitWithTimestamps);
    s.run(R"(
< S seq=100000 win=65535 mss=1460 tsval=101
> . seq=2 ack=2
state TIME_WAIT
# An equal TSval reopens only above the old sequence space.
< S seq=1 win=65535 mss=1460 tsval=102
> . seq=2 ack=2
state TIME_WAIT
< S seq=100000 win=65535 mss=1460 tsval=102
> S. seq=abs:136074 ack=100001 tsecr=102
state SYN_RECEIVED
)");
    EXPECT_EQ(s.stack().stats().time_wait_reused, 1u);
}

TEST(TimeWait, OldSynIsAnsweredWithTheOldAck) {
    PacketScript s;
    s.run(kPassiveOpen);
    s.run(kToTimeWait);
    s.run(R"(
< S seq=0 win=65535
> . seq=2 ack=2
state TIME_WAIT
)");
}

TEST(TimeWait, PastTheLimitAClosingConnectionSkipsTimeWait) {
    ScriptConfig config;
    config.max_time_wait = 1;
    PacketScript s(config);
    s.run(kPassiveOpen);
    s.run(kToTimeWait);
    s.run(R"(
peer_port 40001
< S seq=0 win=65535
> S. seq=0 ack=1
< . seq=1 ack=1 win=65535
app close
> F. seq=1 ack=1
< F. seq=1 ack=2 win=65535
> . seq=2 ack=2
)");
    EXPECT_EQ(s.stack().time_wait().size(), 1u);
    EXPECT_EQ(s.stack().stats().time_wait_overflow, 1u);
    EXPECT_EQ(s.stack().connection_count(), 0u) << "the connection is gone all the same";
}

TEST(TimeWait, ActiveCloserCannotReuseTheTupleUntilItExpires) {
    PacketScript s(short_time_wait());
    s.run(kActiveOpen);
    s.run(R"(
app close
> F. seq=1 ack=1
< F. seq=1 ack=2 win=512
> . seq=2 ack=2
state TIME_WAIT
)");
    const ConnectResult refused = s.stack().connect(s.tuple().local_port, s.tuple().remote, s.tuple().remote_port);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error(), ConnectError::in_time_wait);
    s.run("+2000");
    EXPECT_TRUE(s.stack().connect(s.tuple().local_port, s.tuple().remote, s.tuple().remote_port).ok());
    s.run("flush\n> S seq=0");
}

}  // namespace
}  // namespace ms::utcp::test
