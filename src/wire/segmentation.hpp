// Contract: TCP segmentation in software, what a NIC's TSO or Linux's GSO does with a
// super-segment: one Ethernet, IP (v4 without options or v6 without extension headers)
// and TCP header in front of up to 64 KB of payload, cut into frames of at most
// `gso_size` payload bytes. Each frame gets the header with its own IP length, IPv4
// identification (one more per frame) and header checksum, TCP sequence number and TCP
// checksum; FIN and PSH stay on the last frame only and CWR on the first only, as
// Linux's tcp_gso_segment does. The payload may lie in several pieces (ring slots), and
// each frame's TCP checksum is summed while its payload is copied. The header must have
// been checked (header_shape, and by the switch its validator); payload bytes are only
// copied, never interpreted.
#pragma once

#include <cstdint>
#include <span>

#include "base/result.hpp"
#include "wire/bytes.hpp"

namespace ms::wire {

// The most frames one super-segment may become: bounds the work a sender can ask of a
// software segmenter with one slot chain (Linux's drivers cap TSO at 64 or so too).
inline constexpr std::uint32_t kMaxSegmentsPerSuper = 64;
// The longest super-segment: an IP datagram's length field.
inline constexpr std::uint32_t kMaxSuperIpLength = 65535;

// Where the headers of a super-segment are.
struct HeaderShape {
    std::uint16_t l3_offset = 0;
    std::uint16_t l4_offset = 0;
    std::uint16_t header_len = 0;  // Ethernet, IP and TCP headers, options included
    bool ipv6 = false;
};

enum class ShapeError : std::uint8_t {
    truncated,      // the bytes end before the headers do
    not_ip,         // neither IPv4 nor IPv6 (a VLAN tag included)
    ip_options,     // IPv4 options: not segmented
    not_tcp,        // the IP payload is not TCP (IPv6 extension headers included)
    bad_data_offset // TCP data offset below 5
};

// Reads the header geometry from the first bytes of a super-segment.
base::Result<HeaderShape, ShapeError> header_shape(Bytes frame);

struct SuperSegment {
    Bytes header;  // header_len bytes: Ethernet, IP and TCP
    HeaderShape shape;
    std::uint16_t gso_size = 0;     // payload bytes per frame, at least 1
    std::span<const Bytes> payload; // the payload, in order, in pieces

    [[nodiscard]] std::uint32_t payload_len() const;
    [[nodiscard]] std::uint32_t segment_count() const;
    // The length of the largest frame it becomes.
    [[nodiscard]] std::uint32_t max_frame_len() const { return std::uint32_t{shape.header_len} + gso_size; }
};

// Cuts a super-segment into frames, one next() at a time.
class Segmenter {
public:
    explicit Segmenter(const SuperSegment& s);
    [[nodiscard]] bool done() const { return left_ == 0; }
    // Writes the next frame into `out` (at least max_frame_len() bytes) and returns its
    // length; 0 when done or `out` is too small.
    std::size_t next(MutBytes out);

private:
    std::uint16_t copy_payload(std::uint8_t* out, std::uint32_t len);

    const SuperSegment& s_;
    std::uint32_t left_;       // payload bytes not yet cut
    std::uint32_t offset_ = 0; // payload bytes cut so far
    std::uint32_t index_ = 0;  // frames written
    std::size_t piece_ = 0;    // the payload piece to copy from next
    std::size_t in_piece_ = 0; // how far into it
};

}  // namespace ms::wire
