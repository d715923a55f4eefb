// Contract: checks that a kernel socket proves a claim (DESIGN §3) and reads the 3-tuple
// it proves. The socket is the proof that the kernel gave its owner that tuple on this
// interface, so it must be:
//   - a TCP or UDP socket of AF_INET or AF_INET6 (SO_DOMAIN, SO_TYPE, SO_PROTOCOL),
//     bound to a port (getsockname);
//   - in the interface's own network namespace (SO_NETNS_COOKIE), or a socket bound in
//     any namespace would take this interface's ports;
//   - not bound to another device (SO_BINDTOIFINDEX);
//   - bound to the wildcard or to an address of the interface that is unicast and not
//     loopback (IP_FREEBIND and IP_TRANSPARENT let a socket bind any address);
//   - without SO_REUSEADDR or SO_REUSEPORT, which would let a kernel application bind
//     the same port later and lose its traffic to the claim;
//   - neither connected nor listening, so that the daemon's close can never block or
//     take a live connection down.
// An IPv4-mapped IPv6 address is read as IPv4. A dual-stack socket (AF_INET6 bound to
// the wildcard with IPV6_V6ONLY off) holds the port for IPv4 too, so it proves the IPv4
// wildcard as well (ProofResult::ipv4_twin); with IPV6_V6ONLY on it proves IPv6 alone,
// as the kernel would deliver. The checks are pure reads: the owner
// keeps its copy of the socket, so proof_still_holds() re-checks what the owner could
// change afterwards.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "switch/registry.hpp"

namespace ms::daemon {

enum class ProofError {
    not_inet,           // not AF_INET or AF_INET6
    not_tcp_or_udp,
    unreadable,         // a getsockopt or getsockname failed
    not_bound,
    foreign_namespace,  // SO_NETNS_COOKIE differs from the interface's namespace
    bound_to_device,    // SO_BINDTOIFINDEX names another interface
    address_not_local,  // not the interface's address, or loopback, multicast, broadcast
    reusable,           // SO_REUSEADDR or SO_REUSEPORT set
    connected,
    listening,
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

class [[nodiscard]] ProofResult {
public:
    ProofResult(sw::ClaimKey key) : key_(key), ok_(true) {}   // NOLINT: implicit by design
    ProofResult(sw::ClaimKey key, std::optional<sw::ClaimKey> twin) : key_(key), twin_(twin), ok_(true) {}
    ProofResult(ProofError error) : error_(error) {}          // NOLINT: implicit by design
    [[nodiscard]] bool ok() const { return ok_; }
    [[nodiscard]] const sw::ClaimKey& key() const { return key_; }
    [[nodiscard]] ProofError error() const { return error_; }
    // A dual-stack socket's IPv4 wildcard, which the same proof holds.
    [[nodiscard]] const std::optional<sw::ClaimKey>& ipv4_twin() const { return twin_; }

private:
    sw::ClaimKey key_;
    std::optional<sw::ClaimKey> twin_;
    ProofError error_ = ProofError::not_inet;
    bool ok_ = false;
};

[[nodiscard]] ProofResult prove_claim(int fd, const ProofScope& scope);

// Re-checks what the socket's owner can change after the claim with its own copy
// (SO_REUSEADDR, SO_REUSEPORT); nothing if the proof still holds.
[[nodiscard]] std::optional<ProofError> proof_still_holds(int fd);

// Whether two descriptors name one socket (SO_COOKIE): whoever holds a claim's proof
// socket (its claimer, or a process it gave the socket to, by fork or SCM_RIGHTS) may
// take the claim over to its own port.
[[nodiscard]] bool same_socket(int a, int b);

// Makes the daemon's close of a proof return at once, whatever the owner did to the
// socket since (SO_LINGER with a long timeout on a connected socket would block it).
void never_linger(int fd);

}  // namespace ms::daemon
