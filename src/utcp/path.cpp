#include "utcp/path.hpp"

#include <algorithm>
#include <utility>

#include "utcp/connection.hpp"
#include "wire/ip.hpp"

namespace ms::utcp {
namespace {

// The smallest MTU a path may have: 576 for IPv4 (RFC 791, RFC 1122 §3.3.3; Linux's
// min_pmtu is 552), 1280 for IPv6 (RFC 8200 §5). A "packet too big" below it is taken
// as the minimum, so a forged one cannot make a connection crawl (RFC 5927 §7.2).
std::uint16_t minimum_mtu(wire::IpFamily family) { return family == wire::IpFamily::v6 ? 1280 : 576; }

}  // namespace

bool is_hard_error(wire::IcmpErrorKind kind) {
    return kind == wire::IcmpErrorKind::protocol_unreachable || kind == wire::IcmpErrorKind::port_unreachable ||
           kind == wire::IcmpErrorKind::prohibited;
}

ConnError error_for(wire::IcmpErrorKind kind) {
    switch (kind) {
        case wire::IcmpErrorKind::net_unreachable: return ConnError::net_unreachable;
        case wire::IcmpErrorKind::protocol_unreachable:
        case wire::IcmpErrorKind::port_unreachable: return ConnError::refused;
        case wire::IcmpErrorKind::parameter_problem: return ConnError::protocol_error;
        case wire::IcmpErrorKind::host_unreachable:
        case wire::IcmpErrorKind::prohibited:
        case wire::IcmpErrorKind::packet_too_big:
        case wire::IcmpErrorKind::time_exceeded: return ConnError::host_unreachable;
    }
    return ConnError::host_unreachable;
}

std::uint16_t headers_of(wire::IpFamily family) {
    constexpr std::uint16_t kTcpHeader = 20;
    return static_cast<std::uint16_t>((family == wire::IpFamily::v6 ? wire::kIpv6HeaderLen : wire::kIpv4MinHeaderLen) +
                                      kTcpHeader);
}

std::optional<std::uint16_t> mss_for_packet_too_big(std::uint32_t mtu, wire::IpFamily family, std::uint16_t mss) {
    if (mtu == 0) return std::nullopt;
    const std::uint32_t usable = std::max<std::uint32_t>(mtu, minimum_mtu(family));
    const std::uint32_t allowed = usable - headers_of(family);
    if (allowed >= mss) return std::nullopt;
    return static_cast<std::uint16_t>(allowed);
}

std::optional<std::uint16_t> mss_after_timeouts(std::uint32_t timeouts, wire::IpFamily family, std::uint16_t mss) {
    if (timeouts < kBlackHoleTimeouts) return std::nullopt;
    const auto floor = static_cast<std::uint16_t>(minimum_mtu(family) - headers_of(family));
    // The base first, on the first detection; the floor if the base is black-holed too
    // (every further kBlackHoleTimeouts timeouts).
    const std::uint16_t base = std::max(kSearchBaseMss, floor);
    if (mss > base && timeouts == kBlackHoleTimeouts) return base;
    if (mss > floor && timeouts == 2 * kBlackHoleTimeouts) return floor;
    return std::nullopt;
}

void MssSearch::start(std::uint16_t low, std::uint16_t high) {
    low_ = low;
    high_ = high;
    probe_mss_ = 0;
}

std::optional<std::uint16_t> MssSearch::next_probe() const {
    if (high_ < low_ + kDoneWithin || probe_mss_ != 0) return std::nullopt;
    return static_cast<std::uint16_t>((std::uint32_t{low_} + high_ + 1) / 2);
}

void MssSearch::probe_sent(Seq32 start, Seq32 end, std::uint16_t mss) {
    probe_start_ = start;
    probe_end_ = end;
    probe_mss_ = mss;
}

std::uint16_t MssSearch::probe_acked() {
    low_ = std::exchange(probe_mss_, 0);
    return low_;
}

void MssSearch::probe_lost() { high_ = static_cast<std::uint16_t>(std::exchange(probe_mss_, 0) - 1); }

void PathMssCache::remember(const wire::IpAddr& remote, std::uint16_t mss, std::uint64_t now_us) {
    if (!entries_.contains(remote) && entries_.size() >= kMaxEntries) make_room(now_us);
    entries_[remote] = Learned{mss, now_us + kLifetimeUs};
}

std::optional<std::uint16_t> PathMssCache::find(const wire::IpAddr& remote, std::uint64_t now_us) const {
    const auto it = entries_.find(remote);
    if (it == entries_.end() || it->second.expires_us <= now_us) return std::nullopt;
    return it->second.mss;
}

void PathMssCache::make_room(std::uint64_t now_us) {
    std::erase_if(entries_, [now_us](const auto& e) { return e.second.expires_us <= now_us; });
    if (entries_.size() >= kMaxEntries) entries_.erase(entries_.begin());
}

}  // namespace ms::utcp
