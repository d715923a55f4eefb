// Contract: checks that a kernel socket proves a claim (docs/DESIGN.md §3) and reads the 3-tuple
// it proves. The socket is the proof that the kernel gave its owner that tuple on this
// interface, so it must be:
//   - a TCP or UDP socket of AF_INET or AF_INET6 (SO_DOMAIN, SO_TYPE, SO_PROTOCOL),
//     bound to a port (getsockname);
//   - in the interface's own network namespace (SO_NETNS_COOKIE), or a socket bound in
//     any namespace would take this interface's ports;
//   - not bound to another device (SO_BINDTOIFINDEX);
//   - bound to the wildcard or to an address of the interface that is unicast and not
//     loopback (IP_FREEBIND and IP_TRANSPARENT let a socket bind any address);
//   - without SO_REUSEADDR, which would let any user's kernel socket with the same flag
//     bind the same port later (for TCP, while neither listens) and lose its traffic to
//     the claim;
//   - the tuple's sole holder in the kernel (kernel_sockets.hpp): reuse flags set for
//     bind() and cleared afterwards leave no trace on the socket, but the socket that
//     shares the tuple is in the kernel's table. A socket with SO_REUSEPORT is the
//     exception the kernel itself makes: it shares its port only with SO_REUSEPORT
//     sockets of the same owner (sk_uid), so such a proof may share the tuple with sockets
//     of its own uid, and proves a claim that those sockets' holders may join as a group
//     (docs/DESIGN.md §3, §4.2);
//   - neither connected nor listening, so that the daemon's close can never block or
//     take a live connection down.
// An IPv4-mapped IPv6 address is read as IPv4. A dual-stack socket (AF_INET6 bound to
// the wildcard with IPV6_V6ONLY off) holds the port for IPv4 too, so it proves the IPv4
// wildcard as well (ProvenTuple::ipv4_twin); with IPV6_V6ONLY on it proves IPv6 alone,
// as the kernel would deliver. The checks are pure reads. The owner keeps its copy of
// the socket and may change it afterwards, so proof_still_holds() checks every property
// that the owner can change again, for the claim's whole life: the bound address and
// port (connect() narrows a wildcard), the device binding, the reuse flags, the
// connected and listening states, and the sole holding. The namespace, the kind and
// IPV6_V6ONLY cannot change once the socket is bound.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "daemon/kernel_sockets.hpp"
#include "sw/registry.hpp"

namespace ms::daemon {

enum class ProofError {
    not_inet,           // not AF_INET or AF_INET6
    not_tcp_or_udp,
    unreadable,         // a getsockopt or getsockname failed
    not_bound,
    foreign_namespace,  // SO_NETNS_COOKIE differs from the interface's namespace
    bound_to_device,    // SO_BINDTOIFINDEX names another interface
    address_not_local,  // not the interface's address, or loopback, multicast, broadcast
    reusable,           // SO_REUSEADDR set
    connected,
    listening,
    shared,             // another kernel socket holds the tuple too (bound with SO_REUSEADDR, or another
                        // user's, or beside a proof without SO_REUSEPORT)
    changed,            // the bound address or port is no longer what was claimed
    kernel_unreadable,  // the kernel's socket table (sock_diag) cannot be read
};
[[nodiscard]] std::string_view to_string(ProofError e);

// What a proof is checked against: the interface and its namespace.
struct ProofScope {
    std::uint64_t netns_cookie = 0;  // of the daemon's (the interface's) network namespace
    unsigned ifindex = 0;
    std::vector<wire::IpAddr> addresses;  // the interface's own
};

// The network namespace cookie of the calling thread's namespace; 0 if the kernel
// cannot tell (before Linux 5.14), in which case no proof is accepted.
[[nodiscard]] std::uint64_t own_netns_cookie();

// What a proof proved: the tuple, a dual-stack socket's IPv4 wildcard held with it, the
// socket's identity (SO_COOKIE), and whether the kernel lets the socket's owner share the
// tuple (SO_REUSEPORT, with the owner's uid).
struct ProvenTuple {
    sw::ClaimKey key;
    std::optional<sw::ClaimKey> ipv4_twin;
    std::uint64_t cookie = 0;
    bool reuse_port = false;
    std::uint32_t owner_uid = 0;  // the socket's sk_uid, from the kernel's table
};

// The tuple `fd` proves (with a dual-stack socket's IPv4 wildcard), or why it proves none.
[[nodiscard]] base::Result<ProvenTuple, ProofError> prove_claim(int fd, const ProofScope& scope);

// Re-checks, for a claim's life, what the socket's owner can change with its own copy
// (see the contract above); `kernel` is a recent read of the kernel's socket table, or
// null if it could not be read this time (the sole holding is then checked next time).
// Done if the proof still holds; else what broke it.
[[nodiscard]] base::Result<base::Done, ProofError> proof_still_holds(int fd, const ProvenTuple& proven,
                                                                     const ProofScope& scope, const KernelPortIndex* kernel);

// Makes the daemon's close of a proof return at once, whatever the owner did to the
// socket since (SO_LINGER with a long timeout on a connected socket would block it).
void never_linger(int fd);

}  // namespace ms::daemon
