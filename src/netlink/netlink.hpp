// Contract: the kernel stays authoritative for addresses, routes and neighbours
// (docs/DESIGN.md §6); this reads them over rtnetlink (libmnl). It reads an interface's MAC,
// MTU, addresses and default gateway; finds the next hop for a destination (the
// gateway, or the destination itself when on-link); and resolves a next hop's MAC from
// the kernel's neighbour table. A missing entry is not resolved by us: the kernel is
// asked to resolve it (RTM_NEWNEIGH with NTF_USE) and the caller polls again. We never
// speak ARP or ND.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "wire/bytes.hpp"

struct mnl_socket;

namespace ms::netlink {

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
    std::optional<wire::IpAddr> gateway;  // IPv4 default route through this interface
};

enum class NeighbourState { reachable, pending, failed };

enum class NetlinkError : std::uint8_t {
    socket,        // the rtnetlink socket could not be opened or bound
    no_interface,  // no interface of that name
};

// The cause, and the message a user sees.
struct NetlinkFailure {
    NetlinkError error;
    std::string detail;
};

class Netlink {
public:
    [[nodiscard]] static base::Result<std::unique_ptr<Netlink>, NetlinkFailure> open();
    ~Netlink();
    Netlink(const Netlink&) = delete;
    Netlink& operator=(const Netlink&) = delete;

    // Fails (no_interface, the detail naming it) if the interface does not exist.
    [[nodiscard]] base::Result<InterfaceInfo, NetlinkFailure> read_interface(const std::string& name);
    // The next hop towards `dst` through `ifindex`: a gateway, or `dst` on-link.
    // Nothing if the kernel has no route, or routes it through another interface.
    [[nodiscard]] std::optional<wire::IpAddr> next_hop(const wire::IpAddr& dst, unsigned ifindex);
    // The neighbour's MAC if the kernel knows it; otherwise asks the kernel to resolve
    // it (NTF_USE) and says pending, or failed once the kernel gave up.
    [[nodiscard]] NeighbourState neighbour(const wire::IpAddr& next_hop, unsigned ifindex, wire::MacAddr& mac);

private:
    Netlink(mnl_socket* nl, unsigned port_id) : nl_(nl), port_id_(port_id) {}
    void read_link(InterfaceInfo& info);
    void read_addresses(InterfaceInfo& info);
    void read_gateway(InterfaceInfo& info);
    // Sends one request and feeds every reply message to `on_message`; false on error.
    template <class OnMessage>
    bool request(void* message, OnMessage on_message);

    mnl_socket* nl_ = nullptr;
    unsigned port_id_ = 0;
    unsigned seq_ = 0;
};

}  // namespace ms::netlink
