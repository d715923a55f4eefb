// Contract: the layouts that the XDP claim program (bpf/claim.bpf.c) shares with the
// daemon through its maps, field for field. A change here is a change of the program's
// ABI: the daemon record's version says which one a map holds (left_behind.hpp).
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <cstring>

#include "sw/registry.hpp"

namespace ms::nic {

// struct claim_key: a claimed 3-tuple, the port in network order.
struct BpfClaimKey {
    std::uint8_t protocol;
    std::uint8_t family;
    std::uint16_t port_be;
    std::uint8_t addr[16];
};
static_assert(sizeof(BpfClaimKey) == 20);

// struct local_key: one of the interface's addresses.
struct BpfLocalKey {
    std::uint8_t family;
    std::uint8_t pad[3];
    std::uint8_t addr[16];
};
static_assert(sizeof(BpfLocalKey) == 20);

// struct daemon_record: what a daemon leaves for the next one on its interface.
struct DaemonRecord {
    static constexpr std::uint32_t kVersion = 1;
    static constexpr std::uint32_t kLeftForRestart = 1;  // flags: the daemon left on purpose (an upgrade)
    std::uint32_t version = 0;
    std::uint32_t flags = 0;
    std::uint64_t heartbeat_ns = 0;     // CLOCK_MONOTONIC of the daemon's last beat
    std::uint64_t outage_limit_ns = 0;  // how long its claims outlive that beat
    std::uint64_t first_start_s = 0;    // CLOCK_REALTIME seconds of the first daemon's start
    std::uint32_t restarts = 0;         // daemons that took over from one that died
    std::uint32_t upgrades = 0;         // daemons that took over from one that left on purpose
};
static_assert(sizeof(DaemonRecord) == 40);

// The ms_stats slots.
enum class XdpStat : std::uint32_t { claimed = 0, passed = 1, held = 2 };
inline constexpr std::size_t kXdpStats = 3;

// One counter of a per-CPU ms_stats map, summed over the CPUs; 0 if it cannot be read.
std::uint64_t read_xdp_stat(int stats_fd, XdpStat which);

// The ms_ports index of a claim's (protocol, port).
inline std::uint32_t port_index(const sw::ClaimKey& c) { return (c.protocol == IPPROTO_UDP ? 65536u : 0u) + c.port; }

inline BpfClaimKey to_bpf(const sw::ClaimKey& c) {
    BpfClaimKey k{};
    k.protocol = c.protocol;
    k.family = static_cast<std::uint8_t>(c.addr.family);
    k.port_be = wire::swap_be16(c.port);
    std::memcpy(k.addr, c.addr.bytes.data(), 16);
    return k;
}

inline sw::ClaimKey from_bpf(const BpfClaimKey& k) {
    sw::ClaimKey c;
    c.protocol = k.protocol;
    c.addr.family = k.family == 6 ? wire::IpFamily::v6 : wire::IpFamily::v4;
    std::memcpy(c.addr.bytes.data(), k.addr, 16);
    c.port = wire::swap_be16(k.port_be);
    return c;
}

// CLOCK_MONOTONIC in nanoseconds: the clock of bpf_ktime_get_ns().
std::uint64_t monotonic_ns();

}  // namespace ms::nic
