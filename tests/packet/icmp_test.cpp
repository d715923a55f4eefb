// ICMP errors at a connection (RFC 1122 §4.2.3.9, RFC 5461, RFC 5927) and path MTU
// discovery (RFC 1191 with its per-destination cache, RFC 4821's black-hole detection):
// what each error does in each state, and what a forged or broken one does not.
#include <gtest/gtest.h>

#include "script.hpp"
#include "utcp/path.hpp"

namespace ms::utcp::test {
namespace {

// Two full segments in flight after a SACK open.
constexpr const char* kTwoSegmentsOut = R"(
app send 2920
> . seq=1 len=1460
> . seq=1461 len=1460
)";

// MTU 1300 leaves 1260 bytes of segment: both segments of kTwoSegmentsOut were larger.
constexpr const char* kTooBigFor1260 = R"(
icmp too_big seq=1 mtu=1300
> . seq=1 len=1260
> . seq=1261 len=200
> . seq=1461 len=1260
> . seq=2721 len=200
)";

TEST(Icmp, TooBigLowersTheMssAndResendsWhatDidNotPassCutToSize) {
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

TEST(Icmp, TooBigWithoutSackGoesBackToTheFirstUnacknowledgedByte) {
    PacketScript s;
    s.run(kPassiveOpen);
    s.run(R"(
app send 2920
> . seq=1 len=1460
> . seq=1461 len=1460
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
TEST(Icmp, TooBigNeverGoesBelowTheMinimumMtu) {
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
TEST(Icmp, TimeoutsOfFullSegmentsLowerTheMssToTheSearchBase) {
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
TEST(Icmp, AfterABlackHoleProbesSearchTheMssBackUp) {
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

// RFC 1191 §5: what one connection learned of the path serves the next one to the same
// destination (our SYN,ACK still announces what we can receive).
TEST(Icmp, ANewConnectionToTheSameDestinationStartsWithTheLearnedMss) {
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

TEST(PathMssCache, EntriesExpireAndTheTableHasABound) {
    PathMssCache cache;
    const wire::IpAddr a = wire::IpAddr::v4(0xc6120002);
    cache.remember(a, 1200, 1000);
    EXPECT_EQ(cache.find(a, 1000 + PathMssCache::kLifetimeMs - 1), 1200);
    EXPECT_EQ(cache.find(a, 1000 + PathMssCache::kLifetimeMs), std::nullopt) << "RFC 1191 §6.3: a path may grow again";
    for (std::uint32_t k = 0; k < PathMssCache::kMaxEntries + 10; ++k) cache.remember(wire::IpAddr::v4(0x0a000000 + k), 1000, 5000);
    EXPECT_EQ(cache.size(), PathMssCache::kMaxEntries);
    EXPECT_EQ(cache.find(wire::IpAddr::v4(0x0a000000 + PathMssCache::kMaxEntries + 9), 5000), 1000) << "the newest is kept";
}

}  // namespace
}  // namespace ms::utcp::test
