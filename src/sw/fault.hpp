// Contract: fault injection for testing stacks (the daemon's --fault SPEC). Applied to
// the frames the switch delivers to a port, so that two stacks talking through the switch
// each see a faulty path. SPEC is comma-separated key=value pairs, all optional:
//   loss=P       drop a frame with probability P
//   dup=P        deliver a frame twice
//   reorder=P    hold a frame back and deliver it after the next one
//   corrupt=P    flip one bit of the frame past its Ethernet header
//   delay=MS     hold every frame MS milliseconds
//   seed=N       seed of the pseudo-random sequence (default 1), so runs repeat
// Probabilities are in [0, 1]. Each port ring has its own FaultInjector, used only by
// the worker that owns the ring. Off by default; costs nothing when off.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "wire/bytes.hpp"

namespace ms::sw {

enum class FaultSpecError : std::uint8_t {
    not_key_value,  // an item without '='
    bad_setting,    // an unknown key, or a value that is not a number in range
};

// The cause, and the message a user sees (it quotes the item).
struct FaultSpecFailure {
    FaultSpecError error;
    std::string detail;
};

struct FaultSpec {
    double loss = 0;
    double duplicate = 0;
    double reorder = 0;
    double corrupt = 0;
    std::chrono::milliseconds delay{0};
    std::uint64_t seed = 1;

    [[nodiscard]] bool active() const { return loss > 0 || duplicate > 0 || reorder > 0 || corrupt > 0 || delay.count() > 0; }
    // Parses SPEC; fails, naming the item, if it is malformed.
    [[nodiscard]] static base::Result<FaultSpec, FaultSpecFailure> parse(const std::string& spec);
};

class FaultInjector {
public:
    using Clock = std::chrono::steady_clock;
    using Frame = std::vector<std::uint8_t>;

    FaultInjector(const FaultSpec& spec, std::uint64_t stream);

    // Takes one frame offered for delivery; false if the injector dropped it (loss).
    // Afterwards take_ready() yields what may go now.
    bool offer(wire::Bytes frame, Clock::time_point now);
    // Frames due for delivery at `now`, in order; each is removed when taken.
    [[nodiscard]] std::optional<Frame> take_ready(Clock::time_point now);
    [[nodiscard]] bool holding() const { return !delayed_.empty() || held_.has_value(); }

private:
    [[nodiscard]] bool chance(double p) { return p > 0 && uniform_(rng_) < p; }
    void schedule(Frame f, Clock::time_point now);

    FaultSpec spec_;
    std::mt19937_64 rng_;
    std::uniform_real_distribution<double> uniform_{0.0, 1.0};
    std::optional<Frame> held_;  // held back for reordering
    Clock::time_point held_at_;
    std::deque<std::pair<Clock::time_point, Frame>> delayed_;
};

}  // namespace ms::sw
