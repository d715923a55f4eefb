// Contract: ECN (RFC 3168 §6.1): negotiation in the SYNs, ECT(0) on new data only, CE echoed as ECE until CWR, one back-off
 // per window.
#include <gtest/gtest.h>

#include "script.hpp"

namespace ms::utcp::test {
namespace {

constexpr const char* kEcnOpen = R"(
listen 80
< SEW seq=0 win=65535 mss=1460
> S.E seq=0 ack=1
< . seq=1 ack=1 win=512
state ESTABLISHED
app nodelay on
)";

TEST(Ecn, NegotiatedBothWaysAndOnlyWhenAsked) {
    PacketScript active;
    active.run(R"(
connect 80
> SEW seq=0
< S.E seq=0 ack=1 win=65535 mss=1460
> . seq=1 ack=1
)");
    EXPECT_TRUE(active.conn()->ecn_enabled());
    PacketScript passive;
    passive.run(kEcnOpen);
    EXPECT_TRUE(passive.conn()->ecn_enabled());
    PacketScript plain;  // a SYN without ECE and CWR: a SYN,ACK without ECE, no ECT
    plain.run(R"(
listen 80
< S seq=0 win=65535 mss=1460
> S. seq=0 ack=1
< . seq=1 ack=1 win=512
app nodelay on
app send 100
> . seq=1 len=100 noect
)");
    EXPECT_FALSE(plain.conn()->ecn_enabled());
}

// §6.1.4-5: data is ECT(0); pure ACKs and retransmissions are not.
TEST(Ecn, OnlyNewDataIsEcnCapable) {
    PacketScript s;
    s.run(kEcnOpen);
    s.run(R"(
app send 100
> . seq=1 len=100 ect
< . seq=1 ack=1 win=512 len=50
> . ack=51 noect
+200
> . seq=1 len=100 noect
)");
}

// §6.1.3: a CE mark is echoed as ECE on every ACK until the peer's CWR.
TEST(Ecn, CongestionExperiencedIsEchoedUntilCwr) {
    PacketScript s;
    s.run(kEcnOpen);
    s.run(R"(
< . seq=1 ack=1 win=512 len=100 ce
> .E ack=101
< . seq=101 ack=1 win=512 len=100
> .E ack=201
< .W seq=201 ack=1 win=512 len=100
> . ack=301
)");
    EXPECT_EQ(s.conn()->stats().ce_received, 1u);
}

// §6.1.2: an ECE backs the sender off as a loss would, once per window, without a
// retransmission; its next new data carries CWR.
TEST(Ecn, EchoBacksTheSenderOffOncePerWindow) {
    ConnOptions newreno;
    newreno.congestion = "newreno";
    PacketScript s({.options = newreno});
    s.run(R"(
listen 80
< SEW seq=0 win=65535 mss=1460 ws=7
> S.E seq=0 ack=1
< . seq=1 ack=1 win=512
app nodelay on
app send 4380
> . seq=1 len=1460 ect
> . seq=1461 len=1460 ect
> . seq=2921 len=1460 ect
< .E seq=1 ack=1461 win=512
< .E seq=1 ack=2921 win=512
)");
    EXPECT_EQ(s.conn()->stats().ecn_reductions, 1u) << "once per window";
    EXPECT_EQ(s.conn()->stats().retransmits, 0u);
    EXPECT_EQ(s.conn()->ssthresh(), 2 * 1460u) << "half the flight, at least two segments";
    s.run(R"(
app send 1000
> .W seq=4381 len=1000 ect
)");
}

}  // namespace
}  // namespace ms::utcp::test
