// Contract: path MTU discovery by ICMP too-big (RFC 1191 §3-6, RFC 8201 §4, RFC 5927 §7.2): the MSS lowered, what did not
 // pass resent, the cache.
#include <gtest/gtest.h>

#include "script.hpp"
#include "utcp/path.hpp"

namespace ms::utcp::test {
namespace {

// MTU 1300 leaves 1260 bytes of segment: both segments of kTwoSegmentsOut were larger.
constexpr const char* kTooBigFor1260 = R"(
icmp too_big seq=1 mtu=1300
> . seq=1 len=1260
> . seq=1261 len=200
> . seq=1461 len=1260
> . seq=2721 len=200
)";

TEST(Pmtud, TooBigLowersTheMssAndResendsWhatDidNotPassCutToSize) {
    PacketScript s;
    s.run(kSackOpen);
    s.run(kTwoSegmentsOut);
    // RFC 1191 §3: MTU 1300 leaves 1260 bytes of segment; both segments were larger, so
    // both are lost: they go again at once in pieces, without a congestion response.
    const std::uint32_t cwnd = s.conn()->cwnd();
    s.run(kTooBigFor1260);
    s.run(R"(
icmp too_big seq=1461 mtu=1300
> none
< . seq=1 ack=2921 win=512
app send 2520
> . seq=2921 len=1260
> . seq=4181 len=1260
)");
    EXPECT_EQ(s.conn()->send_mss(), 1260);
    EXPECT_EQ(s.conn()->stats().icmp_errors, 2u);
    EXPECT_EQ(s.conn()->stats().mss_lowered_by_icmp, 1u);
    EXPECT_GE(s.conn()->cwnd(), cwnd);
}

TEST(Pmtud, TooBigWithoutSackGoesBackToTheFirstUnacknowledgedByte) {
    PacketScript s;
    s.run(kPassiveOpen);
    s.run(kTwoSegmentsOut);
    s.run(R"(
icmp too_big seq=1 mtu=1000
> . seq=1 len=960
> . seq=961 len=960
> . seq=1921 len=960
> . seq=2881 len=40
)");
    EXPECT_EQ(s.conn()->send_mss(), 960);
}

// RFC 5927 §7.2 and RFC 8201 §4: an MTU below the minimum is taken as the minimum, so a
// forged error cannot make a connection crawl with tiny segments.
TEST(Pmtud, TooBigNeverGoesBelowTheMinimumMtu) {
    PacketScript s;
    s.run(kSackOpen);
    s.run(kTwoSegmentsOut);
    s.run(R"(
icmp too_big seq=1 mtu=68
> . seq=1 len=536
> . seq=537 len=536
> . seq=1073 len=388
> . seq=1461 len=536
> . seq=1997 len=536
> . seq=2533 len=388
)");
    EXPECT_EQ(s.conn()->send_mss(), 536);
}

// RFC 1191 §5: what one connection learned of the path serves the next one to the same
// destination (our SYN,ACK still announces what we can receive).
TEST(Pmtud, ANewConnectionToTheSameDestinationStartsWithTheLearnedMss) {
    PacketScript s;
    s.run(kSackOpen);
    s.run(kTwoSegmentsOut);
    s.run(kTooBigFor1260);
    s.run(R"(
< . seq=1 ack=2921 win=512
peer_port 40001
< S seq=0 win=65535 mss=1460 ws=7 sackok
> S. seq=0 ack=1 win=65535 mss=1460 ws=3 sackok
< . seq=1 ack=1 win=512
app send 2520
> . seq=1 len=1260
> . seq=1261 len=1260
)");
    EXPECT_EQ(s.conn()->send_mss(), 1260);
}

TEST(PathMssCache, EntriesExpireAndTheTableHasABound) {
    PathMssCache cache;
    const wire::IpAddr a = wire::IpAddr::v4(0xc6120002);
    cache.remember(a, 1200, 1000);
    EXPECT_EQ(cache.find(a, 1000 + PathMssCache::kLifetimeUs - 1), 1200);
    EXPECT_EQ(cache.find(a, 1000 + PathMssCache::kLifetimeUs), std::nullopt) << "RFC 1191 §6.3: a path may grow again";
    for (std::uint32_t k = 0; k < PathMssCache::kMaxEntries + 10; ++k)
        cache.remember(wire::IpAddr::v4(0x0a000000 + k), 1000, 5000);
    EXPECT_EQ(cache.size(), PathMssCache::kMaxEntries);
    EXPECT_EQ(cache.find(wire::IpAddr::v4(0x0a000000 + PathMssCache::kMaxEntries + 9), 5000), 1000) << "the newest is kept";
}

}  // namespace
}  // namespace ms::utcp::test
