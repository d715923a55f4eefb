// Contract: ICMP errors at a connection (RFC 1122 §4.2.3.9, RFC 5461, RFC 5927 §4.1): hard and soft errors by state; forged
// or broken ones ignored.
#include <gtest/gtest.h>

#include "script.hpp"

namespace ms::utcp::test {
namespace {

// RFC 5927 §4.1: an error quoting a sequence number not in flight is forged or stale.
TEST(Icmp, AnErrorQuotingNoSequenceInFlightIsIgnoredAndCounted) {
    PacketScript s;
    s.run(kSackOpen);
    s.run(kTwoSegmentsOut);
    s.run(R"(
icmp too_big seq=2921 mtu=1000
icmp too_big seq=abs:12345 mtu=1000
icmp too_big seq=1 mtu=1000 bad_checksum
> none
< . seq=1 ack=1461 win=512
icmp too_big seq=1 mtu=1000
> none
)");
    EXPECT_EQ(s.conn()->send_mss(), 1460);
    EXPECT_EQ(s.stack().stats().icmp_in, 4u);
    EXPECT_EQ(s.stack().stats().icmp_out_of_window, 3u);
    EXPECT_EQ(s.stack().stats().bad_checksum, 1u);
    EXPECT_EQ(s.conn()->stats().icmp_errors, 0u);
}

TEST(Icmp, AHardErrorAbortsAConnectionInSynSent) {
    PacketScript s;
    s.run(R"(
connect 80
> S seq=0 mss=1460 ws=3
icmp port_unreachable seq=0
event error:connection_refused
state NONE
)");
}

// A soft error does not abort; it is the reason given when the connection times out.
TEST(Icmp, ASoftErrorIsReportedWhenTheOpenTimesOut) {
    ConnOptions o;
    o.max_syn_retransmits = 1;
    PacketScript s({.options = o});
    s.run(R"(
connect 80
> S seq=0 mss=1460 ws=3
icmp host_unreachable seq=0
state SYN_SENT
+1000
> S seq=0 mss=1460 ws=3
+2000
event error:host_unreachable
state NONE
)");
}

// RFC 5461 §4: in a synchronized state even a hard error is soft; an ACK of new data
// shows the path works and clears it.
TEST(Icmp, ErrorsInEstablishedAreSoftAndClearedByProgress) {
    PacketScript s;
    s.run(kSackOpen);
    s.run(kTwoSegmentsOut);
    s.run(R"(
icmp port_unreachable seq=1
icmp time_exceeded seq=1461
state ESTABLISHED
> none
)");
    EXPECT_EQ(s.conn()->soft_error(), ConnError::host_unreachable);
    s.run("< . seq=1 ack=1461 win=512\n");
    EXPECT_EQ(s.conn()->soft_error(), ConnError::none);
}

}  // namespace
}  // namespace ms::utcp::test
