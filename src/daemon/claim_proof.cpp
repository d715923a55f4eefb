#include "daemon/claim_proof.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace ms::daemon {
namespace {

// Nothing if the option cannot be read.
std::optional<int> int_option(int fd, int option) {
    int value = 0;
    socklen_t len = sizeof value;
    if (::getsockopt(fd, SOL_SOCKET, option, &value, &len) != 0) return std::nullopt;
    return value;
}

std::optional<std::uint64_t> netns_cookie(int fd) {
    std::uint64_t cookie = 0;
    socklen_t len = sizeof cookie;
    if (::getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len) != 0) return std::nullopt;
    return cookie;
}

// The bound address and port, or nothing.
std::optional<sw::ClaimKey> bound_tuple(int fd, std::uint8_t protocol) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return std::nullopt;
    sw::ClaimKey key;
    key.protocol = protocol;
    if (ss.ss_family == AF_INET) {
        const auto* sin = reinterpret_cast<const sockaddr_in*>(&ss);
        key.addr = wire::IpAddr::load_v4(reinterpret_cast<const std::uint8_t*>(&sin->sin_addr));
        key.port = ntohs(sin->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&ss);
        key.addr = claimable_address_v6(sin6->sin6_addr.s6_addr);
        key.port = ntohs(sin6->sin6_port);
    } else {
        return std::nullopt;
    }
    return key;
}

bool is_loopback_multicast_or_broadcast(const wire::IpAddr& a) {
    if (a.family == wire::IpFamily::v4) {
        return a.bytes[0] == 127 || (a.bytes[0] & 0xf0) == 0xe0 ||
               (a.bytes[0] == 255 && a.bytes[1] == 255 && a.bytes[2] == 255 && a.bytes[3] == 255);
    }
    static constexpr std::uint8_t loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    return a.bytes[0] == 0xff || std::memcmp(a.bytes.data(), loopback, 16) == 0;
}

// Defends against spoofing (IP_FREEBIND, IP_TRANSPARENT) and against taking traffic
// that belongs to the kernel (loopback, multicast, broadcast).
bool address_may_be_claimed(const wire::IpAddr& a, const ProofScope& scope) {
    if (a == wire::IpAddr::any(a.family)) return true;
    if (is_loopback_multicast_or_broadcast(a)) return false;
    return std::find(scope.addresses.begin(), scope.addresses.end(), a) != scope.addresses.end();
}

using Check = base::Result<base::Done, ProofError>;

// The socket's kind: the protocol it proves, or the reason it proves nothing.
base::Result<std::uint8_t, ProofError> check_kind(int fd) {
    const auto domain = int_option(fd, SO_DOMAIN);
    const auto type = int_option(fd, SO_TYPE);
    const auto proto = int_option(fd, SO_PROTOCOL);
    if (!domain || !type || !proto) return ProofError::unreadable;
    if (*domain != AF_INET && *domain != AF_INET6) return ProofError::not_inet;
    const bool tcp = *type == SOCK_STREAM && *proto == IPPROTO_TCP;
    const bool udp = *type == SOCK_DGRAM && *proto == IPPROTO_UDP;
    if (!tcp && !udp) return ProofError::not_tcp_or_udp;
    return static_cast<std::uint8_t>(*proto);
}

// Where the socket lives: the interface's namespace.
Check check_namespace(int fd, const ProofScope& scope) {
    const auto cookie = netns_cookie(fd);
    if (!cookie || scope.netns_cookie == 0) return ProofError::unreadable;
    if (*cookie != scope.netns_cookie) return ProofError::foreign_namespace;
    return base::Done{};
}

std::optional<std::uint64_t> socket_cookie(int fd) {
    std::uint64_t cookie = 0;
    socklen_t len = sizeof cookie;
    if (::getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len) != 0) return std::nullopt;
    return cookie;
}

Check check_reuse_flags(int fd) {
    const auto reuse_addr = int_option(fd, SO_REUSEADDR);
    if (!reuse_addr) return ProofError::unreadable;
    if (*reuse_addr) return ProofError::reusable;
    return base::Done{};
}

// What could let the kernel share the port, or make closing the socket block.
Check check_state(int fd) {
    if (auto reuse = check_reuse_flags(fd); !reuse) return reuse;
    const auto listening = int_option(fd, SO_ACCEPTCONN);
    if (!listening) return ProofError::unreadable;
    if (*listening) return ProofError::listening;
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) == 0) return ProofError::connected;
    return base::Done{};
}

// Whether another kernel socket than the proof (`cookie`) receives traffic of the tuple,
// beside those the kernel lets share it with an SO_REUSEPORT proof (its owner's).
bool shared(std::span<const KernelSocket> holders, const ProvenTuple& p) {
    return std::any_of(holders.begin(), holders.end(), [&](const KernelSocket& k) {
        if (k.cookie == p.cookie || (p.reuse_port && k.uid == p.owner_uid)) return false;
        return overlaps(k, p.key.addr) || (p.ipv4_twin && overlaps(k, p.ipv4_twin->addr));
    });
}

