// TCP segmentation in software (wire/segmentation.hpp): what the switch does with a
// super-segment when the interface cannot, and what a NIC's TSO would have produced.
#include <gtest/gtest.h>

#include <numeric>

#include "frames.hpp"
#include "wire/checksum.hpp"
#include "wire/frame.hpp"
#include "wire/segmentation.hpp"

namespace ms::wire {
namespace {

using test::ip;

struct Cut {
    std::vector<std::vector<std::uint8_t>> frames;
};

// Cuts `super` with its payload split into pieces of the given sizes (the rest in one).
Cut cut(const std::vector<std::uint8_t>& super, std::uint16_t gso, std::vector<std::size_t> piece_sizes = {}) {
    const base::Result<HeaderShape, ShapeError> shape = header_shape(super);
    EXPECT_TRUE(shape);
    const Bytes payload = Bytes(super).subspan(shape->header_len);
    std::vector<Bytes> pieces;
    std::size_t at = 0;
    for (std::size_t n : piece_sizes) {
        pieces.push_back(payload.subspan(at, n));
        at += n;
    }
    if (at < payload.size()) pieces.push_back(payload.subspan(at));
    const SuperSegment s{Bytes(super).first(shape->header_len), *shape, gso, pieces};
    Cut out;
    Segmenter seg(s);
    while (!seg.done()) {
        std::vector<std::uint8_t> f(s.max_frame_len());
        f.resize(seg.next(f));
        out.frames.push_back(std::move(f));
    }
    EXPECT_EQ(out.frames.size(), s.segment_count());
    return out;
}

TEST(Segmentation, CutsASuperSegmentIntoValidFramesInOrder) {
    const auto super = test::ipv4_super_segment("198.18.0.1", 80, "198.18.0.2", 40000, 10000,
                                                tcpflag::ack | tcpflag::psh | tcpflag::fin | tcpflag::cwr);
    // Pieces of odd sizes, as slot chains may have: words straddle the piece boundaries.
    const Cut c = cut(super, 1448, {1, 3, 1001, 2047, 7});
    ASSERT_EQ(c.frames.size(), 7u);  // 6 * 1448 + 1312
    std::vector<std::uint8_t> joined;
    for (std::size_t i = 0; i < c.frames.size(); ++i) {
        const auto& f = c.frames[i];
        ParsedFrame p;
        ASSERT_TRUE(parse_frame(f, p)) << i;
        ASSERT_EQ(p.protocol, ipproto::tcp);
        EXPECT_EQ(ones_sum(Bytes(f).subspan(14, 20)), 0xffff) << "IPv4 header checksum of frame " << i;
        EXPECT_EQ(p.l3_length, f.size() - 14);
        EXPECT_EQ(load_be16(&f[18]), 100 + i) << "IPv4 identification";
        const Bytes segment = Bytes(f).subspan(p.l4_offset);
        EXPECT_TRUE(transport_checksum_ok(p.src_ip, p.dst_ip, ipproto::tcp, segment)) << "TCP checksum of frame " << i;
        const auto view = TcpView::parse(segment);
        ASSERT_TRUE(view);
        EXPECT_EQ(view->seq(), 1000 + i * 1448);
        EXPECT_EQ(view->payload().size(), i + 1 < c.frames.size() ? 1448u : 10000u - 6 * 1448);
        const bool last = i + 1 == c.frames.size();
        EXPECT_EQ((view->flags() & tcpflag::fin) != 0, last) << i;
        EXPECT_EQ((view->flags() & tcpflag::psh) != 0, last) << i;
        EXPECT_EQ((view->flags() & tcpflag::cwr) != 0, i == 0) << i;
        EXPECT_TRUE(view->options().timestamps) << "options are copied to every frame";
        joined.insert(joined.end(), view->payload().begin(), view->payload().end());
    }
    std::vector<std::uint8_t> expected(10000);
    std::iota(expected.begin(), expected.end(), std::uint8_t{0});
    EXPECT_EQ(joined, expected);
}

TEST(Segmentation, APayloadThatFitsOneSegmentStaysOneFrame) {
    const auto super = test::ipv4_super_segment("198.18.0.1", 80, "198.18.0.2", 40000, 100);
    const Cut c = cut(super, 1448);
    ASSERT_EQ(c.frames.size(), 1u);
    ParsedFrame p;
    ASSERT_TRUE(parse_frame(c.frames[0], p));
    EXPECT_TRUE(transport_checksum_ok(p.src_ip, p.dst_ip, ipproto::tcp, Bytes(c.frames[0]).subspan(p.l4_offset)));
}

TEST(Segmentation, CutsIpv6Too) {
    auto v4 = test::ipv4_super_segment("198.18.0.1", 80, "198.18.0.2", 40000, 3000);
    // The same TCP header and payload behind an IPv6 header.
    const base::Result<HeaderShape, ShapeError> h4 = header_shape(v4);
    ASSERT_TRUE(h4);
    const std::size_t l4_len = v4.size() - h4->l4_offset;
    std::vector<std::uint8_t> v6(14 + 40);
    EthernetRepr{test::kPeerMac, test::kNicMac, ethertype::ipv6}.emit(v6);
    Ipv6Repr{ip("2001:2::1"), ip("2001:2::2"), ipproto::tcp, static_cast<std::uint16_t>(l4_len), 64, 0, 0}.emit(
        MutBytes(v6).subspan(14));
    v6.insert(v6.end(), v4.begin() + h4->l4_offset, v4.end());
    const Cut c = cut(v6, 1000);
    ASSERT_EQ(c.frames.size(), 3u);
    for (const auto& f : c.frames) {
        ParsedFrame p;
        ASSERT_TRUE(parse_frame(f, p));
        EXPECT_EQ(p.l3_length, f.size() - 14);
        EXPECT_TRUE(transport_checksum_ok(p.src_ip, p.dst_ip, ipproto::tcp, Bytes(f).subspan(p.l4_offset)));
    }
}

TEST(Segmentation, ReadsOnlyHeadersItCanCut) {
    auto super = test::ipv4_super_segment("198.18.0.1", 80, "198.18.0.2", 40000, 10);
    EXPECT_EQ(header_shape(Bytes(super).first(40)).error(), ShapeError::truncated);
    auto udp = super;
    udp[14 + 9] = ipproto::udp;
    EXPECT_EQ(header_shape(udp).error(), ShapeError::not_tcp);
    auto options = super;
    options[14] = 0x46;
    EXPECT_EQ(header_shape(options).error(), ShapeError::ip_options);
    auto arp = super;
    store_be16(&arp[12], ethertype::arp);
    EXPECT_EQ(header_shape(arp).error(), ShapeError::not_ip);
    auto offset = super;
    offset[14 + 20 + 12] = 0x40;
    EXPECT_EQ(header_shape(offset).error(), ShapeError::bad_data_offset);
}

TEST(Checksum, CopyAndSumInOnePassEqualsSumAfterCopy) {
    std::vector<std::uint8_t> src(3001);
    for (std::size_t i = 0; i < src.size(); ++i) src[i] = static_cast<std::uint8_t>(i * 7 + 3);
    for (std::size_t len : {0u, 1u, 2u, 31u, 32u, 33u, 1448u, 3001u}) {
        std::vector<std::uint8_t> dst(len);
        const std::uint16_t sum = copy_ones_sum(dst.data(), Bytes(src).first(len));
        EXPECT_EQ(sum, ones_sum(Bytes(src).first(len))) << len;
        EXPECT_TRUE(std::equal(dst.begin(), dst.end(), src.begin())) << len;
    }
}

}  // namespace
}  // namespace ms::wire
