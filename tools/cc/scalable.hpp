// Contract: an example of an application bringing its own congestion control
// (the paper's point: transport features ship with the application): Scalable TCP
// (Kelly, "Scalable TCP: improving performance in highspeed wide area networks", 2003),
// built on UTCP's LossBasedControl from outside src/utcp. In congestion avoidance it adds
// 0.01 segment per segment acknowledged, so that its recovery time after a loss does not
// grow with the window; a loss takes an eighth of the window off (NewReno takes half).
// utcp-echo and ms-httpd register it as "scalable" (--cc scalable).
#pragma once

#include <algorithm>
#include <memory>
#include <string>
#include <utility>

#include "utcp/congestion.hpp"

namespace ms::tools {

class ScalableTcp final : public utcp::LossBasedControl {
public:
    static constexpr double kIncrease = 0.01;   // segments per segment acknowledged
    static constexpr double kDecrease = 0.125;  // of the window, at a loss

    explicit ScalableTcp(std::uint32_t smss) : LossBasedControl(smss) {}
    [[nodiscard]] std::string_view name() const override { return "scalable"; }

private:
    std::uint32_t back_off(const utcp::CcSample& s) override {
        return std::max(static_cast<std::uint32_t>(cwnd_ * (1 - kDecrease)), 2 * s.smss);
    }
    void grow(const utcp::CcSample& s) override {
        credit_ += kIncrease * s.acked;  // bytes of window earned
        const auto whole = static_cast<std::uint32_t>(credit_);
        cwnd_ += whole;
        credit_ -= whole;
    }

    double credit_ = 0;
};

// The name and factory to give a stack's CongestionRegistry (LoopOptions::congestion_algorithms).
inline std::pair<std::string, utcp::CongestionRegistry::Factory> scalable_algorithm() {
    return {"scalable", [](std::uint32_t smss) { return std::make_unique<ScalableTcp>(smss); }};
}

}  // namespace ms::tools
