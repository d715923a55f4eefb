#include "posix/sockaddr.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>

namespace ms::posix {

namespace {

// ::ffff:a.b.c.d
bool is_v4_mapped(const in6_addr& a) {
    static constexpr std::uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return std::memcmp(a.s6_addr, prefix, sizeof prefix) == 0;
}

}  // namespace

std::optional<Endpoint> endpoint_of(const sockaddr* sa, socklen_t len) {
    if (!sa || len < static_cast<socklen_t>(sizeof(sa_family_t))) return std::nullopt;
    if (sa->sa_family == AF_INET && len >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
        sockaddr_in sin;
        std::memcpy(&sin, sa, sizeof sin);
        return Endpoint{wire::IpAddr::load_v4(reinterpret_cast<const std::uint8_t*>(&sin.sin_addr)), ntohs(sin.sin_port)};
    }
    if (sa->sa_family == AF_INET6 && len >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
        sockaddr_in6 sin6;
        std::memcpy(&sin6, sa, sizeof sin6);
        const auto* bytes = sin6.sin6_addr.s6_addr;
        const wire::IpAddr addr = is_v4_mapped(sin6.sin6_addr) ? wire::IpAddr::load_v4(bytes + 12)
                                                               : wire::IpAddr::load_v6(bytes);
        return Endpoint{addr, ntohs(sin6.sin6_port)};
    }
    return std::nullopt;
}

SockaddrBuffer to_sockaddr(const Endpoint& e, int family) {
    SockaddrBuffer out;
    if (family == AF_INET6) {
        sockaddr_in6 sin6{};
        sin6.sin6_family = AF_INET6;
        sin6.sin6_port = htons(e.port);
        if (e.addr.family == wire::IpFamily::v6) {
            std::memcpy(sin6.sin6_addr.s6_addr, e.addr.bytes.data(), 16);
        } else if (!e.addr.is_any()) {  // the IPv4 wildcard is the IPv6 one
            sin6.sin6_addr.s6_addr[10] = sin6.sin6_addr.s6_addr[11] = 0xff;
            std::memcpy(sin6.sin6_addr.s6_addr + 12, e.addr.bytes.data(), 4);
        }
        std::memcpy(&out.storage, &sin6, sizeof sin6);
        out.length = sizeof sin6;
    } else {
        sockaddr_in sin{};
        sin.sin_family = AF_INET;
        sin.sin_port = htons(e.port);
        std::memcpy(&sin.sin_addr, e.addr.bytes.data(), 4);
        std::memcpy(&out.storage, &sin, sizeof sin);
        out.length = sizeof sin;
    }
    return out;
}

bool is_loopback(const Endpoint& e) {
    if (e.addr.family == wire::IpFamily::v4) return e.addr.bytes[0] == 127;
    static constexpr std::array<std::uint8_t, 16> one = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    return e.addr.bytes == one;
}

std::string describe(const Endpoint& e) { return wire::endpoint_to_string(e.addr, e.port); }

void copy_out(const Endpoint& e, int family, sockaddr* addr, socklen_t* len) {
    if (!addr || !len) return;
    const SockaddrBuffer out = to_sockaddr(e, family);
    std::memcpy(addr, &out.storage, std::min<std::size_t>(*len, out.length));
    *len = out.length;
}

std::optional<Endpoint> bound_address(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return std::nullopt;
    return endpoint_of(reinterpret_cast<const sockaddr*>(&ss), len);
}

int socket_family(int fd) {
    int domain = 0;
    socklen_t len = sizeof domain;
    return ::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 ? domain : 0;
}

int family_error(int fd, wire::IpFamily family) {
    const int kind = socket_family(fd);
    if (kind != AF_INET6) return kind == AF_INET && family == wire::IpFamily::v4 ? 0 : EAFNOSUPPORT;
    if (const auto bound = bound_address(fd); bound && !bound->addr.is_any()) {
        return bound->addr.family == family ? 0 : ENETUNREACH;
    }
    if (family == wire::IpFamily::v6) return 0;
    int v6only = 0;
    socklen_t len = sizeof v6only;
    return ::getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &len) == 0 && v6only == 0 ? 0 : ENETUNREACH;
}

bool unplaced_tcp_socket(int fd) {
    const int family = socket_family(fd);
    if (family != AF_INET && family != AF_INET6) return false;
    int type = 0, listening = 1;
    socklen_t len = sizeof type;
    if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) return false;
    len = sizeof listening;
    if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || listening) return false;
    sockaddr_storage peer{};
    len = sizeof peer;
    return ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0 && errno == ENOTCONN;
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
