// Contract: what a UTCP socket asks of its packets' IP headers, through Linux's options.
// IP_TOS and IPV6_TCLASS give the DSCP bits; the ECN bits stay the stack's, as Linux keeps
// them for TCP. IPV6_AUTOFLOWLABEL turns the stack's own per-flow label off. A label that
// the program asks for (IPV6_FLOWINFO_SEND, then the sin6_flowinfo of connect() or
// sendto()) goes on the packets if the socket leased it first (IPV6_FLOWLABEL_MGR). That
// lease lives on the kernel socket, which is the claim's proof and stays open as long as
// the claim, so the kernel's table of leases decides: a label that is not leased gives
// EINVAL. (Linux checks only while some socket of the namespace holds an exclusive
// lease, which the library cannot see: it always checks.)
// Options set before placement are on the kernel socket and are read from it.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <optional>

#include "posix/errno.hpp"
#include "utcp/segment.hpp"

namespace ms::posix {

// The IP-level options of a socket, as setsockopt left them.
struct IpOptions {
    int tos = 0;                  // IP_TOS or IPV6_TCLASS as read back
    bool flowinfo_send = false;   // IPV6_FLOWINFO_SEND: connect() and sendto() may name a label
    bool auto_flow_label = true;  // IPV6_AUTOFLOWLABEL: the stack's own label when none was asked
    std::optional<std::uint32_t> asked_label;  // the label connect() asked for
};

// The options a kernel socket of `family` has: read when the socket is placed on UTCP.
[[nodiscard]] IpOptions kernel_ip_options(int kernel_fd, int family);
// What the packets of a socket with options `o` carry.
[[nodiscard]] utcp::IpMarks marks_of(const IpOptions& o);
// The label that a call with destination `to` asks for: none unless IPV6_FLOWINFO_SEND is on
// and `to` is a sockaddr_in6 with a nonzero label. EINVAL if `kernel_fd` holds no lease for it.
[[nodiscard]] base::Result<std::optional<std::uint32_t>, Errno> asked_flow_label(const IpOptions& o, int kernel_fd,
                                                                                 const sockaddr* to, socklen_t len);

// True for an option this module keeps: IP_TOS, and for AF_INET6 IPV6_TCLASS,
// IPV6_FLOWINFO_SEND and IPV6_AUTOFLOWLABEL.
[[nodiscard]] bool is_ip_option(int family, int level, int name);
// setsockopt of one of them; EINVAL for a traffic class out of -1..255, as Linux.
[[nodiscard]] base::Result<int, Errno> set_ip_option(IpOptions& o, int level, int name, int value);
// getsockopt of one of them.
[[nodiscard]] int get_ip_option(const IpOptions& o, int level, int name);

}  // namespace ms::posix
