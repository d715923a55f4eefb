// BBR's rules that a whole connection shows only after many rounds, driven here with
// the delivery rate samples that UTCP's recovery gives it.
#include "bbr/bbr.hpp"

#include <gtest/gtest.h>

namespace ms::bbr {
namespace {

constexpr std::uint32_t kSmss = 1448;
constexpr std::uint32_t kRttUs = 10'000;

// Feeds a Bbr one ACK at a time: each delivers `kSmss`, with the rate the test asks for,
// and says whether the sampled segment went before the current round began.
class BbrDriver {
public:
    // An ACK whose sampled segment went at the start of the current round (a round
    // starts), or in the middle of it (no round starts).
    void ack(std::uint64_t rate, bool round_start) {
        delivered_ += kSmss;
        now_us_ += kRttUs / 4;
        utcp::RateSample rs{.delivery_rate = rate,
                            .delivered = 10 * kSmss,
                            .interval_us = kRttUs,
                            .prior_delivered = round_start ? round_delivered_ : round_delivered_ - kSmss,
                            .tx_in_flight = 10 * kSmss,
                            .newly_acked = kSmss,
                            .in_flight = 10 * kSmss,
                            .rtt_us = kRttUs,
                            .total_delivered = delivered_,
                            .has_data = true};
        if (round_start) round_delivered_ = delivered_;
        const utcp::CcSample s{
            .now_us = now_us_, .smss = kSmss, .acked = kSmss, .flight = 10 * kSmss, .rtt_us = kRttUs, .rate = &rs};
        bbr.on_every_ack(s);
        bbr.on_ack(s);
    }

    Bbr bbr{kSmss};

private:
    std::uint64_t now_us_ = 1'000'000;
    std::uint64_t delivered_ = 10 * kSmss;
    std::uint64_t round_delivered_ = 10 * kSmss;
};

TEST(BbrStartup, EndsAfterThreeRoundsWithoutGrowth) {
    BbrDriver d;
    for (int round = 0; round < 3; ++round) d.ack(1'000'000, true);
    EXPECT_EQ(d.bbr.phase(), BbrPhase::startup);  // the first sample set the baseline
    d.ack(1'000'000, true);
    EXPECT_NE(d.bbr.phase(), BbrPhase::startup);
}

// The draft's BBRCheckFullBWReached looks for growth in every sample and counts a flat
// round only at its start: bandwidth that grows within the rounds keeps Startup going
// even when each round's first sample shows none.
TEST(BbrStartup, GrowthWithinARoundKeepsItGoing) {
    BbrDriver d;
    constexpr std::uint64_t kFirst = 1'000'000;
    std::uint64_t rate = kFirst;
    d.ack(kFirst, true);
    for (int round = 0; round < 6; ++round) {
        d.ack(kFirst, true);  // no growth at the round's start
        rate = rate * 13 / 10;
        d.ack(rate, false);  // 30 % more within it
    }
    EXPECT_EQ(d.bbr.phase(), BbrPhase::startup);
}

}  // namespace
}  // namespace ms::bbr
