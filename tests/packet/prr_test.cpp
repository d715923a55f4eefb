// Contract: Proportional Rate Reduction (RFC 6937 §3): in recovery, what is sent follows what the peer delivers, not a burst.
#include <gtest/gtest.h>

#include "script.hpp"

namespace ms::utcp::test {
namespace {

// PRR (RFC 6937): in recovery, what goes out follows what the peer delivers, in the
// proportion ssthresh / RecoverFS (here 6570 / 13140: one byte for two), not a burst.
TEST(Prr, RecoverySendsInProportionToWhatIsDelivered) {
    ConnOptions newreno;
    newreno.congestion = "newreno";  // its ssthresh is half the flight: round numbers
    PacketScript s({.options = newreno});
    s.run(kSackOpenRtt10);
    s.run("app send 20440\n" + segments_out(1, 10) + R"(> none
+10
# 1460 bytes acknowledged and 4380 SACKed: 5840 delivered, so 2920 may go.
< . seq=1 ack=1461 win=65535 sack=2921-7301
> . seq=1461 len=1460
> . seq=14601 len=1460
> none
# 2920 more delivered: 1460 more may go.
< . seq=1 ack=1461 win=65535 sack=2921-10221
> . seq=16061 len=1460
> none
)");
    EXPECT_TRUE(s.conn()->in_recovery());
    EXPECT_EQ(s.conn()->stats().lost_segments, 1u);
    EXPECT_EQ(s.conn()->ssthresh(), (14600u - 1460u) / 2);  // RFC 5681 eqn. 4: half the flight
}

}  // namespace
}  // namespace ms::utcp::test
