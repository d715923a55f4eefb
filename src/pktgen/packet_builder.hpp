// Contract: builds the frames of one UDP or TCP flow over IPv4, as netmap's pkt-gen
// does. Every frame carries a sequence number (the TCP sequence number, or the first
// four bytes of the UDP payload) and correct IPv4 and transport checksums. The frame
// is built once in full; each build() copies it and patches the sequence number and
// the transport checksum incrementally (RFC 1624).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "wire/bytes.hpp"

namespace ms::pktgen {

enum class Proto { udp, tcp };

enum class PktgenError : std::uint8_t {
    bad_frame_size,  // below the flow's headers or above 1514
    no_ports,        // a rig of zero ports
    rig_setup,       // the rig's switch, or a claim on it, refused
    daemon,          // libmultistack failed (connect, attach, claim, info)
};

// The cause, and the message a user sees.
struct PktgenFailure {
    PktgenError error;
    std::string detail;
};

struct FlowTemplate {
    Proto proto = Proto::udp;
    wire::MacAddr src_mac;
    wire::MacAddr dst_mac;
    wire::IpAddr src_ip;
    wire::IpAddr dst_ip;
    std::uint16_t src_port = 0;
    std::uint16_t dst_port = 0;
    std::uint16_t frame_size = 60;  // without the CRC; 60 is the Ethernet minimum
};

class PacketBuilder {
public:
    // Fails (bad_frame_size) if frame_size is below the headers or above 1514.
    [[nodiscard]] static base::Result<PacketBuilder, PktgenFailure> create(const FlowTemplate& flow);

    [[nodiscard]] std::size_t size() const { return frame_.size(); }
    // Writes frame number `seq` into `out` (at least size() bytes); returns its length.
    std::size_t build(wire::MutBytes out, std::uint32_t seq) const;
    [[nodiscard]] static std::uint32_t sequence_of(wire::Bytes frame, Proto proto);

private:
    explicit PacketBuilder(const FlowTemplate& flow);

    std::vector<std::uint8_t> frame_;  // the frame for seq 0
    std::size_t seq_offset_ = 0;
    std::size_t checksum_offset_ = 0;
    std::uint16_t checksum_ = 0;
};

}  // namespace ms::pktgen
