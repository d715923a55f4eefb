#include "posix/sockaddr.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

namespace ms::posix {

sockaddr_in to_sockaddr(const wire::IpAddr& addr, std::uint16_t port) {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    std::memcpy(&sin.sin_addr, addr.bytes.data(), 4);
    return sin;
}

wire::IpAddr from_sockaddr(const sockaddr_in& sin) {
    return wire::IpAddr::load_v4(reinterpret_cast<const std::uint8_t*>(&sin.sin_addr));
}

bool is_loopback(const sockaddr_in& a) { return (ntohl(a.sin_addr.s_addr) >> 24) == 127; }

std::string describe(const sockaddr_in& sin) {
    return from_sockaddr(sin).to_string() + ":" + std::to_string(ntohs(sin.sin_port));
}

void copy_out(const sockaddr_in& sin, sockaddr* addr, socklen_t* len) {
    if (!addr || !len) return;
    std::memcpy(addr, &sin, std::min<std::size_t>(*len, sizeof sin));
    *len = sizeof sin;
}

std::optional<sockaddr_in> bound_address(int fd) {
    sockaddr_in sin{};
    socklen_t len = sizeof sin;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len) != 0 || sin.sin_family != AF_INET) {
        return std::nullopt;
    }
    return sin;
}

std::size_t total_length(std::span<const iovec> iov) {
    std::size_t n = 0;
    for (const iovec& v : iov) n += v.iov_len;
    return n;
}

int move_descriptor_above(int fd, int floor) {
    if (fd < 0) return fd;
    const int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, floor);
    if (moved < 0) return fd;
    ::close(fd);
    return moved;
}

int timeout_ms(const timeval& t) {
    if (t.tv_sec == 0 && t.tv_usec == 0) return -1;
    const long long ms = static_cast<long long>(t.tv_sec) * 1000 + (t.tv_usec + 999) / 1000;
    return static_cast<int>(std::min<long long>(ms, INT32_MAX));
}

timeval to_timeval(int ms) {
    if (ms < 0) return {};
    return {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
}

int errno_for(client::Error e) {
    switch (e) {
        case client::Error::address_in_use: return EADDRINUSE;
        case client::Error::permission_denied: return EACCES;
        case client::Error::no_route:
        case client::Error::unreachable: return ENETUNREACH;
        case client::Error::limit_reached:
        case client::Error::switch_full: return ENOBUFS;
        case client::Error::switch_not_running: return ENETDOWN;
        default: return EADDRNOTAVAIL;
    }
}

int errno_for(utcp::ConnError e) {
    switch (e) {
        case utcp::ConnError::refused: return ECONNREFUSED;
        case utcp::ConnError::reset: return ECONNRESET;
        case utcp::ConnError::timed_out: return ETIMEDOUT;
        case utcp::ConnError::aborted: return ECONNABORTED;
        case utcp::ConnError::net_unreachable: return ENETUNREACH;
        case utcp::ConnError::host_unreachable: return EHOSTUNREACH;
        case utcp::ConnError::protocol_error: return EPROTO;
        case utcp::ConnError::none: return 0;
    }
    return ECONNRESET;
}

}  // namespace ms::posix
