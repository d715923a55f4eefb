#include "sw/fault.hpp"

#include <sstream>

namespace ms::sw {

std::optional<FaultSpec> FaultSpec::parse(const std::string& spec, std::string& error) {
    FaultSpec f;
    std::stringstream items(spec);
    std::string item;
    while (std::getline(items, item, ',')) {
        const auto eq = item.find('=');
        if (eq == std::string::npos) {
            error = "expected key=value, got '" + item + "'";
            return std::nullopt;
        }
        const std::string key = item.substr(0, eq);
        const std::string value = item.substr(eq + 1);
        try {
            std::size_t used = 0;
            if (key == "delay") {
                f.delay = std::chrono::milliseconds(std::stoul(value, &used));
            } else if (key == "seed") {
                f.seed = std::stoull(value, &used);
            } else {
                const double p = std::stod(value, &used);
                if (p < 0 || p > 1) throw std::out_of_range("probability");
                if (key == "loss") f.loss = p;
                else if (key == "dup") f.duplicate = p;
                else if (key == "reorder") f.reorder = p;
                else if (key == "corrupt") f.corrupt = p;
                else throw std::invalid_argument("key");
            }
            if (used != value.size()) throw std::invalid_argument("trailing");
        } catch (const std::exception&) {
            error = "bad fault setting '" + item + "' (keys: loss, dup, reorder, corrupt as 0..1; delay in ms; seed)";
            return std::nullopt;
        }
    }
    return f;
}

FaultInjector::FaultInjector(const FaultSpec& spec, std::uint64_t stream) : spec_(spec), rng_(spec.seed ^ (stream * 0x9e3779b97f4a7c15ull)) {}

void FaultInjector::schedule(Frame f, Clock::time_point now) { delayed_.emplace_back(now + spec_.delay, std::move(f)); }

bool FaultInjector::offer(wire::Bytes frame, Clock::time_point now) {
    if (chance(spec_.loss)) return false;
    Frame f(frame.begin(), frame.end());
    if (chance(spec_.corrupt) && f.size() > 14) {
        std::uniform_int_distribution<std::size_t> at(14, f.size() - 1);
        f[at(rng_)] ^= static_cast<std::uint8_t>(1u << (rng_() % 8));
    }
    const bool twice = chance(spec_.duplicate);
    if (!held_ && chance(spec_.reorder)) {
        held_ = std::move(f);  // goes out after the next frame
        held_at_ = now;
        return true;
    }
    if (twice) schedule(f, now);
    schedule(std::move(f), now);
    if (held_) {
        schedule(std::move(*held_), now);
        held_.reset();
    }
    return true;
}

std::optional<FaultInjector::Frame> FaultInjector::take_ready(Clock::time_point now) {
    // A frame held for reordering waits for a successor at most 10 ms.
    if (held_ && now - held_at_ > std::chrono::milliseconds(10)) {
        schedule(std::move(*held_), held_at_);
        held_.reset();
    }
    if (delayed_.empty() || delayed_.front().first > now) return std::nullopt;
    Frame f = std::move(delayed_.front().second);
    delayed_.pop_front();
    return f;
}

}  // namespace ms::sw
