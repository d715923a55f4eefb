// Contract: the pacer (pacer.hpp) in packet scripts: segments leave at their departure
// times, a timer wakes the connection for each, and the window still bounds them.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "script.hpp"

namespace ms::utcp::test {
namespace {

// An algorithm with a fixed window and a fixed rate, as an application may register.
class FixedRate final : public LossBasedControl {
public:
    FixedRate(std::uint32_t smss, std::uint64_t rate) : LossBasedControl(smss), rate_(rate) { cwnd_ = 64 * smss; }
    [[nodiscard]] std::string_view name() const override { return "fixed_rate"; }
    [[nodiscard]] std::uint64_t pacing_rate() const override { return rate_; }

private:
    std::uint32_t back_off(const CcSample&) override { return cwnd_; }
    void slow_start(const CcSample&) override {}
    void grow(const CcSample&) override {}
    std::uint64_t rate_;
};

// One 1460-byte segment per millisecond: after the unpaced first ten (and the eleventh,
// which sets the first departure time), each segment leaves exactly 1 ms after the last,
// no earlier, and nothing goes between.
TEST(Pacing, SegmentsLeaveAtTheRate) {
    ScriptConfig config;
    config.options.congestion = "fixed_rate";
    PacketScript s(config);
    ASSERT_TRUE(s.stack().congestion().add("fixed_rate",
                                           [](std::uint32_t smss) { return std::make_unique<FixedRate>(smss, 1'460'000); }));
    s.run(kSackOpenRtt10);
    std::string script = "app send 21900\n";
    for (std::uint32_t k = 0; k < 11; ++k) script += "> . seq=" + std::to_string(1 + k * 1460) + " len=1460\n";
    script += "> none\n";
    for (std::uint32_t k = 11; k < 15; ++k) {
        script += "+999us\n> none\n+1us\n> . seq=" + std::to_string(1 + k * 1460) + " len=1460\n> none\n";
    }
    s.run(script);
    EXPECT_EQ(s.conn()->stats().timeouts, 0u);
}

// A window-based algorithm paces only when asked (ConnOptions::pacing): at twice cwnd per
// SRTT in slow start. Twelve 1460-byte segments per 10 ms RTT (slow start grew the window
// by the two acknowledged) go at 3.5 MB/s: 416 µs apart. Without the option they burst.
TEST(Pacing, CubicIsPacedOnlyWhenAsked) {
    ScriptConfig config;
    config.options.pacing = true;
    PacketScript s(config);
    s.run(kSackOpenRtt10);
    std::string script = "app send 17520\n";  // 12 segments: 10 in the initial window
    for (std::uint32_t k = 0; k < 10; ++k) script += "> . seq=" + std::to_string(1 + k * 1460) + " len=1460\n";
    script += R"(> none
+10
< . seq=1 ack=2921 win=65535
> . seq=14601 len=1460
> none
+415us
> none
+1us
> . seq=16061 len=1460
)";
    s.run(script);
    PacketScript unpaced;
    unpaced.run(kSackOpenRtt10);
    std::string burst = "app send 17520\n";
    for (std::uint32_t k = 0; k < 10; ++k) burst += "> . seq=" + std::to_string(1 + k * 1460) + " len=1460\n";
    burst += "+10\n< . seq=1 ack=2921 win=65535\n> . seq=14601 len=1460\n> . seq=16061 len=1460\n";
    unpaced.run(burst);
}

}  // namespace
}  // namespace ms::utcp::test
