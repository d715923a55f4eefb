// Contract: what the daemon tells applications about its interface: MAC, MTU, index,
// the IPv4 and IPv6 addresses configured on it, and its IPv4 default gateway. Read from
// the kernel at start-up with getifaddrs, ioctl and /proc/net/route.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "wire/bytes.hpp"

namespace ms::daemon {

struct InterfaceAddress {
    wire::IpAddr addr;
    std::uint8_t prefix_length = 0;
};

struct InterfaceInfo {
    std::string name;
    unsigned ifindex = 0;
    wire::MacAddr mac;
    unsigned mtu = 0;
    std::vector<InterfaceAddress> addresses;
    std::optional<wire::IpAddr> gateway;
};

// Throws std::runtime_error if the interface does not exist.
[[nodiscard]] InterfaceInfo read_interface(const std::string& name);

}  // namespace ms::daemon
