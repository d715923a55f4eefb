// Contract: what the network path tells a TCP connection besides the peer's segments.
// ICMP errors (RFC 1122 §4.2.3.9, RFC 5461): which are hard (the peer's host or port
// refuses: they abort a connection still in SYN_SENT) and which are soft (remembered, and
// reported as the reason if the connection later times out), and the ConnError each one
// names. The path MTU: the MSS that a "packet too big" allows (RFC 1191 §3, RFC 8201 §4;
// values under the minimum MTU are raised to it, RFC 5927 §7.2 and RFC 8201 §4), and,
// where the path drops large segments without a word, the MSS to retreat to after
// consecutive timeouts (black-hole detection, RFC 4821 §5.4 / §7.7, as Linux's
// tcp_mtu_probing does it): first the search base of 1024 bytes, then the minimum.
// MssSearch is RFC 4821's search back up after black-hole detection lowered the MSS.
// PathMssCache keeps what "packet too big" taught about a destination for the
// connections that follow (RFC 1191 §5, RFC 8201 §5.2).
// The functions are pure: the connection keeps its state and applies them.
#pragma once

#include <cstdint>
#include <optional>
#include <unordered_map>

#include "utcp/clock.hpp"
#include "utcp/seq.hpp"
#include "wire/bytes.hpp"
#include "wire/icmp.hpp"

namespace ms::utcp {

enum class ConnError : std::uint8_t;

// RFC 1122 §4.2.3.9: protocol and port unreachable (and administrative prohibition,
// which Linux also treats as fatal) are hard; the rest say the path may yet recover.
[[nodiscard]] bool is_hard_error(wire::IcmpErrorKind kind);
[[nodiscard]] ConnError error_for(wire::IcmpErrorKind kind);

// The IP and TCP headers (without options) that an MTU holds besides the MSS.
[[nodiscard]] std::uint16_t headers_of(wire::IpFamily family);

// The MSS a "packet too big" naming `mtu` leaves: lower than `mss`, or nothing. `mtu` 0
// (a router older than RFC 1191) names no size: nothing.
[[nodiscard]] std::optional<std::uint16_t> mss_for_packet_too_big(std::uint32_t mtu, wire::IpFamily family,
                                                                  std::uint16_t mss);

// RFC 4821 black-hole detection: this many retransmission timeouts in a row, with
// segments of more than the search base, make the MSS retreat.
inline constexpr std::uint32_t kBlackHoleTimeouts = 2;
inline constexpr std::uint16_t kSearchBaseMss = 1024;  // RFC 4821 §7.2, Linux's tcp_base_mss
// After `timeouts` consecutive RTOs with `mss`: the MSS to try, if lower.
[[nodiscard]] std::optional<std::uint16_t> mss_after_timeouts(std::uint32_t timeouts, wire::IpFamily family,
                                                              std::uint16_t mss);

// RFC 4821 §7.2-7.7 after a black hole: the MSS that works (low) and the smallest that
// failed (high + 1) bound a binary search. A probe is one segment of the midpoint's size,
// sent with new data when nothing else is being recovered; acknowledged, it raises low
// (and the connection's MSS); lost (RACK deems it lost, or a timeout while it is out),
// it lowers high, and its data goes again in segments of the current MSS. The search
// ends when high - low is under kDoneWithin.
class MssSearch {
public:
    static constexpr std::uint16_t kDoneWithin = 8;  // bytes, as Linux's tcp_probe_threshold

    void start(std::uint16_t low, std::uint16_t high);
    // The next probe's MSS, when the search goes on and no probe is out.
    [[nodiscard]] std::optional<std::uint16_t> next_probe() const;
    void probe_sent(Seq32 start, Seq32 end, std::uint16_t mss);
    [[nodiscard]] bool probing() const { return probe_mss_ != 0; }
    [[nodiscard]] Seq32 probe_start() const { return probe_start_; }
    [[nodiscard]] Seq32 probe_end() const { return probe_end_; }
    // The probe was acknowledged: its MSS works (the connection takes it).
    std::uint16_t probe_acked();
    // The probe was lost: nothing of its size passes.
    void probe_lost();
    [[nodiscard]] std::uint16_t low() const { return low_; }
    [[nodiscard]] std::uint16_t high() const { return high_; }

private:
    std::uint16_t low_ = 0;
    std::uint16_t high_ = 0;  // 0: no search
    std::uint16_t probe_mss_ = 0;
    Seq32 probe_start_, probe_end_;  // the probe's sequence range
};

// RFC 1191 §5: the MSS a destination's path takes, learned from "packet too big" by one
// connection, for the next ones. An entry lasts kLifetimeUs (RFC 1191 §6.3 suggests 10
// minutes, Linux's mtu_expires too), so that a path that grew is used again; at most
// kMaxEntries are kept (expired ones go first, then any), so memory has one bound. Only
// errors a connection believed (in its window, RFC 5927) are remembered.
class PathMssCache {
public:
    static constexpr std::uint64_t kLifetimeUs = us_from_ms(600'000);
    static constexpr std::size_t kMaxEntries = 4096;

    void remember(const wire::IpAddr& remote, std::uint16_t mss, std::uint64_t now_us);
    [[nodiscard]] std::optional<std::uint16_t> find(const wire::IpAddr& remote, std::uint64_t now_us) const;
    [[nodiscard]] std::size_t size() const { return entries_.size(); }

private:
    struct Learned {
        std::uint16_t mss;
        std::uint64_t expires_us;
    };
    void make_room(std::uint64_t now_us);
    std::unordered_map<wire::IpAddr, Learned, wire::IpAddrHash> entries_;
};

}  // namespace ms::utcp
