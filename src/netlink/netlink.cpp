#include "netlink/netlink.hpp"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <net/if.h>

#include <cerrno>
#include <cstring>

namespace ms::netlink {
namespace {

int family_of(const wire::IpAddr& a) { return a.family == wire::IpFamily::v4 ? AF_INET : AF_INET6; }

wire::IpAddr address_from(int family, const void* data) {
    return family == AF_INET ? wire::IpAddr::load_v4(static_cast<const std::uint8_t*>(data))
                             : wire::IpAddr::load_v6(static_cast<const std::uint8_t*>(data));
}

nlmsghdr* start(char* buf, std::uint16_t type, std::uint16_t flags, unsigned seq) {
    nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = type;
    nlh->nlmsg_flags = NLM_F_REQUEST | flags;
    nlh->nlmsg_seq = seq;
    return nlh;
}

template <class F>
int trampoline(const nlmsghdr* nlh, void* data) {
    return (*static_cast<F*>(data))(nlh);
}

// libmnl's mnl_attr_for_each is a C macro that C++ rejects; this is the same walk.
template <class F>
void for_each_attr(const nlmsghdr* m, std::size_t offset, F f) {
    const auto* a = static_cast<const nlattr*>(mnl_nlmsg_get_payload_offset(m, offset));
    const auto* tail = static_cast<const char*>(mnl_nlmsg_get_payload_tail(m));
    while (mnl_attr_ok(a, static_cast<int>(tail - reinterpret_cast<const char*>(a)))) {
        f(a);
        a = mnl_attr_next(a);
    }
}

struct RouteAttrs {
    std::optional<wire::IpAddr> gateway;
    unsigned oif = 0;
};

RouteAttrs route_attrs(const nlmsghdr* m, int family) {
    RouteAttrs r;
    for_each_attr(m, sizeof(rtmsg), [&](const nlattr* attr) {
        if (mnl_attr_get_type(attr) == RTA_GATEWAY) r.gateway = address_from(family, mnl_attr_get_payload(attr));
        if (mnl_attr_get_type(attr) == RTA_OIF) r.oif = mnl_attr_get_u32(attr);
    });
    return r;
}

// libmnl suggests the larger of the page size and 8 KiB; 8 KiB holds any reply here.
constexpr std::size_t kBufferSize = 8192;

}  // namespace

base::Result<std::unique_ptr<Netlink>, NetlinkFailure> Netlink::open() {
    mnl_socket* nl = mnl_socket_open(NETLINK_ROUTE);
    if (!nl || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
        const int err = errno;
        if (nl) mnl_socket_close(nl);
        return NetlinkFailure{NetlinkError::socket, std::string("rtnetlink: ") + std::strerror(err)};
    }
    return std::unique_ptr<Netlink>(new Netlink(nl, mnl_socket_get_portid(nl)));
}

Netlink::~Netlink() {
    if (nl_) mnl_socket_close(nl_);
}

template <class OnMessage>
bool Netlink::request(void* message, OnMessage on_message) {
    auto* nlh = static_cast<nlmsghdr*>(message);
    // A dump ends with NLMSG_DONE; anything else is made to end with an ACK, so that we
    // read every message the request caused and none is left for the next one.
    if (!(nlh->nlmsg_flags & NLM_F_DUMP)) nlh->nlmsg_flags |= NLM_F_ACK;
    if (mnl_socket_sendto(nl_, nlh, nlh->nlmsg_len) < 0) return false;
    char buf[kBufferSize];
    for (;;) {
        const ssize_t n = mnl_socket_recvfrom(nl_, buf, sizeof buf);
        if (n < 0) return false;
        const int rc = mnl_cb_run(buf, static_cast<size_t>(n), nlh->nlmsg_seq, port_id_, trampoline<OnMessage>, &on_message);
        if (rc <= MNL_CB_STOP) return rc == MNL_CB_STOP;
    }
}

base::Result<InterfaceInfo, NetlinkFailure> Netlink::read_interface(const std::string& name) {
    InterfaceInfo info;
    info.name = name;
    info.ifindex = ::if_nametoindex(name.c_str());
    if (info.ifindex == 0) return NetlinkFailure{NetlinkError::no_interface, name + ": no such interface"};
    read_link(info);
    read_addresses(info);
    read_gateway(info);
    return info;
}

void Netlink::read_link(InterfaceInfo& info) {
    char buf[kBufferSize];
    nlmsghdr* nlh = start(buf, RTM_GETLINK, 0, ++seq_);
    auto* ifm = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
    ifm->ifi_index = static_cast<int>(info.ifindex);
    request(nlh, [&](const nlmsghdr* m) {
        for_each_attr(m, sizeof(ifinfomsg), [&](const nlattr* a) {
            if (mnl_attr_get_type(a) == IFLA_ADDRESS && mnl_attr_get_payload_len(a) == 6) {
                std::memcpy(info.mac.octets.data(), mnl_attr_get_payload(a), 6);
            } else if (mnl_attr_get_type(a) == IFLA_MTU) {
                info.mtu = mnl_attr_get_u32(a);
            }
        });
        return MNL_CB_OK;
    });
}

void Netlink::read_addresses(InterfaceInfo& info) {
    char buf[kBufferSize];
    nlmsghdr* nlh = start(buf, RTM_GETADDR, NLM_F_DUMP, ++seq_);
    auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
    ifa->ifa_family = AF_UNSPEC;
    request(nlh, [&](const nlmsghdr* m) {
        const auto* a = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(m));
        if (a->ifa_index != info.ifindex) return MNL_CB_OK;
        for_each_attr(m, sizeof(ifaddrmsg), [&](const nlattr* attr) {
            if (mnl_attr_get_type(attr) == IFA_ADDRESS) {
                info.addresses.push_back({address_from(a->ifa_family, mnl_attr_get_payload(attr)), a->ifa_prefixlen});
            }
        });
        return MNL_CB_OK;
    });
}

