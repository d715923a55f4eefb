// The switch's verdict on each frame: one test per drop reason, and the destinations.
#include <gtest/gtest.h>

#include <netinet/in.h>

#include <set>

#include "captures.hpp"
#include "frames.hpp"
#include "hex.hpp"
#include "sw/registry.hpp"
#include "sw/validator.hpp"

namespace ms::sw {
namespace {

using pktgen::Proto;
using test::ip;
using test::ipv4_frame;
using test::kNicMac;

constexpr PortId kSender = 1;
constexpr PortId kOther = 2;

class ValidatorTest : public ::testing::Test {
protected:
    void SetUp() override {
        reg_.set_local_addresses({ip("198.18.0.1"), ip("2001:2::1")});
        ASSERT_TRUE(reg_.add({IPPROTO_UDP, ip("198.18.0.1"), 5000}, kSender));
        ASSERT_TRUE(reg_.add({IPPROTO_TCP, ip("198.18.0.1"), 80}, kSender));
        ASSERT_TRUE(reg_.add({IPPROTO_UDP, ip("198.18.0.1"), 6000}, kOther));
        ASSERT_TRUE(reg_.add({IPPROTO_UDP, ip("2001:2::1"), 5000}, kSender));
        table_ = reg_.snapshot();
    }
    Verdict tx(const std::vector<std::uint8_t>& frame, PortId sender = kSender) {
        return validate_tx(frame, sender, TxLink{kNicMac}, *table_);
    }
    DropReason tx_drop(const std::vector<std::uint8_t>& frame) {
        const Verdict v = tx(frame);
        EXPECT_EQ(v.kind, Verdict::Kind::drop);
        return v.reason;
    }
    std::vector<std::uint8_t> good_udp() { return ipv4_frame(Proto::udp, "198.18.0.1", 5000, "198.18.0.2", 9); }

