// Fault injection (--fault): the spec parser, each fault on its own, and the switch
// applying them on delivery to a port.
#include <gtest/gtest.h>

#include <bit>

#include "sw/fault.hpp"

namespace ms::sw {
namespace {

using Clock = FaultInjector::Clock;
using Frame = FaultInjector::Frame;

Frame frame(std::uint8_t tag) {
    Frame f(60, 0);
    f[20] = tag;
    return f;
}

std::vector<Frame> run(const FaultSpec& spec, int frames, Clock::time_point at) {
    FaultInjector inj(spec, 7);
    std::vector<Frame> out;
    for (int i = 0; i < frames; ++i) {
        const Frame f = frame(static_cast<std::uint8_t>(i));
        (void)inj.offer(f, at);
        while (auto r = inj.take_ready(at)) out.push_back(*r);
    }
    return out;
}

TEST(FaultSpec, ParsesEveryKeyAndRejectsNonsense) {
    auto s = FaultSpec::parse("loss=0.01,dup=0.5,reorder=1,corrupt=0,delay=20,seed=42");
    ASSERT_TRUE(s) << s.error().detail;
    EXPECT_DOUBLE_EQ(s->loss, 0.01);
    EXPECT_DOUBLE_EQ(s->duplicate, 0.5);
    EXPECT_DOUBLE_EQ(s->reorder, 1.0);
    EXPECT_EQ(s->delay.count(), 20);
    EXPECT_EQ(s->seed, 42u);
    EXPECT_TRUE(s->active());
    auto off = FaultSpec::parse("");
    ASSERT_TRUE(off);
    EXPECT_FALSE(off->active());
    for (const char* bad : {"loss", "loss=2", "loss=-0.1", "jitter=1", "delay=5ms", "loss=0.1x"}) {
        const auto parsed = FaultSpec::parse(bad);
        ASSERT_FALSE(parsed) << bad;
        EXPECT_FALSE(parsed.error().detail.empty());
        EXPECT_EQ(parsed.error().error,
                  bad == std::string("loss") ? FaultSpecError::not_key_value : FaultSpecError::bad_setting);
    }
}

TEST(FaultInjector, LosesDuplicatesReordersAndCorrupts) {
    const auto now = Clock::now();
    EXPECT_TRUE(run(FaultSpec{.loss = 1}, 10, now).empty());
    EXPECT_EQ(run(FaultSpec{.duplicate = 1}, 10, now).size(), 20u);

    const auto swapped = run(FaultSpec{.reorder = 1}, 4, now);
    ASSERT_EQ(swapped.size(), 4u);
    EXPECT_EQ(swapped[0][20], 1);  // each frame is held and goes after the next one
    EXPECT_EQ(swapped[1][20], 0);
    EXPECT_EQ(swapped[2][20], 3);
    EXPECT_EQ(swapped[3][20], 2);

    for (const Frame& f : run(FaultSpec{.corrupt = 1}, 50, now)) {
        int flipped = 0;
        const Frame clean = frame(f[20]);  // byte 20 tags the frame, so it is left out below
        for (std::size_t i = 0; i < f.size(); ++i) {
            if (i != 20) flipped += std::popcount(static_cast<unsigned>(f[i] ^ clean[i]));
        }
        EXPECT_LE(flipped, 1);
        for (std::size_t i = 0; i < 14; ++i) EXPECT_EQ(f[i], 0) << "the Ethernet header is left alone";
    }
}

TEST(FaultInjector, DelaysUntilTheTimeComes) {
    FaultInjector inj(FaultSpec{.delay = std::chrono::milliseconds(20)}, 1);
    const auto t0 = Clock::now();
    ASSERT_TRUE(inj.offer(frame(1), t0));
    EXPECT_FALSE(inj.take_ready(t0 + std::chrono::milliseconds(19)));
    EXPECT_TRUE(inj.holding());
    EXPECT_TRUE(inj.take_ready(t0 + std::chrono::milliseconds(20)));
    EXPECT_FALSE(inj.holding());
}

TEST(FaultInjector, AHeldFrameWithNoSuccessorStillGoes) {
    FaultInjector inj(FaultSpec{.reorder = 1}, 1);
    const auto t0 = Clock::now();
    ASSERT_TRUE(inj.offer(frame(1), t0));
    EXPECT_FALSE(inj.take_ready(t0));
    EXPECT_TRUE(inj.take_ready(t0 + std::chrono::milliseconds(11)));
}

TEST(FaultInjector, TheSameSeedGivesTheSameLosses) {
    const auto now = Clock::now();
    const FaultSpec spec{.loss = 0.3, .seed = 99};
    const auto a = run(spec, 1000, now);
    const auto b = run(spec, 1000, now);
    EXPECT_EQ(a, b);
    EXPECT_GT(a.size(), 600u);
    EXPECT_LT(a.size(), 800u);
}

}  // namespace
}  // namespace ms::sw