void Netlink::read_gateway(InterfaceInfo& info) {
    char buf[kBufferSize];
    nlmsghdr* nlh = start(buf, RTM_GETROUTE, NLM_F_DUMP, ++seq_);
    auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
    rtm->rtm_family = AF_INET;
    request(nlh, [&](const nlmsghdr* m) {
        const auto* r = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(m));
        if (r->rtm_dst_len != 0 || r->rtm_table != RT_TABLE_MAIN) return MNL_CB_OK;
        const RouteAttrs route = route_attrs(m, AF_INET);
        if (route.gateway && route.oif == info.ifindex) info.gateway = route.gateway;
        return MNL_CB_OK;
    });
}

std::optional<wire::IpAddr> Netlink::next_hop(const wire::IpAddr& dst, unsigned ifindex) {
    char buf[kBufferSize];
    nlmsghdr* nlh = start(buf, RTM_GETROUTE, 0, ++seq_);
    auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
    rtm->rtm_family = static_cast<unsigned char>(family_of(dst));
    rtm->rtm_dst_len = dst.family == wire::IpFamily::v4 ? 32 : 128;
    mnl_attr_put(nlh, RTA_DST, dst.size(), dst.bytes.data());
    std::optional<wire::IpAddr> hop;
    bool found = false;
    const bool ok = request(nlh, [&](const nlmsghdr* m) {
        if (m->nlmsg_type != RTM_NEWROUTE) return MNL_CB_OK;
        const RouteAttrs route = route_attrs(m, family_of(dst));
        if (route.oif == ifindex) {
            found = true;
            hop = route.gateway ? *route.gateway : dst;
        }
        return MNL_CB_OK;
    });
    if (!ok || !found) return std::nullopt;
    return hop;
}

NeighbourState Netlink::neighbour(const wire::IpAddr& hop, unsigned ifindex, wire::MacAddr& mac) {
    char buf[kBufferSize];
    nlmsghdr* nlh = start(buf, RTM_GETNEIGH, 0, ++seq_);
    auto* nd = static_cast<ndmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ndmsg)));
    nd->ndm_family = static_cast<unsigned char>(family_of(hop));
    nd->ndm_ifindex = static_cast<int>(ifindex);
    mnl_attr_put(nlh, NDA_DST, hop.size(), hop.bytes.data());
    std::uint16_t state = 0;
    bool have_mac = false;
    request(nlh, [&](const nlmsghdr* m) {
        if (m->nlmsg_type != RTM_NEWNEIGH) return MNL_CB_OK;
        state = static_cast<const ndmsg*>(mnl_nlmsg_get_payload(m))->ndm_state;
        for_each_attr(m, sizeof(ndmsg), [&](const nlattr* attr) {
            if (mnl_attr_get_type(attr) == NDA_LLADDR && mnl_attr_get_payload_len(attr) == 6) {
                std::memcpy(mac.octets.data(), mnl_attr_get_payload(attr), 6);
                have_mac = true;
            }
        });
        return MNL_CB_OK;
    });
    constexpr std::uint16_t kUsable = NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_PERMANENT | NUD_NOARP;
    if (have_mac && (state & kUsable)) return NeighbourState::reachable;
    if (state & NUD_FAILED) return NeighbourState::failed;
    if (state & NUD_INCOMPLETE) return NeighbourState::pending;

    // Ask the kernel to resolve it, as if it had a packet to send there.
    nlh = start(buf, RTM_NEWNEIGH, NLM_F_CREATE, ++seq_);
    nd = static_cast<ndmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ndmsg)));
    nd->ndm_family = static_cast<unsigned char>(family_of(hop));
    nd->ndm_ifindex = static_cast<int>(ifindex);
    nd->ndm_flags = NTF_USE;
    nd->ndm_state = NUD_NONE;
    mnl_attr_put(nlh, NDA_DST, hop.size(), hop.bytes.data());
    request(nlh, [](const nlmsghdr*) { return MNL_CB_OK; });
    return NeighbourState::pending;
}

}  // namespace ms::netlink
