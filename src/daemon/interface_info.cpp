#include "daemon/interface_info.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "nic/af_xdp_nic.hpp"

namespace ms::daemon {
namespace {

unsigned read_mtu(const std::string& name) {
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifreq req{};
    std::strncpy(req.ifr_name, name.c_str(), IFNAMSIZ - 1);
    const int rc = fd < 0 ? -1 : ::ioctl(fd, SIOCGIFMTU, &req);
    if (fd >= 0) ::close(fd);
    return rc == 0 ? static_cast<unsigned>(req.ifr_mtu) : 0;
}

std::uint8_t prefix_of(const sockaddr* mask) {
    if (!mask) return 0;
    const auto* bytes = mask->sa_family == AF_INET
                            ? reinterpret_cast<const std::uint8_t*>(&reinterpret_cast<const sockaddr_in*>(mask)->sin_addr)
                            : reinterpret_cast<const std::uint8_t*>(&reinterpret_cast<const sockaddr_in6*>(mask)->sin6_addr);
    const int n = mask->sa_family == AF_INET ? 4 : 16;
    int bits = 0;
    for (int i = 0; i < n; ++i) bits += std::popcount(bytes[i]);
    return static_cast<std::uint8_t>(bits);
}

std::vector<InterfaceAddress> read_addresses(const std::string& name) {
    std::vector<InterfaceAddress> out;
    ifaddrs* list = nullptr;
    if (::getifaddrs(&list) != 0) return out;
    for (ifaddrs* a = list; a; a = a->ifa_next) {
        if (!a->ifa_addr || name != a->ifa_name) continue;
        if (a->ifa_addr->sa_family == AF_INET) {
            const auto* sin = reinterpret_cast<const sockaddr_in*>(a->ifa_addr);
            out.push_back({wire::IpAddr::load_v4(reinterpret_cast<const std::uint8_t*>(&sin->sin_addr)), prefix_of(a->ifa_netmask)});
        } else if (a->ifa_addr->sa_family == AF_INET6) {
            const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(a->ifa_addr);
            out.push_back({wire::IpAddr::load_v6(sin6->sin6_addr.s6_addr), prefix_of(a->ifa_netmask)});
        }
    }
    ::freeifaddrs(list);
    return out;
}

// /proc/net/route: "Iface Destination Gateway ..." in hex, little-endian on x86.
std::optional<wire::IpAddr> read_gateway(const std::string& name) {
    std::ifstream routes("/proc/net/route");
    std::string line;
    std::getline(routes, line);  // header
    while (std::getline(routes, line)) {
        std::istringstream fields(line);
        std::string iface, dest, gw;
        fields >> iface >> dest >> gw;
        if (iface != name || dest != "00000000") continue;
        const std::uint32_t raw = static_cast<std::uint32_t>(std::stoul(gw, nullptr, 16));
        wire::IpAddr a;
        std::memcpy(a.bytes.data(), &raw, 4);
        return a;
    }
    return std::nullopt;
}

}  // namespace

InterfaceInfo read_interface(const std::string& name) {
    InterfaceInfo info;
    info.name = name;
    info.ifindex = ::if_nametoindex(name.c_str());
    if (info.ifindex == 0) throw std::runtime_error(name + ": no such interface");
    info.mac = nic::interface_mac(name);
    info.mtu = read_mtu(name);
    info.addresses = read_addresses(name);
    info.gateway = read_gateway(name);
    return info;
}

}  // namespace ms::daemon
