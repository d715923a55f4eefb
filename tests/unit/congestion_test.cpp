// Congestion control: CUBIC's back-off and window curve (RFC 9438), HyStart++
// leaving slow start on a rising RTT (RFC 9406), NewReno's figures (RFC 5681), and the
// registry through which an application brings its own algorithm.
#include <gtest/gtest.h>

#include <cmath>

#include "utcp/clock.hpp"
#include "utcp/congestion.hpp"

namespace ms::utcp {
namespace {

constexpr std::uint32_t kMss = 1000;

// Feeds `cc` a window's worth of ACKs each `rtt_ms`, from `start_ms` to `end_ms`, and
// returns the time.
std::uint64_t ack_rounds(CongestionControl& cc, std::uint64_t start_ms, std::uint64_t end_ms, std::uint32_t rtt_ms) {
    std::uint64_t now = start_ms;
    Seq32 una(1);
    for (; now < end_ms; now += rtt_ms) {
        const std::uint32_t segments = cc.cwnd() / kMss;
        const Seq32 max = una + cc.cwnd();
        for (std::uint32_t k = 0; k < segments; ++k) {
            una += kMss;
            cc.on_ack({.now_us = us_from_ms(now),
                       .smss = kMss,
                       .acked = kMss,
                       .flight = cc.cwnd(),
                       .rtt_us = static_cast<std::uint32_t>(us_from_ms(rtt_ms)),
                       .una = una,
                       .max = max});
        }
    }
    return now;
}

// Grows `cc` out of slow start into congestion avoidance at about `window` bytes.
void reach(CongestionControl& cc, std::uint32_t window) {
    while (cc.cwnd() < window) cc.on_ack({.smss = kMss, .acked = kMss, .flight = cc.cwnd()});
    const CcSample loss{.now_us = 1000, .smss = kMss, .flight = cc.cwnd()};
    cc.on_enter_recovery(loss);
    cc.on_exit_recovery(loss);
}

TEST(Cubic, BacksOffToSevenTenthsOfTheWindow) {
    CongestionRegistry registry;
    auto cubic = registry.make("cubic", kMss);
    while (cubic->cwnd() < 100 * kMss) cubic->on_ack({.smss = kMss, .acked = kMss, .flight = cubic->cwnd()});
    const std::uint32_t before = cubic->cwnd();
    cubic->on_enter_recovery({.now_us = 1000, .smss = kMss, .flight = before});
    EXPECT_EQ(cubic->ssthresh(), static_cast<std::uint32_t>(before * 0.7));  // RFC 9438 §4.6
    auto reno = registry.make("newreno", kMss);
    reno->on_enter_recovery({.smss = kMss, .flight = 100 * kMss});
    EXPECT_EQ(reno->ssthresh(), 50 * kMss);  // RFC 5681 eqn. 4
}

// RFC 7661 / RFC 9438 §5.8: a sender held to 10 segments in flight by the peer's window
// (or by its application) does not grow a window it never uses: slow start stops at twice
// the flight, congestion avoidance does not grow at all; a full flight grows it again.
TEST(Congestion, WindowGrowsOnlyWhileItLimitsTheSender) {
    CongestionRegistry registry;
    for (const char* name : {"cubic", "newreno"}) {
        auto cc = registry.make(name, kMss);
        for (int k = 0; k < 1000; ++k) cc->on_ack({.now_us = 1000, .smss = kMss, .acked = kMss, .flight = 9 * kMss});
        EXPECT_LE(cc->cwnd(), 2 * 10 * kMss + kMss) << name << ": slow start up to twice the flight, no further";
        reach(*cc, 40 * kMss);
        const std::uint32_t avoided = cc->cwnd();
        for (std::uint64_t k = 0; k < 1000; ++k)
            cc->on_ack({.now_us = us_from_ms(2 + k), .smss = kMss, .acked = kMss, .flight = 9 * kMss});
        EXPECT_EQ(cc->cwnd(), avoided) << name << ": no growth in congestion avoidance while the flight is below cwnd";
        ack_rounds(*cc, 5000, 6000, 100);
        EXPECT_GT(cc->cwnd(), avoided) << name << ": full flights grow it";
    }
}

// RFC 9438 §4.2: after a loss at W_max, the window climbs back to W_max after
// K = cbrt(W_max (1 - beta) / C) seconds, flattening near it, then grows beyond. (At a
// 100 ms RTT; at 10 ms Reno would grow faster, and CUBIC follows Reno there, §4.3.)
TEST(Cubic, WindowReturnsToTheLossWindowAfterK) {
    CongestionRegistry registry;
    auto cubic = registry.make("cubic", kMss);
    reach(*cubic, 100 * kMss);
    const double w_max = static_cast<double>(cubic->ssthresh()) / 0.7 / kMss;
    const double k_seconds = std::cbrt(w_max * (1 - 0.7) / 0.4);
    const auto k_ms = static_cast<std::uint64_t>(k_seconds * 1000);
    const std::uint64_t start = 1000;
    ack_rounds(*cubic, start, start + k_ms / 2, 100);
    const double halfway = static_cast<double>(cubic->cwnd()) / kMss;
    ack_rounds(*cubic, start + k_ms / 2, start + k_ms, 100);
    const double at_k = static_cast<double>(cubic->cwnd()) / kMss;
    EXPECT_GT(halfway, 0.9 * w_max);
    EXPECT_NEAR(at_k, w_max, 0.1 * w_max) << "K = " << k_seconds << " s";
    // Concave then convex: most of the way back in the first half of K.
    EXPECT_GT(halfway - 0.7 * w_max, at_k - halfway);
    ack_rounds(*cubic, start + k_ms, start + 2 * k_ms, 100);
    EXPECT_GT(static_cast<double>(cubic->cwnd()) / kMss, 1.2 * w_max) << "it probes beyond W_max";
}

// RFC 9406: an RTT that rises by more than an eighth of the last round's (at least 4 ms)
// ends slow start through conservative slow start, before any loss.
TEST(HyStartPlusPlus, RisingRttEndsSlowStartBeforeALoss) {
    CongestionRegistry registry;
    auto cubic = registry.make("cubic", kMss);
    std::uint64_t now = 0;
    Seq32 una(1);
    std::uint32_t rtt = 20;
    for (int round = 0; round < 30 && cubic->ssthresh() == 0xffffffff; ++round) {
        const Seq32 max = una + cubic->cwnd();
        const std::uint32_t segments = cubic->cwnd() / kMss;
        if (round >= 4) rtt = 40;  // a queue builds: the RTT doubles
        for (std::uint32_t k = 0; k < segments; ++k) {
            una += kMss;
            cubic->on_ack({.now_us = us_from_ms(now),
                           .smss = kMss,
                           .acked = kMss,
                           .flight = cubic->cwnd(),
                           .rtt_us = static_cast<std::uint32_t>(us_from_ms(rtt)),
                           .una = una,
                           .max = max});
        }
        now += rtt;
    }
    EXPECT_NE(cubic->ssthresh(), 0xffffffffu) << "slow start never ended";
    EXPECT_LT(cubic->cwnd(), 2000 * kMss);
}

// An application's own algorithm: registered by name, refused twice, made on demand.
class Fixed final : public CongestionControl {
public:
    [[nodiscard]] std::string_view name() const override { return "fixed"; }
    [[nodiscard]] std::uint32_t cwnd() const override { return 42 * kMss; }
    [[nodiscard]] std::uint32_t ssthresh() const override { return 42 * kMss; }
    void on_ack(const CcSample&) override {}
    void on_enter_recovery(const CcSample&) override {}
    void on_dup_ack_in_recovery(const CcSample&) override {}
    void on_partial_ack(const CcSample&) override {}
    void on_exit_recovery(const CcSample&) override {}
    void on_rto(const CcSample&) override {}
    void on_ecn(const CcSample&) override {}
    void on_idle_restart(const CcSample&) override {}
};

TEST(CongestionRegistry, TakesAnApplicationsAlgorithm) {
    CongestionRegistry registry;
    EXPECT_TRUE(registry.has("cubic"));
    EXPECT_TRUE(registry.has("newreno"));
    EXPECT_EQ(registry.make("vegas", kMss), nullptr);
    EXPECT_TRUE(registry.add("fixed", [](std::uint32_t) { return std::make_unique<Fixed>(); }));
    EXPECT_FALSE(registry.add("fixed", [](std::uint32_t) { return std::make_unique<Fixed>(); }));
    EXPECT_FALSE(registry.add("cubic", [](std::uint32_t) { return std::make_unique<Fixed>(); }));
    auto made = registry.make("fixed", kMss);
    ASSERT_NE(made, nullptr);
    EXPECT_EQ(made->cwnd(), 42 * kMss);
    EXPECT_EQ(registry.names(), (std::vector<std::string>{"cubic", "fixed", "newreno"}));
}

}  // namespace
}  // namespace ms::utcp
