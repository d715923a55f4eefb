// Contract: SACK (RFC 2018 §2-4) with D-SACK (RFC 2883): negotiation, and the blocks a receiver reports (the sender's use:
 // recovery_rack_tlp, prr).
#include <gtest/gtest.h>

#include "script.hpp"

namespace ms::utcp::test {
namespace {

TEST(Sack, OfferedInOurSynAndEchoedOnlyWhenThePeerOffersIt) {
    PacketScript active;
    active.run(R"(
connect 80
> S seq=0 sackok
< S. seq=0 ack=1 win=65535 mss=1460 sackok
> . seq=1 ack=1
)");
    EXPECT_TRUE(active.conn()->sack_enabled());
    PacketScript without;
    without.run(R"(
listen 80
< S seq=0 win=65535 mss=1460
> S. seq=0 ack=1 nosackok
)");
    PacketScript with;
    with.run(kSackOpen);
    EXPECT_TRUE(with.conn()->sack_enabled());
}

TEST(Sack, OffCanBeChosenPerConnection) {
    ConnOptions o;
    o.sack = false;
    PacketScript s({.options = o});
    s.run(R"(
listen 80
< S seq=0 win=65535 mss=1460 sackok
> S. seq=0 ack=1 nosackok
< . seq=1 ack=1 win=512
< . seq=101 ack=1 win=512 len=100
> . ack=1 nosack
)");
    EXPECT_FALSE(s.conn()->sack_enabled());
}

// RFC 2018 §4: the first block holds the segment that arrived last; the others repeat
// the most recently reported ones; blocks merge as holes fill.
TEST(Sack, BlocksReportTheLatestRangeFirst) {
    PacketScript s;
    s.run(kSackOpen);
    s.run(R"(
< . seq=1 ack=1 win=512 len=100
> . ack=101 nosack
< . seq=201 ack=1 win=512 len=100
> . ack=101 sack=201-301
< . seq=401 ack=1 win=512 len=100
> . ack=101 sack=401-501,201-301
< . seq=601 ack=1 win=512 len=100
> . ack=101 sack=601-701,401-501,201-301
# The hole between the first two closes: one block, and it is the latest.
< . seq=301 ack=1 win=512 len=100
> . ack=101 sack=201-501,601-701
< . seq=101 ack=1 win=512 len=100
> . ack=501 sack=601-701
< . seq=501 ack=1 win=512 len=100
> . ack=701 nosack
)");
}

// RFC 2883: a duplicate segment is reported in the first block of the next ACK, once.
TEST(Sack, DuplicateSegmentIsReportedAsDsack) {
    PacketScript s;
    s.run(kSackOpen);
    s.run(R"(
< . seq=1 ack=1 win=512 len=100
> . ack=101 nosack
< . seq=1 ack=1 win=512 len=100
> . ack=101 sack=1-101
< . seq=101 ack=1 win=512 len=100
> . ack=201 nosack
# Partly old, partly new: the old part is the duplicate.
< . seq=151 ack=1 win=512 len=100
> . ack=251 sack=151-201
)");
}

// Blocks take option room: a data segment that carries them carries less payload, so
// that the frame never exceeds the MTU (RFC 9293 §3.7.1).
TEST(Sack, BlocksOnADataSegmentShrinkItsPayload) {
    PacketScript s;
    s.run(kSackOpen);
    s.run(R"(
< . seq=201 ack=1 win=512 len=100
> . ack=1 sack=201-301
app nodelay on
app send 3000
> . seq=1 ack=1 len=1448 sack=201-301
> . seq=1449 len=1448
> . seq=2897 len=104
)");
}

}  // namespace
}  // namespace ms::utcp::test
