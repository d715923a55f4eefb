// Contract: the NIC side's segmentation offload (docs/DESIGN.md §4): an AF_PACKET socket on the
// interface with PACKET_VNET_HDR, through which the switch hands a validated TCP
// super-segment to the kernel as one packet with a virtio_net_hdr (GSO_TCPV4 or
// GSO_TCPV6, NEEDS_CSUM), exactly as the kernel's own TCP hands a TSO packet to a
// driver: a TSO NIC segments it in hardware, a veth passes it on whole to its peer, and
// anything else gets the kernel's software GSO. Checksums are the interface's. The
// socket never receives (protocol 0) and never blocks: a full socket buffer is reported
// as busy, for the caller to retry.
#pragma once

#include <memory>
#include <string>

#include "nic/nic_failure.hpp"
#include "sw/nic.hpp"

namespace ms::nic {

class GsoSocket {
public:
    // Fails (packet_socket) when the socket cannot be made: no CAP_NET_RAW, no
    // PACKET_VNET_HDR.
    [[nodiscard]] static base::Result<std::unique_ptr<GsoSocket>, NicFailure> open(const std::string& ifname,
                                                                                   unsigned ifindex);
    ~GsoSocket();
    GsoSocket(const GsoSocket&) = delete;
    GsoSocket& operator=(const GsoSocket&) = delete;

    // Sends one super-segment. Its header is the validated copy; payload pieces are
    // read by the kernel while it copies them into the packet.
    [[nodiscard]] sw::SuperTx send(const wire::SuperSegment& s);

private:
    GsoSocket(int fd, unsigned ifindex) : fd_(fd), ifindex_(ifindex) {}

    int fd_ = -1;
    unsigned ifindex_;
};

}  // namespace ms::nic
