// Contract: TCP timestamps (RFC 7323 §3-5) for one connection: negotiation, the option
// each segment carries, TS.Recent with its update rule, PAWS, and RTT measurement from
// the echoed value (RTTM), the connection's fallback where Karn's rule leaves no sample. Our TSval clock ticks in
// milliseconds from an offset that differs per connection (§5.4: a shared clock would tell observers too much); the
// connection passes the time in, as everywhere in UTCP.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>

#include "utcp/clock.hpp"
#include "utcp/segment.hpp"

namespace ms::utcp {

class TimestampOption {
public:
    // Where this connection's TSval clock starts (a secret per connection: its ISS).
    void start(std::uint32_t offset) { offset_ = offset; }

    // §3.2: on once both SYNs carried the option; the SYN's TSval starts TS.Recent.
    void enable(std::uint32_t peer_tsval) {
        enabled_ = true;
        recent_ = peer_tsval;
    }
    [[nodiscard]] bool enabled() const { return enabled_; }
    [[nodiscard]] std::uint32_t offset() const { return offset_; }
    // A moved connection (connection_image.hpp): the clock and TS.Recent it had.
    void resume(std::uint32_t offset, bool enabled, std::uint32_t recent) {
        offset_ = offset;
        enabled_ = enabled;
        recent_ = recent;
    }
    // TS.Recent, if the option is on (kept by TIME_WAIT for RFC 6191).
    [[nodiscard]] std::optional<std::uint32_t> recent() const {
        return enabled_ ? std::optional<std::uint32_t>(recent_) : std::nullopt;
    }
    // What a segment sent at `now_us` carries (TSecr 0 in our first SYN).
    [[nodiscard]] wire::Timestamps stamp(std::uint64_t now_us) const { return {value(now_us), enabled_ ? recent_ : 0}; }

    // §5.3 R1 (PAWS): a segment whose TSval is older than TS.Recent is a duplicate from an
    // earlier wrap of the sequence space, unless it is a RST.
    [[nodiscard]] bool too_old(const Segment& seg) const {
        if (!enabled_ || !seg.options || !seg.options->timestamps || seg.has(wire::tcpflag::rst)) return false;
        return static_cast<std::int32_t>(seg.options->timestamps->value - recent_) < 0;
    }
    // §4.3: TS.Recent takes the TSval of a segment that covers the last ACK we sent.
    void note(const Segment& seg, Seq32 last_ack_sent) {
        if (!enabled_ || !seg.options || !seg.options->timestamps) return;
        const std::uint32_t tsval = seg.options->timestamps->value;
        if (static_cast<std::int32_t>(tsval - recent_) >= 0 && seg.seq <= last_ack_sent) recent_ = tsval;
    }
    // §4.1 (RTTM): the RTT an ACK of new data gives through its TSecr, in microseconds; none
    // if it echoes nothing we sent, or something implausible (over a minute). The clock
    // ticks in milliseconds: a sample is whole milliseconds, at least one (as Linux's).
    [[nodiscard]] std::optional<std::uint32_t> rtt_us(const Segment& seg, std::uint64_t now_us) const {
        if (!enabled_ || !seg.options || !seg.options->timestamps || seg.options->timestamps->echo_reply == 0) {
            return std::nullopt;
        }
        const std::uint32_t rtt = value(now_us) - seg.options->timestamps->echo_reply;
        if (rtt > kMaxRttMs) return std::nullopt;
        return static_cast<std::uint32_t>(us_from_ms(std::max(rtt, 1u)));
    }

private:
    static constexpr std::uint32_t kMaxRttMs = 60'000;
    // TSval: a millisecond clock (RFC 7323 §5.4 asks for 1 ms to 1 s a tick).
    [[nodiscard]] std::uint32_t value(std::uint64_t now_us) const {
        return static_cast<std::uint32_t>(ms_from_us(now_us)) + offset_;
    }

    std::uint32_t offset_ = 0;
    bool enabled_ = false;
    std::uint32_t recent_ = 0;  // TS.Recent
};

}  // namespace ms::utcp
