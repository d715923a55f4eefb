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

[[nodiscard]] sockaddr_in to_sockaddr(const wire::IpAddr& addr, std::uint16_t port);
[[nodiscard]] wire::IpAddr from_sockaddr(const sockaddr_in& sin);
[[nodiscard]] bool is_loopback(const sockaddr_in& a);
// "198.18.0.1:80".
[[nodiscard]] std::string describe(const sockaddr_in& sin);
// Copies `sin` out as accept() and getsockname() do: truncated to *len, which is then
// set to the full size. Nothing if either pointer is null.
void copy_out(const sockaddr_in& sin, sockaddr* addr, socklen_t* len);
// The AF_INET address a socket is bound to; nothing for another family or a failure.
[[nodiscard]] std::optional<sockaddr_in> bound_address(int fd);
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
