// Contract: the retransmission timer (RFC 6298 §2-5, Karn's rule), giving up (RFC 9293 §3.8.3) and the loss window after a
 // timeout (RFC 5681 §3.1).
#include <gtest/gtest.h>

#include "script.hpp"

namespace ms::utcp::test {
namespace {

TEST(Rto, RetransmissionTimerBacksOffExponentially) {
    PacketScript s;
    s.run(kPassiveOpen);
    // The handshake's RTT sample (0 ms in virtual time) gives RTO = the 200 ms minimum.
    s.run(R"(
app send 100
> . seq=1 len=100
+199
> none
+1
> . seq=1 len=100
+399
> none
+1
> . seq=1 len=100
+800
> . seq=1 len=100
)");
    EXPECT_EQ(s.conn()->stats().timeouts, 3u);
    EXPECT_EQ(s.conn()->cwnd(), 1460u) << "RFC 5681 §3.1: a loss window of one segment";
}

TEST(Rto, MinimumRtoIsConfigurable) {
    PacketScript s;
    s.run(kPassiveOpen);
    s.run(R"(
app min_rto 500
app send 100
> . seq=1 len=100
+499
> none
+1
> . seq=1 len=100
)");
}

TEST(Rto, KarnsRuleTakesNoSampleFromARetransmission) {
    PacketScript s;
    s.run(kPassiveOpen);
    s.run(R"(
app send 100
> . seq=1 len=100
+200
> . seq=1 len=100
+300
< . seq=1 ack=101 win=512
)");
    EXPECT_EQ(s.conn()->rtt().srtt(), 0u) << "the ACK of a retransmitted segment gives no sample";
    EXPECT_EQ(s.conn()->rtt().backoff(), 1u) << "the backoff stays until a valid sample (RFC 6298 §5.7)";
    s.run(R"(
app send 100
> . seq=101 len=100
+50
< . seq=1 ack=201 win=512
)");
    EXPECT_EQ(s.conn()->rtt().srtt(), 6'250u) << "7/8 * 0 + 1/8 * 50 ms, in µs";
    EXPECT_EQ(s.conn()->rtt().backoff(), 0u);
}

TEST(Rto, ConnectionFailsAfterTooManyRetransmissions) {
    ScriptConfig config;
    config.options.max_retransmits = 2;
    PacketScript s(config);
    s.run(kPassiveOpen);
    s.run(R"(
app send 100
> . seq=1 len=100
+200
> . seq=1 len=100
+400
> . seq=1 len=100
+800
state NONE
event error:timed_out
)");
}

TEST(Rto, AfterATimeoutTheWindowRestartsFromOneSegment) {
    PacketScript s;
    s.run(kPassiveOpen);
    std::string script = "app send 14600\n";
    for (int k = 0; k < 10; ++k) script += "> . seq=" + std::to_string(1 + 1460 * k) + " len=1460\n";
    // Every segment is lost: go back to SND.UNA with one segment, then two (slow start).
    script += R"(
+200
> . seq=1 len=1460
> none
< . seq=1 ack=1461 win=512
> . seq=1461 len=1460
> . seq=2921 len=1460
> none
)";
    s.run(script);
}

}  // namespace
}  // namespace ms::utcp::test
