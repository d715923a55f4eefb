// Contract: packetization-layer path MTU discovery (RFC 4821 §7): black holes found by timeouts, and probes that search the
 // MSS back up.
#include <gtest/gtest.h>

#include "script.hpp"
#include "utcp/path.hpp"

namespace ms::utcp::test {
namespace {

// After kTwoSegmentsOut, nothing comes back: the tail loss probe, a first timeout that
// resends at the old size, then the second timeout in a row lowers the MSS to the search
// base (1024) and resends cut to it.
constexpr const char* kBlackHole = R"(
+10
> . seq=1461 len=1460
+200
> . seq=1 len=1460
+400
> . seq=1 len=1024
> . seq=1025 len=436
< . seq=1 ack=1461 win=512
> . seq=1461 len=1024
> . seq=2485 len=436
)";

// RFC 4821 black-hole detection: when full-sized segments keep timing out and no ICMP
// comes back, the MSS retreats to the search base (1024) on the second timeout in a row.
TEST(Plpmtud, TimeoutsOfFullSegmentsLowerTheMssToTheSearchBase) {
    PacketScript s;
    s.run(kSackOpen);
    s.run(kTwoSegmentsOut);
    s.run(kBlackHole);
    EXPECT_EQ(s.conn()->send_mss(), 1024);
    EXPECT_EQ(s.conn()->stats().mss_lowered_by_timeouts, 1u);
}

// RFC 4821 §7: after the black hole the search goes back up with one-segment probes of
// new data: an acknowledged probe raises the MSS, a lost one (RACK) lowers the bound and
// its data goes again at the size that works.
TEST(Plpmtud, AfterABlackHoleProbesSearchTheMssBackUp) {
    PacketScript s;
    s.run(kSackOpen);
    s.run(kTwoSegmentsOut);
    s.run(kBlackHole);
    s.run(R"(
< . seq=1 ack=2921 win=512
app send 4000
> . seq=2921 len=1242
> . seq=4163 len=1024
)");
    EXPECT_EQ(s.conn()->send_mss(), 1024) << "not before the probe is acknowledged";
    s.run(R"(
< . seq=1 ack=5187 win=512
> . seq=5187 len=1351
< . seq=1 ack=6538 win=512
> . seq=6538 len=383
)");
    EXPECT_EQ(s.conn()->send_mss(), 1351) << "the probes of 1242 and 1351 bytes were acknowledged";
    EXPECT_EQ(s.conn()->stats().mss_probes_acked, 2u);
}

// RFC 4821 §7.2: the search halves the interval with each probe and ends within 8 bytes
// of what the path takes, never above it.
TEST(MssSearch, ConvergesOnThePathsMssFromBelow) {
    constexpr std::uint16_t kPath = 1200;
    MssSearch search;
    search.start(1024, 1459);
    int probes = 0;
    while (const auto size = search.next_probe()) {
        search.probe_sent(Seq32(0), Seq32(*size), *size);
        ASSERT_TRUE(search.probing());
        if (*size <= kPath) EXPECT_EQ(search.probe_acked(), *size);
        else search.probe_lost();
        ASSERT_LT(++probes, 20);
    }
    EXPECT_LE(search.low(), kPath);
    EXPECT_GT(search.low() + MssSearch::kDoneWithin, kPath);
    EXPECT_LE(probes, 7) << "a binary search over 435 bytes";
}

}  // namespace
}  // namespace ms::utcp::test
