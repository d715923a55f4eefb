// Contract: which kernel sockets hold a local port, read from the kernel's socket table
// through NETLINK_SOCK_DIAG (inet_diag, the interface that ss(8) uses). The claim check
// uses it to learn whether the kernel has let another socket share a proof's tuple
// (SO_REUSEADDR or SO_REUSEPORT set for bind() and cleared afterwards): a proof must be
// the tuple's sole holder. Reads the calling thread's network namespace; every state,
// TIME_WAIT and pending connections included. Pure reads, no state kept.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "wire/bytes.hpp"

namespace ms::daemon {

struct KernelSocket {
    wire::IpAddr local;        // an IPv4-mapped IPv6 address reads as IPv4
    std::uint16_t port = 0;    // the local port
    bool v6only = true;        // an IPv6 socket bound to :: that takes IPv4 too has false
    std::uint64_t cookie = 0;  // SO_COOKIE
    std::uint32_t uid = 0;     // the socket's owner (sk_uid): whom the kernel lets share it with SO_REUSEPORT
};

// An IPv6 address as the claims name it: an IPv4-mapped one (::ffff:a.b.c.d) reads as IPv4.
[[nodiscard]] wire::IpAddr claimable_address_v6(const std::uint8_t* bytes);

// Every socket of `protocol` (IPPROTO_TCP or IPPROTO_UDP), of both families, whose local
// port is `port`. Nothing if the kernel's table cannot be read (no sock_diag support).
[[nodiscard]] std::optional<std::vector<KernelSocket>> sockets_on_port(std::uint8_t protocol, std::uint16_t port);

// Every TCP and UDP socket of the namespace, by protocol and local port: one read of the
// whole table, for checking many claims at once (the periodic audit).
class KernelPortIndex {
public:
    // Nothing if the kernel's table cannot be read.
    [[nodiscard]] static std::optional<KernelPortIndex> read();
    [[nodiscard]] std::span<const KernelSocket> on(std::uint8_t protocol, std::uint16_t port) const;

private:
    std::unordered_map<std::uint32_t, std::vector<KernelSocket>> by_port_;  // protocol << 16 | port
};

// Whether a socket bound to `local` receives traffic that a claim of `claimed` (an exact
// address or a wildcard) would take: the same family, or a dual-stack socket, and the
// same address or a wildcard on either side.
[[nodiscard]] bool overlaps(const KernelSocket& socket, const wire::IpAddr& claimed);

}  // namespace ms::daemon