    Qsbr qsbr_{1};
    Registry reg_{qsbr_};
    std::shared_ptr<const ClaimTable> table_;
};

TEST_F(ValidatorTest, SendsAValidFrameToTheNic) {
    EXPECT_EQ(tx(good_udp()).kind, Verdict::Kind::to_nic);
    EXPECT_EQ(tx(ipv4_frame(Proto::tcp, "198.18.0.1", 80, "198.18.0.2", 40000)).kind, Verdict::Kind::to_nic);
    EXPECT_EQ(tx(test::ipv6_udp_frame("2001:2::1", 5000, "2001:2::2", 9)).kind, Verdict::Kind::to_nic);
}

TEST_F(ValidatorTest, SendsToALocalPortWhenTheDestinationIsClaimed) {
    const Verdict v = tx(ipv4_frame(Proto::udp, "198.18.0.1", 5000, "198.18.0.1", 6000));
    EXPECT_EQ(v.kind, Verdict::Kind::to_port);
    EXPECT_EQ(v.port, kOther);
}

TEST_F(ValidatorTest, DropsTruncatedFrames) {
    auto f = good_udp();
    f.resize(30);
    EXPECT_EQ(tx_drop(f), DropReason::truncated);
}

TEST_F(ValidatorTest, DropsBadIpVersionAndHeaderLength) {
    auto f = good_udp();
    f[14] = 0x55;
    EXPECT_EQ(tx_drop(f), DropReason::bad_ip_version);
    f[14] = 0x43;
    EXPECT_EQ(tx_drop(f), DropReason::bad_header_length);
}

TEST_F(ValidatorTest, DropsTotalLengthBeyondTheFrame) {
    auto f = good_udp();
    wire::store_be16(&f[16], 47);  // the frame holds 46 bytes of IP
    test::fix_ipv4_checksum(f);
    EXPECT_EQ(tx_drop(f), DropReason::bad_total_length);
}

TEST_F(ValidatorTest, DropsMalformedTransportHeaders) {
    auto f = ipv4_frame(Proto::tcp, "198.18.0.1", 80, "198.18.0.2", 40000);
    f[46] = 0x20;  // TCP data offset 2
    EXPECT_EQ(tx_drop(f), DropReason::bad_transport);
    auto v6 = test::ipv6_udp_frame("2001:2::1", 5000, "2001:2::2", 9);
    v6[20] = wire::ipproto::dest_options;  // an extension header with a length beyond the packet
    v6[54 + 1] = 20;
    EXPECT_EQ(tx_drop(v6), DropReason::bad_transport);
}

TEST_F(ValidatorTest, DropsBroadcastAndMulticast) {
    const wire::MacAddr broadcast{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
    const wire::MacAddr multicast{{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}};
    EXPECT_EQ(tx_drop(ipv4_frame(Proto::udp, "198.18.0.1", 5000, "198.18.0.2", 9, kNicMac, broadcast)),
              DropReason::multicast);
    EXPECT_EQ(tx_drop(ipv4_frame(Proto::udp, "198.18.0.1", 5000, "198.18.0.2", 9, kNicMac, multicast)),
              DropReason::multicast);
}

// A tagged frame would reach a VLAN this interface is not on (review finding 10).
TEST_F(ValidatorTest, DropsVlanTaggedFrames) {
    std::vector<std::uint8_t> tagged = good_udp();
    const std::uint8_t tag[4] = {0x81, 0x00, 0x00, 0x05};  // TPID, then VLAN 5
    tagged.insert(tagged.begin() + 12, tag, tag + 4);
    EXPECT_EQ(tx_drop(tagged), DropReason::vlan_tagged);
    tagged[15] = 0;  // a priority tag (VLAN 0) is a tag too
    EXPECT_EQ(tx_drop(tagged), DropReason::vlan_tagged);
}

TEST_F(ValidatorTest, DropsAForeignSourceMac) {
    EXPECT_EQ(tx_drop(ipv4_frame(Proto::udp, "198.18.0.1", 5000, "198.18.0.2", 9, test::kPeerMac)), DropReason::bad_src_mac);
}

TEST_F(ValidatorTest, DropsNonIpFrames) {
    auto arp = test::from_hex(test::capture::arp_request);
    arp[0] = 0x02;  // unicast, so that the EtherType is what fails
    kNicMac.store(&arp[6]);
    EXPECT_EQ(tx_drop(arp), DropReason::not_ip);
}

TEST_F(ValidatorTest, DropsABadHeaderChecksum) {
    auto f = good_udp();
    f[22] ^= 1;  // TTL, checksum untouched
    EXPECT_EQ(tx_drop(f), DropReason::bad_ip_checksum);
}

TEST_F(ValidatorTest, DropsFragments) {
    auto f = good_udp();
    wire::store_be16(&f[20], 0x2000);  // more fragments
    test::fix_ipv4_checksum(f);
    EXPECT_EQ(tx_drop(f), DropReason::fragment);
    wire::store_be16(&f[20], 0x0010);  // a later fragment
    test::fix_ipv4_checksum(f);
    EXPECT_EQ(tx_drop(f), DropReason::fragment);
}

// A stack may not send IPv6 extension headers (a routing header bounces traffic off
// other hosts; hop-by-hop options load every router), nor a packet with no hops left.
TEST_F(ValidatorTest, DropsIpv6ExtensionHeadersAndHopLimitZero) {
    const auto plain = test::ipv6_udp_frame("2001:2::1", 5000, "2001:2::2", 9);
    // The same datagram behind an 8-byte destination options header (PadN only).
    std::vector<std::uint8_t> with_options(plain.begin(), plain.begin() + 54);
    const std::uint8_t options[8] = {wire::ipproto::udp, 0, 1, 4, 0, 0, 0, 0};
    with_options.insert(with_options.end(), std::begin(options), std::end(options));
    with_options.insert(with_options.end(), plain.begin() + 54, plain.end());
    with_options[14 + 6] = wire::ipproto::dest_options;
    wire::store_be16(&with_options[14 + 4], static_cast<std::uint16_t>(wire::load_be16(&plain[14 + 4]) + 8));
    EXPECT_EQ(tx_drop(with_options), DropReason::ipv6_extension);

    auto no_hops = plain;
    no_hops[14 + 7] = 0;
    EXPECT_EQ(tx_drop(no_hops), DropReason::bad_hop_limit);
    auto ttl0 = good_udp();
    ttl0[22] = 0;
    test::fix_ipv4_checksum(ttl0);
    EXPECT_EQ(tx_drop(ttl0), DropReason::bad_hop_limit);
    EXPECT_EQ(tx_drop(test::ipv6_udp_frame("2001:2::9", 5000, "2001:2::2", 9)), DropReason::src_not_claimed);
}

TEST_F(ValidatorTest, DropsProtocolsOtherThanTcpAndUdp) {
    auto f = good_udp();
    f[23] = wire::ipproto::icmp;
    test::fix_ipv4_checksum(f);
    EXPECT_EQ(tx_drop(f), DropReason::bad_protocol);
}

TEST_F(ValidatorTest, DropsSourcesThePortDoesNotClaim) {
    // Unclaimed port, another port's claim, another protocol, a spoofed address.
    EXPECT_EQ(tx_drop(ipv4_frame(Proto::udp, "198.18.0.1", 5001, "198.18.0.2", 9)), DropReason::src_not_claimed);
    EXPECT_EQ(tx_drop(ipv4_frame(Proto::udp, "198.18.0.1", 6000, "198.18.0.2", 9)), DropReason::src_not_claimed);
    EXPECT_EQ(tx_drop(ipv4_frame(Proto::tcp, "198.18.0.1", 5000, "198.18.0.2", 9)), DropReason::src_not_claimed);
    EXPECT_EQ(tx_drop(ipv4_frame(Proto::udp, "198.18.0.9", 5000, "198.18.0.2", 9)), DropReason::src_not_claimed);
}

TEST_F(ValidatorTest, WildcardClaimCoversEveryLocalSourceButNoOther) {
    ASSERT_TRUE(reg_.add({IPPROTO_UDP, wire::IpAddr::any(wire::IpFamily::v4), 7000}, kSender));
    table_ = reg_.snapshot();
    EXPECT_EQ(tx(ipv4_frame(Proto::udp, "198.18.0.1", 7000, "198.18.0.2", 9)).kind, Verdict::Kind::to_nic);
    EXPECT_EQ(tx_drop(ipv4_frame(Proto::udp, "198.18.0.7", 7000, "198.18.0.2", 9)), DropReason::src_not_claimed);
}

TEST_F(ValidatorTest, ClassifiesFramesFromTheNic) {
    const auto to_claimed = ipv4_frame(Proto::udp, "198.18.0.2", 9, "198.18.0.1", 6000, test::kPeerMac, kNicMac);
    const Verdict v = classify_rx(to_claimed, *table_);
    EXPECT_EQ(v.kind, Verdict::Kind::to_port);
    EXPECT_EQ(v.port, kOther);

    const auto unclaimed = ipv4_frame(Proto::udp, "198.18.0.2", 9, "198.18.0.1", 6001, test::kPeerMac, kNicMac);
    EXPECT_EQ(classify_rx(unclaimed, *table_).reason, DropReason::host_miss);
    EXPECT_EQ(classify_rx(test::from_hex(test::capture::arp_request), *table_).reason, DropReason::host_miss);
    auto broken = to_claimed;
    broken[14] = 0x41;
    EXPECT_EQ(classify_rx(broken, *table_).reason, DropReason::nic_malformed);
}

// An ICMP error goes to the port that sent what it quotes, on that flow's ring; one
// about another host's packet, or an unclaimed one, does not.
TEST_F(ValidatorTest, DeliversAnIcmpErrorToThePortThatSentTheQuotedPacket) {
    const auto sent = ipv4_frame(Proto::udp, "198.18.0.1", 6000, "198.18.0.2", 53);
    const auto error = test::icmp_error_frame(sent, {wire::icmp::dest_unreachable, wire::icmp::port_unreachable, 0},
                                              "198.18.0.2");
    const Verdict v = classify_rx(error, *table_);
    ASSERT_EQ(v.kind, Verdict::Kind::to_port);
    EXPECT_EQ(v.port, kOther);
    const auto reply = ipv4_frame(Proto::udp, "198.18.0.2", 53, "198.18.0.1", 6000, test::kPeerMac, kNicMac);
    EXPECT_EQ(v.flow_hash, classify_rx(reply, *table_).flow_hash);

    const auto sent6 = test::ipv6_udp_frame("2001:2::1", 5000, "2001:2::2", 53);
    const auto ptb = test::icmp_error_frame(sent6, {wire::icmpv6::packet_too_big, 0, 1280}, "2001:2::fe");
    EXPECT_EQ(classify_rx(ptb, *table_).port, kSender);

    const auto unclaimed = ipv4_frame(Proto::udp, "198.18.0.1", 6001, "198.18.0.2", 53);
    const auto stray = test::icmp_error_frame(unclaimed, {wire::icmp::dest_unreachable, 3, 0}, "198.18.0.2");
    EXPECT_EQ(classify_rx(stray, *table_).reason, DropReason::host_miss);
    auto misaddressed = error;  // to another address than the quoted packet's source
    misaddressed[14 + 19] = 9;
    test::fix_ipv4_checksum(misaddressed);
    EXPECT_EQ(classify_rx(misaddressed, *table_).reason, DropReason::host_miss);
}

// What the XDP program leaves to the kernel, the switch refuses too: broadcast and
// multicast to a claimed port, and frames longer than any port buffer may hold.
TEST_F(ValidatorTest, LeavesGroupFramesToTheKernelAndBoundsTheLength) {
    const wire::MacAddr broadcast{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
    const auto to_all = ipv4_frame(Proto::udp, "198.18.0.2", 9, "198.18.0.1", 6000, test::kPeerMac, broadcast);
    EXPECT_EQ(classify_rx(to_all, *table_).reason, DropReason::host_miss);
    EXPECT_TRUE(reg_.add({IPPROTO_UDP, wire::IpAddr::any(wire::IpFamily::v4), 5400}, kOther));
    const auto table = reg_.snapshot();
    const auto subnet_broadcast = ipv4_frame(Proto::udp, "198.18.0.2", 9, "198.18.0.255", 5400, test::kPeerMac, kNicMac);
    EXPECT_EQ(classify_rx(subnet_broadcast, *table).reason, DropReason::host_miss);
    auto jumbo = ipv4_frame(Proto::udp, "198.18.0.2", 9, "198.18.0.1", 6000, test::kPeerMac, kNicMac);
    jumbo.resize(ring::kMaxFrameSize + 1);  // trailing bytes beyond the IP datagram: only the length matters
    EXPECT_EQ(classify_rx(jumbo, *table).reason, DropReason::oversize);
}

TEST_F(ValidatorTest, FlowHashIsStablePerFlowAndSpreadsFlows) {
    std::set<std::uint32_t> rings;
    for (std::uint16_t sport = 1000; sport < 1064; ++sport) {
        const auto f = ipv4_frame(Proto::udp, "198.18.0.2", sport, "198.18.0.1", 6000, test::kPeerMac, kNicMac);
        const Verdict a = classify_rx(f, *table_);
        const Verdict b = classify_rx(f, *table_);
        ASSERT_EQ(a.flow_hash, b.flow_hash);
        rings.insert(a.flow_hash % 4);
    }
    EXPECT_EQ(rings.size(), 4u);
}

TEST(DropReasonNames, AreDistinct) {
    std::set<std::string_view> names;
    for (std::size_t i = 0; i < kDropReasonCount; ++i) names.insert(to_string(static_cast<DropReason>(i)));
    EXPECT_EQ(names.size(), kDropReasonCount);
}

}  // namespace
}  // namespace ms::sw

namespace ms::sw {
namespace {

// Super-segments: the header is checked as a frame's, then the segment's own fields.
class SegmentValidatorTest : public ValidatorTest {
protected:
    // Validates `super` as a chain whose first slot holds `head` bytes of it.
    Verdict seg(const std::vector<std::uint8_t>& super, std::uint16_t gso = 1448, std::size_t head = 200,
                std::uint32_t mtu = 1500) {
        head = std::min(head, super.size());
        wire::HeaderShape shape;
        return validate_segment(wire::Bytes(super).first(head), static_cast<std::uint32_t>(super.size() - head), gso, kSender,
                                TxLink{test::kNicMac, mtu}, *table_, shape);
    }
    DropReason seg_drop(const std::vector<std::uint8_t>& super, std::uint16_t gso = 1448, std::size_t head = 200) {
        const Verdict v = seg(super, gso, head);
        EXPECT_EQ(v.kind, Verdict::Kind::drop);
        return v.reason;
    }
    std::vector<std::uint8_t> good(std::size_t payload = 60000) {
        return test::ipv4_super_segment("198.18.0.1", 80, "198.18.0.2", 40000, payload);
    }
};

TEST_F(SegmentValidatorTest, PassesAGoodSuperSegmentToTheNic) {
    EXPECT_EQ(seg(good()).kind, Verdict::Kind::to_nic);
    EXPECT_EQ(seg(good(), 1448, 1518).kind, Verdict::Kind::to_nic) << "payload in the first slot too";
    EXPECT_EQ(seg(good(100)).kind, Verdict::Kind::to_nic) << "a single segment with its checksum left to the switch";
}

TEST_F(SegmentValidatorTest, ChecksTheHeaderAsAFramesHeader) {
    EXPECT_EQ(seg_drop(test::ipv4_super_segment("198.18.0.1", 81, "198.18.0.2", 40000, 6000)), DropReason::src_not_claimed);
    auto bad_checksum = good();
    bad_checksum[24] ^= 1;
    EXPECT_EQ(seg_drop(bad_checksum), DropReason::bad_ip_checksum);
    auto spoofed_mac = good();
    spoofed_mac[6] ^= 2;
    EXPECT_EQ(seg_drop(spoofed_mac), DropReason::bad_src_mac);
}

TEST_F(SegmentValidatorTest, DropsEverySegmentFieldThatDoesNotHold) {
    auto longer = good();
    longer.push_back(0);  // a byte the IP length does not count
    EXPECT_EQ(seg_drop(longer), DropReason::bad_segment);
    EXPECT_EQ(seg_drop(good(), 1448, 30), DropReason::bad_segment) << "headers beyond the first slot";
    EXPECT_EQ(seg_drop(good(), 0), DropReason::bad_segment) << "gso_size 0";
    EXPECT_EQ(seg_drop(good(), 1518), DropReason::bad_segment) << "segments longer than a frame";
    EXPECT_EQ(seg_drop(good(), 900), DropReason::bad_segment) << "more than kMaxSegmentsPerSuper segments";
    EXPECT_EQ(seg_drop(test::ipv4_super_segment("198.18.0.1", 80, "198.18.0.2", 40000, 6000, wire::tcpflag::syn)),
              DropReason::bad_segment);
    EXPECT_EQ(seg_drop(test::ipv4_super_segment("198.18.0.1", 80, "198.18.0.2", 40000, 6000, wire::tcpflag::rst)),
              DropReason::bad_segment);
    EXPECT_EQ(seg_drop(test::ipv4_super_segment("198.18.0.1", 80, "198.18.0.2", 40000, 0)), DropReason::bad_segment)
        << "no payload";
    auto udp = good();
    udp[14 + 9] = wire::ipproto::udp;
    test::fix_ipv4_checksum(udp);
    EXPECT_EQ(seg_drop(udp), DropReason::bad_segment);
}

// On a 1280-byte link, segments must fit 1280 bytes of IP: a TSO NIC would send larger
// ones as they are.
TEST_F(SegmentValidatorTest, DropsSegmentsLargerThanTheMtu) {
    const Verdict v = seg(good(20000), 1400, 200, 1280);
    EXPECT_EQ(v.kind, Verdict::Kind::drop);
    EXPECT_EQ(v.reason, DropReason::over_mtu);
    // 20 bytes of IPv4 and 32 of TCP with timestamps: 1228 bytes of payload fit 1280.
    EXPECT_EQ(seg(good(20000), 1228, 200, 1280).kind, Verdict::Kind::to_nic);
    EXPECT_EQ(seg(good(20000), 1229, 200, 1280).reason, DropReason::over_mtu);
}

TEST_F(ValidatorTest, DropsFramesLargerThanTheMtu) {
    const auto full = ipv4_frame(Proto::udp, "198.18.0.1", 5000, "198.18.0.2", 9, test::kNicMac, test::kPeerMac, 1514);
    ASSERT_EQ(full.size(), 1514u);
    EXPECT_EQ(validate_tx(full, kSender, TxLink{kNicMac, 1500}, *table_).kind, Verdict::Kind::to_nic);
    const Verdict v = validate_tx(full, kSender, TxLink{kNicMac, 1280}, *table_);
    EXPECT_EQ(v.kind, Verdict::Kind::drop);
    EXPECT_EQ(v.reason, DropReason::over_mtu);
}

}  // namespace
}  // namespace ms::sw
