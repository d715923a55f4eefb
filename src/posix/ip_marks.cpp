// The IP header marks of UTCP sockets (ip_marks.hpp).
#include <arpa/inet.h>
#include <netinet/in.h>
// After netinet/in.h, whose in6_addr linux/in6.h then leaves alone: in6_flowlabel_req.
#include <linux/in6.h>

#include <cerrno>
#include <cstring>

#include "posix/ip_marks.hpp"

#include "wire/ip.hpp"

namespace ms::posix {

namespace {

constexpr std::uint32_t kFlowLabelMask = 0xfffff;  // RFC 6437: 20 bits

std::optional<int> kernel_int(int fd, int level, int name) {
    int v = 0;
    socklen_t len = sizeof v;
    if (::getsockopt(fd, level, name, &v, &len) != 0) return std::nullopt;
    return v;
}

// Whether `kernel_fd` leased `label`: renewing a lease succeeds only for its holder
// (ESRCH otherwise), and changes nothing else.
bool holds_lease(int kernel_fd, std::uint32_t label) {
    in6_flowlabel_req request{};
    request.flr_label = htonl(label);
    request.flr_action = IPV6_FL_A_RENEW;
    request.flr_share = IPV6_FL_S_EXCL;  // not IPV6_FL_S_NONE, which renews any holder's lease for a privileged caller
    return ::setsockopt(kernel_fd, IPPROTO_IPV6, IPV6_FLOWLABEL_MGR, &request, sizeof request) == 0;
}

}  // namespace

IpOptions kernel_ip_options(int kernel_fd, int family) {
    IpOptions o;
    if (family != AF_INET6) {
        o.tos = kernel_int(kernel_fd, IPPROTO_IP, IP_TOS).value_or(0);
        return o;
    }
    o.tos = kernel_int(kernel_fd, IPPROTO_IPV6, IPV6_TCLASS).value_or(0);
    o.flowinfo_send = kernel_int(kernel_fd, IPPROTO_IPV6, IPV6_FLOWINFO_SEND).value_or(0) != 0;
    o.auto_flow_label = kernel_int(kernel_fd, IPPROTO_IPV6, IPV6_AUTOFLOWLABEL).value_or(1) != 0;
    return o;
}

utcp::IpMarks marks_of(const IpOptions& o) {
    utcp::IpMarks marks{.dscp = static_cast<std::uint8_t>(o.tos & ~wire::ecn::mask),
                        .ecn = static_cast<std::uint8_t>(o.tos & wire::ecn::mask)};
    if (o.asked_label) {
        marks.flow_label = o.asked_label;
    } else if (!o.auto_flow_label) {
        marks.flow_label = 0;
    }
    return marks;
}

base::Result<std::optional<std::uint32_t>, Errno> asked_flow_label(const IpOptions& o, int kernel_fd, const sockaddr* to,
                                                                   socklen_t len) {
    if (!o.flowinfo_send || !to || to->sa_family != AF_INET6 || len < static_cast<socklen_t>(sizeof(sockaddr_in6))) {
        return std::optional<std::uint32_t>{};
    }
    sockaddr_in6 sin6;
    std::memcpy(&sin6, to, sizeof sin6);
    const std::uint32_t label = ntohl(sin6.sin6_flowinfo) & kFlowLabelMask;
    if (label == 0) return std::optional<std::uint32_t>{};
    if (!holds_lease(kernel_fd, label)) return Errno{EINVAL};  // as Linux's fl6_sock_lookup fails
    return std::optional<std::uint32_t>{label};
}

bool is_ip_option(int family, int level, int name) {
    if (level == IPPROTO_IP) return name == IP_TOS;
    return level == IPPROTO_IPV6 && family == AF_INET6 &&
           (name == IPV6_TCLASS || name == IPV6_FLOWINFO_SEND || name == IPV6_AUTOFLOWLABEL);
}

base::Result<int, Errno> set_ip_option(IpOptions& o, int level, int name, int value) {
    if (level == IPPROTO_IP) {
        o.tos = value & 0xff;
        return 0;
    }
    switch (name) {
        case IPV6_TCLASS:
            if (value < -1 || value > 0xff) return Errno{EINVAL};
            o.tos = value == -1 ? 0 : value;
            return 0;
        case IPV6_FLOWINFO_SEND: o.flowinfo_send = value != 0; return 0;
        case IPV6_AUTOFLOWLABEL: o.auto_flow_label = value != 0; return 0;
        default: return Errno{ENOPROTOOPT};
    }
}

int get_ip_option(const IpOptions& o, int level, int name) {
    if (level == IPPROTO_IP || name == IPV6_TCLASS) return o.tos;
    if (name == IPV6_FLOWINFO_SEND) return o.flowinfo_send ? 1 : 0;
    return o.auto_flow_label ? 1 : 0;
}

}  // namespace ms::posix
