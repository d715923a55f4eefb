// BBR's rules that a whole connection shows only after many rounds, driven here with
// the delivery rate samples that UTCP's recovery gives it.
#include "bbr/bbr.hpp"

#include <gtest/gtest.h>

#include "utcp/recovery.hpp"

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

// After 5 s without a lower RTT, ProbeRTT holds the flight down, and says so, so that
// loss recovery marks those sends application-limited.
TEST(BbrProbeRtt, HoldsTheSenderBackAfterFiveSecondsWithoutALowerRtt) {
    BbrDriver d;
    for (int k = 0; k < 4; ++k) d.ack(1'000'000, true);  // Startup ends
    EXPECT_FALSE(d.bbr.holds_sender_back());
    for (int k = 0; k < 2100 && d.bbr.phase() != BbrPhase::probe_rtt; ++k) d.ack(1'000'000, k % 4 == 0);
    EXPECT_EQ(d.bbr.phase(), BbrPhase::probe_rtt);
    EXPECT_TRUE(d.bbr.holds_sender_back());
}

// A loss-based algorithm that says it holds the sender back, for RackRecovery's side.
class HeldBack final : public utcp::LossBasedControl {
public:
    HeldBack() : LossBasedControl(kSmss) {}
    [[nodiscard]] std::string_view name() const override { return "held_back"; }
    [[nodiscard]] bool holds_sender_back() const override { return true; }
    void on_every_ack(const utcp::CcSample& s) override { last_app_limited = s.rate && s.rate->app_limited; }
    bool last_app_limited = false;

private:
    std::uint32_t back_off(const utcp::CcSample& s) override { return s.flight / 2; }
    void grow(const utcp::CcSample&) override {}
};

TEST(BbrProbeRtt, RecoveryMarksWhatGoesWhileTheAlgorithmHoldsBackAppLimited) {
    utcp::RackRecovery recovery;
    HeldBack cc;
    const utcp::Seq32 iss(1);
    recovery.start(iss);
    const auto ack = [&](utcp::Seq32 una, utcp::Seq32 max, std::uint64_t now_us) {
        const utcp::AckInput in{
            .ctx = {.una = una, .max = max, .flight = static_cast<std::uint32_t>(max - una), .smss = kSmss, .now_us = now_us},
            .acked = kSmss};
        recovery.on_ack(in, cc);
    };
    recovery.on_sent(iss, kSmss, 0);
    ack(iss + kSmss, iss + kSmss, kRttUs);
    EXPECT_FALSE(cc.last_app_limited) << "sent before the algorithm held back";
    recovery.on_sent(iss + kSmss, kSmss, kRttUs);
    ack(iss + 2 * kSmss, iss + 2 * kSmss, 2 * kRttUs);
    EXPECT_TRUE(cc.last_app_limited);
}

}  // namespace
}  // namespace ms::bbr
