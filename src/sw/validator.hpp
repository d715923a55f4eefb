// Contract: the switch's verdict on one frame (docs/DESIGN.md §4). validate_tx checks a frame a
// port transmitted, on the switch's own copy, and says where it goes: another local
// port (its destination 3-tuple is claimed), the NIC, or a drop with its reason.
// classify_rx says which port a frame from the NIC belongs to (an ICMP error: the port
// that sent the packet it quotes). Both are pure
// functions of the frame, the sender and a registry snapshot.
#pragma once

#include "ring/abi.hpp"
#include "sw/counters.hpp"
#include "sw/registry.hpp"
#include "wire/frame.hpp"
#include "wire/segmentation.hpp"

namespace ms::sw {

struct Verdict {
    enum class Kind : std::uint8_t { to_port, to_nic, drop } kind = Kind::drop;
    PortId port = kNoPort;           // for to_port
    DropReason reason = DropReason::truncated;  // for drop
    std::uint32_t flow_hash = 0;     // for to_port: picks the destination ring

    static Verdict dropped(DropReason r) { return {Kind::drop, kNoPort, r, 0}; }
};

// Picks a port's ring for a flow, given as its frames arrive (source = the remote end).
[[nodiscard]] std::uint32_t flow_hash(const wire::IpAddr& src, const wire::IpAddr& dst, std::uint16_t src_port,
                                      std::uint16_t dst_port);
[[nodiscard]] std::uint32_t flow_hash(const wire::ParsedFrame& f);

// What frames that leave a port must fit: the interface's MAC (their source) and MTU
// (the largest IP packet; a frame is that plus its 14-byte Ethernet header).
struct TxLink {
    wire::MacAddr nic_mac;
    std::uint32_t mtu = ring::kMaxFrameSize - 18;  // 1500: the largest a port's frame can carry
};

[[nodiscard]] Verdict validate_tx(wire::Bytes frame_copy, PortId sender, const TxLink& link, const ClaimTable& claims);

// A super-segment (abi.hpp): `head_copy` is the switch's copy of its first slot and
// `payload_beyond` the bytes its later slots hold. Its header is checked as validate_tx
// checks a frame, and then what a segment adds: IPv4 without options or IPv6 without
// extension headers, TCP without SYN, RST or URG, an IP length that counts exactly the
// chain's payload (at least one byte), a gso_size that cuts the payload into at most
// wire::kMaxSegmentsPerSuper segments, and segments that fit the link's MTU (over_mtu;
// a TSO NIC would put larger ones on the wire). Fills `shape` when it passes.
[[nodiscard]] Verdict validate_segment(wire::Bytes head_copy, std::uint32_t payload_beyond, std::uint16_t gso_size,
                                       PortId sender, const TxLink& link, const ClaimTable& claims, wire::HeaderShape& shape);

[[nodiscard]] Verdict classify_rx(wire::Bytes frame, const ClaimTable& claims);

}  // namespace ms::sw
