// Contract: TCP timestamps (RFC 7323 §3-5): negotiation, the echo of TS.Recent, PAWS, and RTT measurement from the echo.
#include <gtest/gtest.h>

#include "script.hpp"

namespace ms::utcp::test {
namespace {

// Our TSval clock is milliseconds plus the connection's offset (its ISS): the script's
// clock starts at 1,000,000 ms and our ISN is 5000, so our first TSval is 1005000.

TEST(Timestamps, OfferedInOurSynAndUsedOnlyIfThePeerEchoesThem) {
    PacketScript with;
    with.run(R"(
connect 80
> S seq=0 ts tsecr=0
< S. seq=0 ack=1 win=65535 mss=1460 tsval=700 tsecr=1005000
> . seq=1 ack=1 tsecr=700
)");
    EXPECT_TRUE(with.conn()->timestamps_enabled());
    PacketScript without;
    without.run(R"(
listen 80
< S seq=0 win=65535 mss=1460
> S. seq=0 ack=1 nots
< . seq=1 ack=1 win=512
app nodelay on
app send 100
> . seq=1 len=100 nots
)");
    EXPECT_FALSE(without.conn()->timestamps_enabled());
}

// §3.2 and §4.3: every segment carries the option; TSecr is the TSval of the latest
// segment that covered the last ACK we sent. With the option, a full segment carries
// 12 bytes less.
TEST(Timestamps, EchoTheLatestInOrderTsval) {
    PacketScript s;
    s.run(R"(
listen 80
< S seq=0 win=65535 mss=1460 tsval=100
> S. seq=0 ack=1 tsecr=100
< . seq=1 ack=1 win=65535 tsval=101 tsecr=1005000
< . seq=1 ack=1 win=65535 len=100 tsval=102 tsecr=1005000
> . ack=101 tsecr=102
# Out of order: TS.Recent keeps the in-order segment's value.
< . seq=201 ack=1 win=65535 len=100 tsval=104 tsecr=1005000
> . ack=101 tsecr=102
app nodelay on
app send 3000
> . seq=1 len=1448 ts
> . seq=1449 len=1448 ts
> . seq=2897 len=104 ts
)");
}

// §5 PAWS: a segment whose TSval is older than TS.Recent is acknowledged and dropped.
TEST(Timestamps, PawsDropsAnOldDuplicate) {
    PacketScript s;
    s.run(R"(
listen 80
< S seq=0 win=65535 mss=1460 tsval=1000
> S. seq=0 ack=1 tsecr=1000
< . seq=1 ack=1 win=512 tsval=1001 tsecr=1005000
< . seq=1 ack=1 win=512 len=100 tsval=1002
> . ack=101 tsecr=1002
< . seq=101 ack=1 win=512 len=100 tsval=900
> . ack=101 tsecr=1002
)");
    EXPECT_EQ(s.conn()->stats().paws_rejected, 1u);
    EXPECT_EQ(s.conn()->readable(), 100u) << "the old duplicate's data was taken";
}

// §4 RTTM: the echo gives an RTT sample for a retransmitted segment, which Karn's rule
// would not time (elsewhere the microsecond send times give the samples).
TEST(Timestamps, RttComesFromTheEcho) {
    PacketScript s;
    s.run(R"(
connect 80
> S seq=0 ts
+50
< S. seq=0 ack=1 win=65535 mss=1460 tsval=700 tsecr=1005000
> . seq=1 ack=1
app nodelay on
app send 100
> . seq=1 len=100
+200
> . seq=1 len=100
+30
< . seq=1 ack=101 win=512 tsval=800 tsecr=1005250
)");
    // 50 ms from the SYN, then 30 ms from the retransmission's echo: 7/8 * 50 + 1/8 * 30, in µs.
    EXPECT_EQ(s.conn()->rtt().srtt(), 47'500u);
}

}  // namespace
}  // namespace ms::utcp::test
