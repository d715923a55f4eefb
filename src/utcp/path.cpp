#include "utcp/path.hpp"

#include <algorithm>

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

}  // namespace ms::utcp
