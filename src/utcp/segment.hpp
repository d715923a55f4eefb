// Contract: the segments the TCP state machine consumes and produces. An incoming
// Segment is a parsed, checksum-verified TCP header with RFC 9293 names; its payload and
// options point into the received frame and live only for one call. An OutSegment is
// what a connection asks the stack to send: header fields plus at most two spans of the
// send buffer; the stack serialises it (Ethernet, IPv4, TCP, checksum) into the tx ring.
#pragma once

#include <cstdint>
#include <optional>

#include "utcp/buffers.hpp"
#include "utcp/seq.hpp"
#include "utcp/tuple.hpp"
#include "wire/transport.hpp"

namespace ms::utcp {

struct Segment {
    Seq32 seq;
    Seq32 ack;
    std::uint8_t flags = 0;
    std::uint16_t wnd = 0;  // as sent, not yet scaled
    const wire::TcpOptions* options = nullptr;
    wire::Bytes payload;
    bool ce = false;  // the IP header said Congestion Experienced (RFC 3168 §5)

    [[nodiscard]] bool has(std::uint8_t flag) const { return (flags & flag) != 0; }
    // SEG.LEN: payload plus one for each of SYN and FIN (RFC 9293 §3.4).
    [[nodiscard]] std::uint32_t len() const {
        return static_cast<std::uint32_t>(payload.size()) + (has(wire::tcpflag::syn) ? 1 : 0) +
               (has(wire::tcpflag::fin) ? 1 : 0);
    }
};

// What a socket asks of its packets' IP headers (IP_TOS, IPV6_TCLASS, a flow label asked
// for at connect): the DSCP bits, beside the ECN bits that stay the stack's (RFC 3168
// §6.1), and the IPv6 flow label.
struct IpMarks {
    std::uint8_t dscp = 0;  // the TOS or traffic class byte with its two ECN bits clear
    // A datagram's ECN bits as the application set them (UDP leaves ECN to the application,
    // as QUIC uses it, RFC 9000 §13.4; Linux sends IP_TOS's low bits). A TCP segment's are
    // the stack's (RFC 3168 §6.1): TCP ignores these.
    std::uint8_t ecn = 0;
    // RFC 6437: nothing gives the stack's own label for the flow; a value is sent as it is
    // (0: no label).
    std::optional<std::uint32_t> flow_label;
    friend bool operator==(const IpMarks&, const IpMarks&) = default;
};

struct OutSegment {
    Seq32 seq;
    Seq32 ack;
    std::uint8_t flags = 0;
    std::uint16_t wnd = 0;
    wire::TcpOptions options;
    SplitBytes payload;
    bool ect = false;  // mark the IP header ECN-Capable Transport, ECT(0) (RFC 3168 §6.1.1)
    // Nonzero: a super-segment (link.hpp) of payload longer than this, to be cut into
    // segments of this many payload bytes on the way out.
    std::uint16_t gso_size = 0;
    IpMarks marks;
};

// Where a connection's segments go: its 4-tuple and the next hop's MAC address.
struct Route {
    FourTuple tuple;
    wire::MacAddr next_hop;
};

// The stack side of output: serialises one segment; false when the tx ring is full.
class SegmentSink {
public:
    virtual ~SegmentSink() = default;
    virtual bool emit(const Route& route, const OutSegment& segment) = 0;
};

}  // namespace ms::utcp
