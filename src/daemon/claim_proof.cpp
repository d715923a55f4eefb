#include "daemon/claim_proof.hpp"

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

namespace ms::daemon {
namespace {

int socket_option(int fd, int option) {
    int value = -1;
    socklen_t len = sizeof value;
    if (::getsockopt(fd, SOL_SOCKET, option, &value, &len) != 0) return -1;
    return value;
}

bool is_v4_mapped(const in6_addr& a) {
    static constexpr std::uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return std::memcmp(a.s6_addr, prefix, 12) == 0;
}

}  // namespace

std::optional<sw::ClaimKey> prove_claim(int fd, std::string& why) {
    const int domain = socket_option(fd, SO_DOMAIN);
    const int type = socket_option(fd, SO_TYPE);
    const int protocol = socket_option(fd, SO_PROTOCOL);
    if (domain != AF_INET && domain != AF_INET6) {
        why = "not an IPv4 or IPv6 socket";
        return std::nullopt;
    }
    const bool tcp = type == SOCK_STREAM && protocol == IPPROTO_TCP;
    const bool udp = type == SOCK_DGRAM && protocol == IPPROTO_UDP;
    if (!tcp && !udp) {
        why = "not a TCP or UDP socket";
        return std::nullopt;
    }
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
        why = std::string("getsockname: ") + std::strerror(errno);
        return std::nullopt;
    }
    sw::ClaimKey key;
    key.protocol = static_cast<std::uint8_t>(protocol);
    if (ss.ss_family == AF_INET) {
        const auto* sin = reinterpret_cast<const sockaddr_in*>(&ss);
        key.addr = wire::IpAddr::load_v4(reinterpret_cast<const std::uint8_t*>(&sin->sin_addr));
        key.port = ntohs(sin->sin_port);
    } else {
        const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&ss);
        key.addr = is_v4_mapped(sin6->sin6_addr) ? wire::IpAddr::load_v4(sin6->sin6_addr.s6_addr + 12)
                                                 : wire::IpAddr::load_v6(sin6->sin6_addr.s6_addr);
        key.port = ntohs(sin6->sin6_port);
    }
    if (key.port == 0) {
        why = "the socket is not bound";
        return std::nullopt;
    }
    return key;
}

}  // namespace ms::daemon
