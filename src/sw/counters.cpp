#include "sw/counters.hpp"

#include <numeric>

namespace ms::sw {

std::string_view to_string(DropReason r) {
    switch (r) {
        case DropReason::truncated: return "truncated";
        case DropReason::bad_ip_version: return "bad_ip_version";
        case DropReason::bad_header_length: return "bad_header_length";
        case DropReason::bad_total_length: return "bad_total_length";
        case DropReason::bad_transport: return "bad_transport";
        case DropReason::multicast: return "multicast";
        case DropReason::vlan_tagged: return "vlan_tagged";
        case DropReason::bad_src_mac: return "bad_src_mac";
        case DropReason::not_ip: return "not_ip";
        case DropReason::bad_ip_checksum: return "bad_ip_checksum";
        case DropReason::fragment: return "fragment";
        case DropReason::ipv6_extension: return "ipv6_extension";
        case DropReason::bad_hop_limit: return "bad_hop_limit";
        case DropReason::bad_protocol: return "bad_protocol";
        case DropReason::src_not_claimed: return "src_not_claimed";
        case DropReason::bad_segment: return "bad_segment";
        case DropReason::over_mtu: return "over_mtu";
        case DropReason::group_full: return "group_full";
        case DropReason::nic_refused: return "nic_refused";
        case DropReason::ring_full: return "ring_full";
        case DropReason::port_failed: return "port_failed";
        case DropReason::fault_injected: return "fault_injected";
        case DropReason::stale_destination: return "stale_destination";
        case DropReason::oversize: return "oversize";
        case DropReason::host_miss: return "host_miss";
        case DropReason::nic_malformed: return "nic_malformed";
        case DropReason::count_: break;
    }
    return "unknown";
}

DropReason drop_reason_for(wire::ParseError e) {
    switch (e) {
        case wire::ParseError::truncated: return DropReason::truncated;
        case wire::ParseError::bad_version: return DropReason::bad_ip_version;
        case wire::ParseError::bad_header_length: return DropReason::bad_header_length;
        case wire::ParseError::bad_total_length: return DropReason::bad_total_length;
        case wire::ParseError::bad_data_offset:
        case wire::ParseError::bad_option:
        case wire::ParseError::bad_extension:
        case wire::ParseError::bad_hardware_type:
        case wire::ParseError::unsupported: return DropReason::bad_transport;
    }
    return DropReason::bad_transport;
}

void StatsSnapshot::add(const RingStats& s) {
    rx_frames += s.rx_frames.get();
    rx_bytes += s.rx_bytes.get();
    tx_frames += s.tx_frames.get();
    tx_super += s.tx_super.get();
    tx_segmented += s.tx_segmented.get();
    tx_bytes += s.tx_bytes.get();
    for (std::size_t i = 0; i < kDropReasonCount; ++i) drops[i] += s.drops[i].get();
    for (std::size_t i = 0; i < ring::kRingFaultCount; ++i) faults[i] += s.faults[i].get();
}

void carry_on(RingStats& s, const StatsSnapshot& from) {
    s.rx_frames.add(from.rx_frames);
    s.rx_bytes.add(from.rx_bytes);
    s.tx_frames.add(from.tx_frames);
    s.tx_bytes.add(from.tx_bytes);
    s.tx_super.add(from.tx_super);
    s.tx_segmented.add(from.tx_segmented);
    for (std::size_t i = 0; i < kDropReasonCount; ++i) s.drops[i].add(from.drops[i]);
    for (std::size_t i = 0; i < ring::kRingFaultCount; ++i) s.faults[i].add(from.faults[i]);
}

std::uint64_t StatsSnapshot::total_drops() const { return std::accumulate(drops.begin(), drops.end(), std::uint64_t{0}); }

}  // namespace ms::sw