// The proof's owner as the kernel's table names it (SO_REUSEPORT shares within one uid).
std::optional<std::uint32_t> owner_uid(std::span<const KernelSocket> holders, std::uint64_t cookie) {
    for (const KernelSocket& k : holders) {
        if (k.cookie == cookie) return k.uid;
    }
    return std::nullopt;
}

// The IPv4 wildcard a dual-stack socket holds beside `key` (IPv6 wildcard, IPV6_V6ONLY off).
std::optional<sw::ClaimKey> ipv4_twin_of(int fd, const sw::ClaimKey& key) {
    if (key.addr != wire::IpAddr::any(wire::IpFamily::v6)) return std::nullopt;
    int v6only = 1;
    socklen_t len = sizeof v6only;
    if (::getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &len) != 0 || v6only) return std::nullopt;
    return sw::ClaimKey{key.protocol, wire::IpAddr::any(wire::IpFamily::v4), key.port};
}

// The tuple the socket is bound to now, if it may be claimed: the checks an owner's
// later changes can break (the socket's kind and namespace cannot change).
base::Result<sw::ClaimKey, ProofError> check_binding(int fd, std::uint8_t protocol, const ProofScope& scope) {
    const auto device = int_option(fd, SO_BINDTOIFINDEX);
    if (!device) return ProofError::unreadable;
    if (*device != 0 && static_cast<unsigned>(*device) != scope.ifindex) return ProofError::bound_to_device;
    const auto key = bound_tuple(fd, protocol);
    if (!key) return ProofError::unreadable;
    if (key->port == 0) return ProofError::not_bound;
    if (!address_may_be_claimed(key->addr, scope)) return ProofError::address_not_local;
    if (auto state = check_state(fd); !state) return state.error();
    return *key;
}

}  // namespace

std::string_view to_string(ProofError e) {
    switch (e) {
        case ProofError::not_inet: return "not an IPv4 or IPv6 socket";
        case ProofError::not_tcp_or_udp: return "not a TCP or UDP socket";
        case ProofError::unreadable: return "the socket's options cannot be read";
        case ProofError::not_bound: return "the socket is not bound";
        case ProofError::foreign_namespace: return "the socket lives in another network namespace";
        case ProofError::bound_to_device: return "the socket is bound to another device";
        case ProofError::address_not_local: return "the address is not the interface's own unicast address";
        case ProofError::reusable: return "the socket has SO_REUSEADDR";
        case ProofError::connected: return "the socket is connected";
        case ProofError::listening: return "the socket is listening";
        case ProofError::shared:
            return "another kernel socket holds the same address and port (of another user, or beside a proof "
                   "without SO_REUSEPORT)";
        case ProofError::changed: return "the socket's bound address or port changed";
        case ProofError::kernel_unreadable: return "the kernel's socket table cannot be read (sock_diag)";
    }
    return "unknown";
}

std::uint64_t own_netns_cookie() {
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    const auto cookie = netns_cookie(fd);
    ::close(fd);
    return cookie.value_or(0);
}

base::Result<ProvenTuple, ProofError> prove_claim(int fd, const ProofScope& scope) {
    const auto protocol = check_kind(fd);
    if (!protocol) return protocol.error();
    if (auto here = check_namespace(fd, scope); !here) return here.error();
    const auto bound = check_binding(fd, *protocol, scope);
    if (!bound) return bound.error();
    const auto cookie = socket_cookie(fd);
    if (!cookie) return ProofError::unreadable;
    const auto reuse_port = int_option(fd, SO_REUSEPORT);
    if (!reuse_port) return ProofError::unreadable;
    ProvenTuple proven{*bound, ipv4_twin_of(fd, *bound), *cookie, *reuse_port != 0, 0};
    const auto holders = sockets_on_port(*protocol, proven.key.port);
    if (!holders) return ProofError::kernel_unreadable;
    const auto uid = owner_uid(*holders, proven.cookie);
    if (!uid) return ProofError::kernel_unreadable;  // the proof itself must be in the table
    proven.owner_uid = *uid;
    if (shared(*holders, proven)) return ProofError::shared;
    return proven;
}

base::Result<base::Done, ProofError> proof_still_holds(int fd, const ProvenTuple& proven, const ProofScope& scope,
                                                       const KernelPortIndex* kernel) {
    const auto bound = check_binding(fd, proven.key.protocol, scope);
    if (!bound) return bound.error();
    if (*bound != proven.key) return ProofError::changed;
    // A proof that had no SO_REUSEPORT at the claim is judged so for life: setting it later
    // lets no one share.
    if (kernel && shared(kernel->on(proven.key.protocol, proven.key.port), proven)) return ProofError::shared;
    return base::Done{};
}

void never_linger(int fd) {
    const linger off{0, 0};
    (void)::setsockopt(fd, SOL_SOCKET, SO_LINGER, &off, sizeof off);
}

}  // namespace ms::daemon
