#include "wire/segmentation.hpp"

#include <algorithm>

#include "wire/checksum.hpp"
#include "wire/ethernet.hpp"
#include "wire/ip.hpp"
#include "wire/transport.hpp"

namespace ms::wire {
namespace {

constexpr std::size_t kTcpChecksumAt = 16;
constexpr std::size_t kTcpFlagsAt = 13;

IpAddr address_at(Bytes header, std::size_t at, bool ipv6) {
    return ipv6 ? IpAddr::load_v6(header.data() + at) : IpAddr::load_v4(header.data() + at);
}

}  // namespace

base::Result<HeaderShape, ShapeError> header_shape(Bytes frame) {
    if (frame.size() < kEthernetHeaderLen) return ShapeError::truncated;
    const std::uint16_t type = load_be16(frame.data() + 12);
    HeaderShape s;
    s.l3_offset = kEthernetHeaderLen;
    std::uint8_t protocol;
    if (type == ethertype::ipv4) {
        if (frame.size() < s.l3_offset + kIpv4MinHeaderLen) return ShapeError::truncated;
        if ((frame[s.l3_offset] & 0x0f) != 5) return ShapeError::ip_options;
        protocol = frame[s.l3_offset + 9];
        s.l4_offset = s.l3_offset + kIpv4MinHeaderLen;
    } else if (type == ethertype::ipv6) {
        if (frame.size() < s.l3_offset + kIpv6HeaderLen) return ShapeError::truncated;
        protocol = frame[s.l3_offset + 6];
        s.l4_offset = s.l3_offset + kIpv6HeaderLen;
        s.ipv6 = true;
    } else {
        return ShapeError::not_ip;
    }
    if (protocol != ipproto::tcp) return ShapeError::not_tcp;
    if (frame.size() < s.l4_offset + kTcpMinHeaderLen) return ShapeError::truncated;
    const std::size_t data_offset = (std::size_t{frame[s.l4_offset + 12]} >> 4) * 4;
    if (data_offset < kTcpMinHeaderLen) return ShapeError::bad_data_offset;
    if (frame.size() < s.l4_offset + data_offset) return ShapeError::truncated;
    s.header_len = static_cast<std::uint16_t>(s.l4_offset + data_offset);
    return s;
}

std::uint32_t SuperSegment::payload_len() const {
    std::uint32_t n = 0;
    for (const Bytes& p : payload) n += static_cast<std::uint32_t>(p.size());
    return n;
}

std::uint32_t SuperSegment::segment_count() const {
    const std::uint32_t len = payload_len();
    return gso_size == 0 ? 0 : std::max<std::uint32_t>(1, (len + gso_size - 1) / gso_size);
}

Segmenter::Segmenter(const SuperSegment& s) : s_(s), left_(s.payload_len()) {}

std::uint16_t Segmenter::copy_payload(std::uint8_t* out, std::uint32_t len) {
    std::uint16_t sum = 0;
    std::uint32_t done = 0;
    while (done < len) {
        const Bytes& piece = s_.payload[piece_];
        const std::size_t take = std::min<std::size_t>(len - done, piece.size() - in_piece_);
        std::uint16_t part = copy_ones_sum(out + done, piece.subspan(in_piece_, take));
        if (done % 2 != 0) part = swap_be16(part);  // its words straddle ours by one byte
        sum = ones_add(sum, part);
        done += static_cast<std::uint32_t>(take);
        in_piece_ += take;
        if (in_piece_ == piece.size()) {
            ++piece_;
            in_piece_ = 0;
        }
    }
    return sum;
}

std::size_t Segmenter::next(MutBytes out) {
    if (done() || out.size() < s_.max_frame_len()) return 0;
    const HeaderShape& h = s_.shape;
    const std::uint32_t len = std::min<std::uint32_t>(left_, s_.gso_size);
    const bool last = len == left_;
    std::uint8_t* frame = out.data();
    copy_bytes(frame, s_.header);
    const std::uint16_t payload_sum = copy_payload(frame + h.header_len, len);

    const std::uint32_t l4_len = h.header_len - h.l4_offset + len;
    std::uint8_t* ip = frame + h.l3_offset;
    if (h.ipv6) {
        store_be16(ip + 4, static_cast<std::uint16_t>(l4_len));
    } else {
        store_be16(ip + 2, static_cast<std::uint16_t>(kIpv4MinHeaderLen + l4_len));
        store_be16(ip + 4, static_cast<std::uint16_t>(load_be16(ip + 4) + index_));
        store_be16(ip + 10, 0);
        store_be16(ip + 10, internet_checksum({ip, kIpv4MinHeaderLen}));
    }
    std::uint8_t* tcp = frame + h.l4_offset;
    store_be32(tcp + 4, load_be32(tcp + 4) + offset_);
    std::uint8_t flags = tcp[kTcpFlagsAt];
    if (!last) flags &= static_cast<std::uint8_t>(~(tcpflag::fin | tcpflag::psh));
    if (index_ > 0) flags &= static_cast<std::uint8_t>(~tcpflag::cwr);
    tcp[kTcpFlagsAt] = flags;
    store_be16(tcp + kTcpChecksumAt, 0);
    const std::size_t src_at = h.l3_offset + (h.ipv6 ? 8 : 12);
    const std::size_t dst_at = h.l3_offset + (h.ipv6 ? 24 : 16);
    const std::uint32_t pseudo = pseudo_header_sum(address_at(s_.header, src_at, h.ipv6),
                                                   address_at(s_.header, dst_at, h.ipv6), ipproto::tcp, l4_len);
    const std::uint16_t header_sum = ones_sum({tcp, std::size_t{h.header_len} - h.l4_offset}, pseudo);
    store_be16(tcp + kTcpChecksumAt, static_cast<std::uint16_t>(~ones_add(header_sum, payload_sum)));

    left_ -= len;
    offset_ += len;
    ++index_;
    return h.header_len + len;
}

}  // namespace ms::wire
