// Contract: small conversions the POSIX layer shares: socket addresses to and from the
// stack's, errno values for the stack's and the client library's reasons, and facts
// read from a descriptor.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>

#include <optional>
#include <span>
#include <string>

#include "client/multistack.hpp"
#include "utcp/connection.hpp"

namespace ms::posix {

// An IPv4 or IPv6 address and a port (host order): a socket's name as the POSIX layer
// keeps it. An IPv4-mapped IPv6 address is kept as IPv4; names go back out in the
// socket's family (sockaddr_in, or sockaddr_in6 with IPv4 mapped), as Linux writes them.
struct Endpoint {
    wire::IpAddr addr;
    std::uint16_t port = 0;
    friend bool operator==(const Endpoint& a, const Endpoint& b) { return a.addr == b.addr && a.port == b.port; }
};

// A socket address, as a call takes one.
struct SockaddrBuffer {
    sockaddr_storage storage{};
    socklen_t length = 0;
    [[nodiscard]] const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
};

// The endpoint of a sockaddr_in or sockaddr_in6 of at least its size; nothing otherwise.
[[nodiscard]] std::optional<Endpoint> endpoint_of(const sockaddr* sa, socklen_t len);
// `e` as `family` (AF_INET or AF_INET6) writes it.
[[nodiscard]] SockaddrBuffer to_sockaddr(const Endpoint& e, int family);
[[nodiscard]] bool is_loopback(const Endpoint& e);
// "198.18.0.1:80", "[2001:2::1]:80".
[[nodiscard]] std::string describe(const Endpoint& e);
// Copies `e` out as accept() and getsockname() do, in `family`: truncated to *len, which
// is then set to the full size. Nothing if either pointer is null.
void copy_out(const Endpoint& e, int family, sockaddr* addr, socklen_t* len);
// What an AF_INET or AF_INET6 socket is bound to; nothing for another family or a failure.
[[nodiscard]] std::optional<Endpoint> bound_address(int fd);
// SO_DOMAIN: AF_INET, AF_INET6, ...; 0 if it cannot be read.
[[nodiscard]] int socket_family(int fd);
// What socket `fd` gives for a send to an address of `family`, as Linux: 0 if it may; an
// AF_INET socket reaches IPv4 only (EAFNOSUPPORT); an AF_INET6 one IPv6, and IPv4
// (v4-mapped) unless IPV6_V6ONLY is set or it is bound to a specific IPv6 address; one
// bound to a specific address, that address's family only (ENETUNREACH).
[[nodiscard]] int family_error(int fd, wire::IpFamily family);
// A TCP socket of AF_INET or AF_INET6, neither listening nor connected: what the number
// of a UTCP listener that another process handed over (exec, SCM_RIGHTS) names.
[[nodiscard]] bool unplaced_tcp_socket(int fd);
[[nodiscard]] std::size_t total_length(std::span<const iovec> iov);
// `fd` moved to the lowest free number at or above `floor`, close-on-exec; `fd` itself
// if there is no room up there (or `fd` is negative).
[[nodiscard]] int move_descriptor_above(int fd, int floor);

// SO_RCVTIMEO and SO_SNDTIMEO: milliseconds (-1: none, as a zero timeval says) and back.
[[nodiscard]] int timeout_ms(const timeval& t);
[[nodiscard]] timeval to_timeval(int ms);

[[nodiscard]] int errno_for(client::Error e);
[[nodiscard]] int errno_for(utcp::ConnError e);

}  // namespace ms::posix
