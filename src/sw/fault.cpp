#include "sw/fault.hpp"

#include <charconv>
#include <sstream>
#include <string_view>

namespace ms::sw {

namespace {

// The whole of `text` as a number, or nothing.
template <class T>
std::optional<T> number(std::string_view text) {
    T value{};
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
    return value;
}

// Sets the field that `key` names; false if there is none or the value does not fit it.
bool set_field(FaultSpec& f, std::string_view key, std::string_view value) {
    if (key == "delay") {
        const auto ms = number<unsigned long>(value);
        if (ms) f.delay = std::chrono::milliseconds(*ms);
        return ms.has_value();
    }
    if (key == "seed") {
        const auto seed = number<std::uint64_t>(value);
        if (seed) f.seed = *seed;
        return seed.has_value();
    }
    const auto p = number<double>(value);
    if (!p || *p < 0 || *p > 1) return false;
    if (key == "loss") f.loss = *p;
    else if (key == "dup") f.duplicate = *p;
    else if (key == "reorder") f.reorder = *p;
    else if (key == "corrupt") f.corrupt = *p;
    else return false;
    return true;
}

}  // namespace

base::Result<FaultSpec, FaultSpecFailure> FaultSpec::parse(const std::string& spec) {
    FaultSpec f;
    std::stringstream items(spec);
    std::string item;
    while (std::getline(items, item, ',')) {
        const auto eq = item.find('=');
        if (eq == std::string::npos) {
            return FaultSpecFailure{FaultSpecError::not_key_value, "expected key=value, got '" + item + "'"};
        }
        if (!set_field(f, std::string_view(item).substr(0, eq), std::string_view(item).substr(eq + 1))) {
            return FaultSpecFailure{
                FaultSpecError::bad_setting,
                "bad fault setting '" + item + "' (keys: loss, dup, reorder, corrupt as 0..1; delay in ms; seed)"};
        }
    }
    return f;
}

FaultInjector::FaultInjector(const FaultSpec& spec, std::uint64_t stream)
    : spec_(spec), rng_(spec.seed ^ (stream * 0x9e3779b97f4a7c15ull)) {}

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
