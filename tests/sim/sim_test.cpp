// UTCP against UTCP over a lossy link in virtual time.
// Every transfer must arrive byte-exact (every byte and a SHA-256); the recovery that
// got it there is checked too, not only completion.
#include <gtest/gtest.h>

#include <cstdio>

#include "sim.hpp"

#include "bbr/bbr.hpp"

namespace ms::utcp::sim {
namespace {

constexpr std::uint64_t KB = 1024;
constexpr std::uint64_t MB = 1024 * 1024;

LinkConfig faults(double loss, std::uint64_t seed, double reorder = 0, double duplicate = 0, int delay_ms = 0,
                  double corrupt = 0) {
    LinkConfig l;
    l.faults.loss = loss;
    l.faults.reorder = reorder;
    l.faults.duplicate = duplicate;
    l.faults.corrupt = corrupt;
    l.faults.delay = std::chrono::milliseconds(delay_ms);
    l.faults.seed = seed;
    return l;
}

void expect_exact(const TransferResult& r, std::uint64_t bytes) {
    EXPECT_TRUE(r.completed) << "error: " << r.error << ", received " << r.received << " of " << bytes;
    EXPECT_TRUE(r.bytes_match) << "received " << r.received << " of " << bytes;
}

// --- a clean link ------------------------------------------------------------------------

class Lossless : public ::testing::TestWithParam<std::uint64_t> {};

TEST_P(Lossless, TransferIsExactWithoutAnyRetransmission) {
    Simulation sim(faults(0, 1), faults(0, 1));
    const TransferResult r = transfer(sim, GetParam(), 600'000);
    expect_exact(r, GetParam());
    EXPECT_EQ(r.sender.retransmits, 0u);
    EXPECT_EQ(r.sender.timeouts, 0u);
}

INSTANTIATE_TEST_SUITE_P(Sizes, Lossless, ::testing::Values(1 * KB, 1 * MB, 100 * MB));

// --- one loss, placed by hand ------------------------------------------------------------

TEST(SingleLoss, IsRepairedByFastRetransmitWithoutTimeout) {
    LinkConfig a_to_b = faults(0, 1);
    a_to_b.drop = {40};  // a data segment in the middle of the flight
    Simulation sim(a_to_b, faults(0, 1));
    const TransferResult r = transfer(sim, 1 * MB, 60'000);
    expect_exact(r, 1 * MB);
    EXPECT_EQ(r.sender.fast_retransmits, 1u);
    EXPECT_EQ(r.sender.timeouts, 0u) << "three duplicate ACKs must repair a single loss, not the RTO";
    EXPECT_EQ(r.sender.retransmits, 1u) << "only the lost segment is sent again";
}

TEST(SingleLoss, OfTheLastSegmentIsRepairedByTheLossProbe) {
    // 10 segments of data (1448 bytes each beside the timestamps) then the FIN: drop the
    // last data segment. No later segment can reveal the loss; the tail loss probe does
    // (RFC 8985 §7), long before the RTO.
    LinkConfig a_to_b = faults(0, 1);
    a_to_b.drop = {12};  // SYN is frame 1, the handshake ACK frame 2, data 3..12
    Simulation sim(a_to_b, faults(0, 1));
    const TransferResult r = transfer(sim, 10 * 1448, 60'000);
    expect_exact(r, 10 * 1448);
    EXPECT_EQ(r.sender.loss_probes, 1u);
    EXPECT_EQ(r.sender.timeouts, 0u);
    EXPECT_EQ(r.sender.retransmits, 1u);
}

TEST(SingleLoss, OfAnAckIsCoveredByTheNextAck) {
    LinkConfig b_to_a = faults(0, 1);
    b_to_a.drop = {5, 6, 7};
    Simulation sim(faults(0, 1), b_to_a);
    const TransferResult r = transfer(sim, 1 * MB, 60'000);
    expect_exact(r, 1 * MB);
    EXPECT_EQ(r.sender.retransmits, 0u) << "cumulative ACKs make lost ACKs harmless";
}

// --- random loss, both directions ---------------------------------------------------------

struct LossCase {
    double loss;
    std::uint64_t bytes;
    std::uint64_t seed;
};

class RandomLoss : public ::testing::TestWithParam<LossCase> {};

TEST_P(RandomLoss, TransferIsExactAndLossesAreRepaired) {
    const LossCase c = GetParam();
    Simulation sim(faults(c.loss, c.seed), faults(c.loss, c.seed + 100));
    // At 10% loss both ways, with a 2 ms round trip and a 200 ms minimum RTO, timeouts
    // dominate: allow ten virtual hours.
    const TransferResult r = transfer(sim, c.bytes, 36'000'000);
    expect_exact(r, c.bytes);
    if (c.bytes >= 1 * MB) {
        EXPECT_GT(r.sender.retransmits, 0u) << "a lossy link must have cost retransmissions";
        EXPECT_GT(r.sender.fast_retransmits, 0u) << "some losses are repaired by fast retransmit";
    }
    if (c.loss <= 0.01 && c.bytes >= 100 * MB) {
        // RACK-TLP repairs random loss without the RTO (at most 2 per 1000 segments).
        EXPECT_LE(r.sender.timeouts * 1000, 2 * r.sender.segments_out) << r.sender.timeouts << " RTOs";
    }
    std::printf("    loss %.0f%%, %llu bytes: %.1f s virtual, %llu segments, %llu retransmits (%llu recoveries, "
                "%llu timeouts, %llu loss probes, %llu deemed lost)\n",
                c.loss * 100, static_cast<unsigned long long>(c.bytes), static_cast<double>(r.virtual_ms) / 1000,
                static_cast<unsigned long long>(r.sender.segments_out), static_cast<unsigned long long>(r.sender.retransmits),
                static_cast<unsigned long long>(r.sender.fast_retransmits),
                static_cast<unsigned long long>(r.sender.timeouts), static_cast<unsigned long long>(r.sender.loss_probes),
                static_cast<unsigned long long>(r.sender.lost_segments));
    RecordProperty("virtual_ms", std::to_string(r.virtual_ms));
    RecordProperty("timeouts", std::to_string(r.sender.timeouts));
    RecordProperty("fast_retransmits", std::to_string(r.sender.fast_retransmits));
}

std::vector<LossCase> loss_cases() {
    std::vector<LossCase> cases;
    for (double loss : {0.01, 0.05, 0.10}) {
        for (std::uint64_t seed : {1, 2, 3}) {
            for (std::uint64_t bytes : {1 * KB, 1 * MB}) cases.push_back({loss, bytes, seed});
        }
        cases.push_back({loss, 100 * MB, 7});
    }
    return cases;
}

std::string loss_name(const ::testing::TestParamInfo<LossCase>& info) {
    const LossCase& c = info.param;
    return "loss" + std::to_string(static_cast<int>(c.loss * 100)) + "pct_" + std::to_string(c.bytes / KB) + "KB_seed" +
           std::to_string(c.seed);
}

INSTANTIATE_TEST_SUITE_P(Rates, RandomLoss, ::testing::ValuesIn(loss_cases()), loss_name);

// --- a bottleneck with a deep buffer: BBR against CUBIC -----------------------------------

struct BottleneckRun {
    TransferResult result;
    // Of the bottleneck's rate for TCP payload (1448 bytes of each 1514-byte frame with
    // timestamps), over the whole transfer, Startup and ProbeRTT included.
    double goodput_share = 0;
    std::uint64_t p50_rtt_us = 0;   // the path's RTT plus the median queueing delay
    std::uint64_t drops = 0;
};

// 100 Mbit/s with a 1 MB buffer (80 ms at the rate) and a 20 ms round trip, 100 MB one way
// (8 s: a ProbeRTT included), in steps of 100 µs.
BottleneckRun through_bottleneck(const std::string& congestion) {
    constexpr std::uint64_t kRate = 12'500'000;
    constexpr double kPayloadShare = 1448.0 / 1514.0;
    constexpr std::uint64_t kBytes = 100 * MB;
    constexpr std::uint64_t kPathRttUs = 20'000;
    LinkConfig forward = faults(0, 1, 0, 0, 10);
    forward.rate = kRate;
    forward.buffer_bytes = 1 << 20;
    ConnOptions options;
    options.congestion = congestion;
    options.send_buffer = options.recv_buffer = 8 << 20;
    Simulation sim(forward, faults(0, 2, 0, 0, 10), options, false, 100);
    for (Stack* s : {&sim.a(), &sim.b()}) {
        auto [name, make] = bbr::algorithm();
        (void)s->congestion().add(name, make);
    }
    BottleneckRun run;
    run.result = transfer(sim, kBytes, 60'000);
    run.goodput_share = static_cast<double>(kBytes) / (static_cast<double>(run.result.virtual_ms) / 1000) /
                        (kRate * kPayloadShare);
    std::vector<std::uint64_t> delays = sim.queue_delays_a_to_b();
    std::nth_element(delays.begin(), delays.begin() + delays.size() / 2, delays.end());
    run.p50_rtt_us = kPathRttUs + delays[delays.size() / 2];
    run.drops = sim.bottleneck_drops_a_to_b();
    std::printf("    %s: %.0f %% of the rate, p50 RTT %.1f ms (path 20 ms), %llu drops at the bottleneck, %llu "
                "retransmits\n",
                congestion.c_str(), run.goodput_share * 100, static_cast<double>(run.p50_rtt_us) / 1000,
                static_cast<unsigned long long>(run.drops), static_cast<unsigned long long>(run.result.sender.retransmits));
    return run;
}

// BBR keeps the bottleneck busy without filling its buffer: at least 90 % of the rate
// with the median RTT within 1.25 times the path's, where CUBIC fills the buffer (and
// pays for it in queueing delay) for about the same goodput.
TEST(Bottleneck, BbrFillsThePipeNotTheBuffer) {
    const BottleneckRun bbr = through_bottleneck("bbr");
    expect_exact(bbr.result, 100 * MB);
    EXPECT_GE(bbr.goodput_share, 0.9);
    EXPECT_LE(bbr.p50_rtt_us, 25'000u);
    const BottleneckRun cubic = through_bottleneck("cubic");
    expect_exact(cubic.result, 100 * MB);
    EXPECT_GT(cubic.p50_rtt_us, 2 * bbr.p50_rtt_us) << "CUBIC fills the deep buffer";
}

// --- super-segments ----------------------------------------------------------

// --- a connection that moves to another stack (connection_image.hpp) ----------------------

// Mid-transfer, one side's connection is written out, encoded, decoded and taken up by a
// new stack on the same link: the sender's unacknowledged and unsent bytes go with it,
// as do the receiver's out-of-order ones. Nothing is lost or duplicated, and the peer
// notices at most what it sees as a retransmission.
struct MoveCase {
    Side side;
    double loss;
};

class Move : public ::testing::TestWithParam<MoveCase> {};

TEST_P(Move, TheTransferStaysExactWhenOneSideMovesToAnotherStack) {
    const auto [side, loss] = GetParam();
    Simulation sim(faults(loss, 21), faults(loss, 22));
    const TransferResult r = transfer(sim, 4 * MB, 600'000, false, wire::IpFamily::v4, MoveAt{side, 40});
    EXPECT_EQ(r.moved, 1u) << "the connection must be movable mid-transfer";
    expect_exact(r, 4 * MB);
    if (loss == 0) {
        EXPECT_EQ(r.sender.timeouts + r.receiver.timeouts, 0u) << "a move must not wait for a timeout";
    }
}

INSTANTIATE_TEST_SUITE_P(Sides, Move,
                         ::testing::Values(MoveCase{Side::a, 0}, MoveCase{Side::b, 0}, MoveCase{Side::a, 0.02},
                                           MoveCase{Side::b, 0.02}),
                         [](const auto& test) {
                             return std::string(test.param.side == Side::a ? "Sender" : "Receiver") +
                                    (test.param.loss > 0 ? "WithLoss" : "Lossless");
                         });

// Bulk data leaves as super-segments that the link cuts as the switch does; recovery
// still works segment by segment, so random loss costs what it costs without them.
class SuperSegments : public ::testing::TestWithParam<double> {};

TEST_P(SuperSegments, TransferIsExactAndRecoveryWorksPerSegment) {
    const double loss = GetParam();
    Simulation sim(faults(loss, 11), faults(loss, 12), {}, true);
    const TransferResult r = transfer(sim, 20 * MB, 36'000'000);
    expect_exact(r, 20 * MB);
    EXPECT_GT(sim.super_segments_a_to_b(), 20 * MB / (64 * KB)) << "bulk data must leave as super-segments";
    if (loss == 0) {
        EXPECT_EQ(r.sender.retransmits, 0u);
        // The receiver takes a batch's in-order segments as trains (GRO-like).
        const StackStats& rx = sim.b().stats();
        EXPECT_GT(rx.train_segments_in, rx.tcp_segments_in / 2) << rx.train_segments_in << " of " << rx.tcp_segments_in;
    } else {
        EXPECT_LE(r.sender.timeouts * 1000, 2 * r.sender.segments_out) << r.sender.timeouts << " RTOs";
        // Only lost segments are sent again, never a whole super-segment.
        EXPECT_LE(r.sender.retransmits, 3 * loss * static_cast<double>(r.sender.segments_out));
    }
}

INSTANTIATE_TEST_SUITE_P(Loss, SuperSegments, ::testing::Values(0.0, 0.01, 0.05));

// Bytes queued by reference (a file cache's) interleave with copied ones: the stream
// arrives exact, retransmissions read the referenced bytes again, and every pinned
// block is let go once its bytes are acknowledged.
class ByReference : public ::testing::TestWithParam<double> {};

TEST_P(ByReference, TransferIsExactAndEveryPinIsReleased) {
    const double loss = GetParam();
    Simulation sim(faults(loss, 21), faults(loss, 22), {}, true);
    const TransferResult r = transfer(sim, 4 * MB, 36'000'000, true);
    expect_exact(r, 4 * MB);
    EXPECT_EQ(r.pins_alive, 0u) << "a connection kept a block pinned after its bytes were acknowledged";
    if (loss > 0) {
        EXPECT_GT(r.sender.retransmits, 0u);
    }
}

INSTANTIATE_TEST_SUITE_P(Loss, ByReference, ::testing::Values(0.0, 0.05));

// --- reordering, duplication, delay, corruption -------------------------------------------

// RFC 8200 end to end: the same transfers over IPv6, with super-segments cut by the
// switch's segmenter (IPv6 headers, flow labels, pseudo-header checksums) and loss.
TEST(Ipv6, TransferIsExactOverACleanAndALossyLink) {
    Simulation clean(faults(0, 1), faults(0, 1), {}, true);
    const TransferResult r = transfer(clean, 4 * MB, 600'000, false, wire::IpFamily::v6);
    expect_exact(r, 4 * MB);
    EXPECT_EQ(r.sender.retransmits, 0u);
    Simulation lossy(faults(0.02, 7), faults(0.02, 8), {}, true);
    expect_exact(transfer(lossy, 2 * MB, 600'000, false, wire::IpFamily::v6), 2 * MB);
}

TEST(Reordering, AdjacentSwapsCauseNoSpuriousRetransmission) {
    for (std::uint64_t seed : {1, 2, 3}) {
        Simulation sim(faults(0, seed, 0.05), faults(0, seed + 100, 0.05));
        const TransferResult r = transfer(sim, 10 * MB, 600'000);
        expect_exact(r, 10 * MB);
        EXPECT_EQ(r.sender.timeouts, 0u) << "seed " << seed;
        EXPECT_EQ(r.sender.fast_retransmits, 0u) << "a segment one place late makes one duplicate ACK, not three";
        EXPECT_GT(r.receiver.out_of_order, 0u) << "the link did reorder";
    }
}

TEST(Duplication, DuplicatesAreDroppedWithoutRetransmission) {
    Simulation sim(faults(0, 5, 0, 0.10), faults(0, 6, 0, 0.10));
    const TransferResult r = transfer(sim, 10 * MB, 600'000);
    expect_exact(r, 10 * MB);
    EXPECT_EQ(r.sender.timeouts, 0u);
    EXPECT_EQ(r.sender.fast_retransmits, 0u);
}

TEST(Delay, RttIsMeasuredAndNoTimerFiresSpuriously) {
    Simulation sim(faults(0, 1, 0, 0, 50), faults(0, 2, 0, 0, 50));
    const TransferResult r = transfer(sim, 10 * MB, 600'000);
    expect_exact(r, 10 * MB);
    EXPECT_EQ(r.sender.timeouts, 0u);
    EXPECT_EQ(r.sender.retransmits, 0u);
    EXPECT_GE(r.virtual_ms, 2 * 102u) << "at least the handshake and one data round trip";
}

TEST(Corruption, ChecksumsCatchFlippedBitsAndTheDataStillArrivesExact) {
    Simulation sim(faults(0, 1, 0, 0, 0, 0.02), faults(0, 2, 0, 0, 0, 0.02));
    const TransferResult r = transfer(sim, 10 * MB, 600'000);
    expect_exact(r, 10 * MB);
    EXPECT_GT(sim.b().stats().bad_checksum + sim.b().stats().malformed, 0u) << "corrupted frames were dropped, counted";
}

TEST(Combined, LossReorderDuplicationAndDelayTogether) {
    for (std::uint64_t seed : {11, 12}) {
        Simulation sim(faults(0.02, seed, 0.02, 0.02, 5), faults(0.02, seed + 100, 0.02, 0.02, 5));
        const TransferResult r = transfer(sim, 10 * MB, 3'600'000);
        expect_exact(r, 10 * MB);
    }
}

}  // namespace
}  // namespace ms::utcp::sim
