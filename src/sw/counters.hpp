// Contract: the switch's counters. Every frame the switch drops is counted once, with
// one DropReason, on the port (or NIC queue) where it was dropped. Each counter has a
// single writer (the worker that owns the ring), so it is bumped with a relaxed load
// and store, never a locked add; readers on other threads load it relaxed.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

#include "ring/switch_ring.hpp"
#include "wire/parse_error.hpp"

namespace ms::sw {

enum class DropReason : std::uint8_t {
    // Validation of frames that ports transmit (docs/DESIGN.md §4), in the order checked.
    truncated,           // shorter than the headers it declares
    bad_ip_version,      // IP version field does not match the EtherType
    bad_header_length,   // IPv4 IHL below 5 or beyond the frame
    bad_total_length,    // IP or UDP length beyond the frame
    bad_transport,       // TCP data offset, TCP option or IPv6 extension chain malformed
    multicast,           // broadcast or multicast destination MAC from a port
    vlan_tagged,         // an 802.1Q tag: only untagged frames leave (a tagged interface is another interface)
    bad_src_mac,         // Ethernet source is not the NIC's MAC
    not_ip,              // EtherType other than IPv4/IPv6 (the kernel does ARP and ND)
    bad_ip_checksum,     // IPv4 header checksum wrong
    fragment,            // IP fragments are not forwarded from ports
    ipv6_extension,      // IPv6 extension headers (hop-by-hop, routing...) are not forwarded from ports
    bad_hop_limit,       // IPv4 TTL or IPv6 hop limit 0: the packet could not leave the host
    bad_protocol,        // neither TCP nor UDP
    src_not_claimed,     // the source 3-tuple is not claimed by the sending port
    bad_segment,         // a super-segment whose header, lengths, flags or gso_size do not hold
    over_mtu,            // a frame, or a super-segment's segments, larger than the interface's MTU
    group_full,          // an ACK that would record a shared claim's connection, its flow table full (sent again)
    // Delivery.
    ring_full,           // the destination ring (port rx or NIC tx) had no room
    port_failed,         // the destination port was failed for a ring fault
    fault_injected,      // lost on purpose by --fault (loss=)
    stale_destination,   // handed between workers for a port that has detached since
    oversize,            // longer than ring::kMaxFrameSize (from the NIC, or a switch bug)
    nic_refused,         // the kernel refused a super-segment handed to the interface's GSO
    // Frames from the NIC.
    host_miss,           // no port claims it (XDP should have passed it to the kernel)
    nic_malformed,       // unparseable frame from the NIC
    count_
};
inline constexpr std::size_t kDropReasonCount = static_cast<std::size_t>(DropReason::count_);
[[nodiscard]] std::string_view to_string(DropReason r);
[[nodiscard]] DropReason drop_reason_for(wire::ParseError e);

// A single-writer counter.
class Counter {
public:
    void add(std::uint64_t n = 1) { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
    [[nodiscard]] std::uint64_t get() const { return v_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::uint64_t> v_{0};
};

// Counters of one ring pair (or one NIC queue), written only by its owning worker.
struct alignas(64) RingStats {
    Counter rx_frames;  // delivered to the application (or received from the wire)
    Counter rx_bytes;
    Counter tx_frames;  // accepted from the application (or sent to the wire)
    Counter tx_bytes;
    Counter tx_super;      // super-segments from the application (or handed to the NIC's own GSO)
    Counter tx_segmented;  // super-segments the switch cut into frames itself
    std::array<Counter, kDropReasonCount> drops;
    std::array<Counter, ring::kRingFaultCount> faults;

    void drop(DropReason r, std::uint64_t n = 1) { drops[static_cast<std::size_t>(r)].add(n); }
};

struct StatsSnapshot;
// Carries counts on from a snapshot (a hand-over's): adds them to `s`.
void carry_on(RingStats& s, const StatsSnapshot& from);

// A plain copy of RingStats, summed over rings, for reports.
struct StatsSnapshot {
    std::uint64_t rx_frames = 0, rx_bytes = 0, tx_frames = 0, tx_bytes = 0, tx_super = 0, tx_segmented = 0;
    std::array<std::uint64_t, kDropReasonCount> drops{};
    std::array<std::uint64_t, ring::kRingFaultCount> faults{};

    void add(const RingStats& s);
    [[nodiscard]] std::uint64_t drop(DropReason r) const { return drops[static_cast<std::size_t>(r)]; }
    [[nodiscard]] std::uint64_t total_drops() const;
};

}  // namespace ms::sw
