#include "nic/gso_socket.hpp"

#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "ring/abi.hpp"
#include "wire/transport.hpp"

namespace ms::nic {
namespace {

constexpr int kSendBuffer = 8 << 20;  // room for a window of 64 KB packets in flight
constexpr std::uint16_t kTcpChecksumOffset = 16;

// struct virtio_net_hdr of <linux/virtio_net.h>, which C++ cannot include (another struct
// there has a field named `class`). Fields are in host order (PACKET_VNET_HDR is the
// legacy, native-endian layout).
struct VirtioNetHeader {
    std::uint8_t flags;
    std::uint8_t gso_type;
    std::uint16_t hdr_len;
    std::uint16_t gso_size;
    std::uint16_t csum_start;
    std::uint16_t csum_offset;
};
static_assert(sizeof(VirtioNetHeader) == 10);
constexpr std::uint8_t VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
constexpr std::uint8_t VIRTIO_NET_HDR_GSO_TCPV4 = 1;
constexpr std::uint8_t VIRTIO_NET_HDR_GSO_TCPV6 = 4;
constexpr std::uint8_t VIRTIO_NET_HDR_GSO_ECN = 0x80;

NicFailure socket_failure(const std::string& what) { return {NicError::packet_socket, what + ": " + std::strerror(errno)}; }

base::Result<base::Done, NicFailure> set_option(int fd, int level, int name, int value, const char* what) {
    if (::setsockopt(fd, level, name, &value, sizeof value) != 0) return socket_failure(what);
    return base::Done{};
}

VirtioNetHeader vnet_header(const wire::SuperSegment& s) {
    VirtioNetHeader h{};
    h.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    h.gso_type = s.shape.ipv6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4;
    if (s.header[s.shape.l4_offset + 13] & wire::tcpflag::cwr) h.gso_type |= VIRTIO_NET_HDR_GSO_ECN;
    h.hdr_len = s.shape.header_len;
    h.gso_size = s.gso_size;
    h.csum_start = s.shape.l4_offset;
    h.csum_offset = kTcpChecksumOffset;
    return h;
}

}  // namespace

base::Result<std::unique_ptr<GsoSocket>, NicFailure> GsoSocket::open(const std::string& ifname, unsigned ifindex) {
    const int fd = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
    if (fd < 0) return socket_failure(ifname + ": AF_PACKET socket");
    std::unique_ptr<GsoSocket> s(new GsoSocket(fd, ifindex));  // closes fd on every path
    if (auto set = set_option(fd, SOL_PACKET, PACKET_VNET_HDR, 1, "PACKET_VNET_HDR"); !set) return set.error();
    // No PACKET_QDISC_BYPASS: its direct transmit drops any packet that the kernel
    // must segment in software (a device without TSO), where dev_queue_xmit cuts it.
    if (::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &kSendBuffer, sizeof kSendBuffer) != 0) {
        if (auto set = set_option(fd, SOL_SOCKET, SO_SNDBUF, kSendBuffer, "SO_SNDBUF"); !set) return set.error();
    }
    return s;
}

GsoSocket::~GsoSocket() { ::close(fd_); }

sw::SuperTx GsoSocket::send(const wire::SuperSegment& s) {
    VirtioNetHeader vnet = vnet_header(s);
    std::array<iovec, 2 + ring::kMaxChainSlots> iov;
    std::size_t n = 0;
    iov[n++] = {&vnet, sizeof vnet};
    iov[n++] = {const_cast<std::uint8_t*>(s.header.data()), s.header.size()};
    for (const wire::Bytes& piece : s.payload) {
        if (n == iov.size()) return sw::SuperTx::failed;  // more pieces than a chain has: a caller's bug
        iov[n++] = {const_cast<std::uint8_t*>(piece.data()), piece.size()};
    }
    sockaddr_ll to{};
    to.sll_family = AF_PACKET;
    to.sll_ifindex = static_cast<int>(ifindex_);
    to.sll_protocol = htons(s.shape.ipv6 ? ETH_P_IPV6 : ETH_P_IP);
    msghdr msg{};
    msg.msg_name = &to;
    msg.msg_namelen = sizeof to;
    msg.msg_iov = iov.data();
    msg.msg_iovlen = n;
    if (::sendmsg(fd_, &msg, MSG_DONTWAIT) >= 0) return sw::SuperTx::sent;
    return errno == EAGAIN || errno == ENOBUFS ? sw::SuperTx::busy : sw::SuperTx::failed;
}

}  // namespace ms::nic
