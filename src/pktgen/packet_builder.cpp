#include "pktgen/packet_builder.hpp"

#include <cstring>

#include "wire/checksum.hpp"
#include "wire/ethernet.hpp"
#include "wire/ip.hpp"
#include "wire/transport.hpp"

namespace ms::pktgen {
namespace {

constexpr std::size_t kL3 = wire::kEthernetHeaderLen;
constexpr std::size_t kL4 = kL3 + wire::kIpv4MinHeaderLen;
constexpr std::size_t kMaxFrame = 1514;

std::size_t l4_header_len(Proto p) { return p == Proto::tcp ? wire::kTcpMinHeaderLen : wire::kUdpHeaderLen; }

// The smallest frame that holds the flow's headers (and, for UDP, the sequence number).
std::size_t min_frame(Proto p) { return kL4 + l4_header_len(p) + (p == Proto::udp ? 4 : 0); }

void emit_transport(const FlowTemplate& f, wire::MutBytes l4) {
    if (f.proto == Proto::tcp) {
        wire::TcpRepr tcp;
        tcp.src_port = f.src_port;
        tcp.dst_port = f.dst_port;
        tcp.flags = wire::tcpflag::ack | wire::tcpflag::psh;
        tcp.window = 65535;
        tcp.emit(l4);
    } else {
        wire::UdpRepr udp{f.src_port, f.dst_port, static_cast<std::uint16_t>(l4.size() - wire::kUdpHeaderLen)};
        udp.emit(l4);
    }
}

}  // namespace

base::Result<PacketBuilder, PktgenFailure> PacketBuilder::create(const FlowTemplate& f) {
    const std::size_t headers = min_frame(f.proto);
    if (f.frame_size < headers || f.frame_size > kMaxFrame) {
        return PktgenFailure{PktgenError::bad_frame_size,
                             "frame size must be " + std::to_string(headers) + ".." + std::to_string(kMaxFrame)};
    }
    return PacketBuilder(f);
}

PacketBuilder::PacketBuilder(const FlowTemplate& f) {
    frame_.assign(f.frame_size, 0);
    wire::MutBytes frame(frame_);
    wire::EthernetRepr{f.dst_mac, f.src_mac, wire::ethertype::ipv4}.emit(frame);
    const auto l4_len = static_cast<std::uint16_t>(f.frame_size - kL4);
    wire::Ipv4Repr ip;
    ip.src = f.src_ip;
    ip.dst = f.dst_ip;
    ip.protocol = f.proto == Proto::tcp ? wire::ipproto::tcp : wire::ipproto::udp;
    ip.payload_len = l4_len;
    ip.emit(frame.subspan(kL3));
    emit_transport(f, frame.subspan(kL4, l4_len));
    // Payload bytes after the headers: a recognisable pattern.
    for (std::size_t i = kL4 + l4_header_len(f.proto); i < frame_.size(); ++i) frame_[i] = static_cast<std::uint8_t>(i);
    seq_offset_ = f.proto == Proto::tcp ? kL4 + 4 : kL4 + wire::kUdpHeaderLen;
    wire::store_be32(&frame_[seq_offset_], 0);
    checksum_offset_ = kL4 + (f.proto == Proto::tcp ? 16 : 6);
    checksum_ = wire::transport_checksum(f.src_ip, f.dst_ip, ip.protocol, frame.subspan(kL4, l4_len));
    wire::store_be16(&frame_[checksum_offset_], checksum_);
}

std::size_t PacketBuilder::build(wire::MutBytes out, std::uint32_t seq) const {
    std::memcpy(out.data(), frame_.data(), frame_.size());
    wire::store_be32(out.data() + seq_offset_, seq);
    std::uint16_t c = wire::checksum_update32(checksum_, 0, seq);
    // RFC 768: a UDP checksum that computes to zero is sent as all ones.
    if (c == 0 && seq_offset_ == kL4 + wire::kUdpHeaderLen) c = 0xffff;
    wire::store_be16(out.data() + checksum_offset_, c);
    return frame_.size();
}

std::uint32_t PacketBuilder::sequence_of(wire::Bytes frame, Proto proto) {
    const std::size_t at = proto == Proto::tcp ? kL4 + 4 : kL4 + wire::kUdpHeaderLen;
    return frame.size() >= at + 4 ? wire::load_be32(frame.data() + at) : 0;
}

}  // namespace ms::pktgen
