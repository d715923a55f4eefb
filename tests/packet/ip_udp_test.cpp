// Contract: below TCP (RFC 791, RFC 768, RFC 8200 §4): IPv4 and IPv6 input dropped and counted (fragments, checksums,
 // addresses), UDP, and the marks a socket asks of its IP headers (DSCP, the IPv6 flow label).
#include <gtest/gtest.h>

#include <array>

#include "utcp/stack.hpp"
#include "wire/build.hpp"

namespace ms::utcp::test {
namespace {

const wire::MacAddr kLocalMac{{0x02, 0, 0, 0, 0, 1}};
const wire::MacAddr kPeerMac{{0x02, 0, 0, 0, 0, 2}};
const wire::IpAddr kLocalIp = wire::IpAddr::v4(0xc6120001);
const wire::IpAddr kPeerIp = wire::IpAddr::v4(0xc6120002);

wire::IpAddr v6(std::uint8_t last) {
    std::array<std::uint8_t, 16> b{0x20, 0x01, 0, 2};
    b[15] = last;
    return wire::IpAddr::load_v6(b.data());
}
const wire::IpAddr kLocalIp6 = v6(1);  // 2001:2::1
const wire::IpAddr kPeerIp6 = v6(2);

StackConfig config() {
    StackConfig c;
    c.mac = kLocalMac;
    c.address = kLocalIp;
    c.address6 = kLocalIp6;
    c.resolve = [](const wire::IpAddr& a) {
        return a == kPeerIp || a == kPeerIp6 ? std::optional<wire::MacAddr>(kPeerMac) : std::nullopt;
    };
    return c;
}

// An IPv6 UDP datagram from the peer, behind `extensions` (already chained: the first
// byte of each is its next header; the last one's must be UDP).
std::vector<std::uint8_t> udp6_frame(std::uint16_t dst_port, std::string_view text,
                                     std::uint8_t first_header = wire::ipproto::udp,
                                     const std::vector<std::uint8_t>& extensions = {}) {
    std::vector<std::uint8_t> udp(8 + text.size());
    wire::UdpRepr{.src_port = 5353, .dst_port = dst_port, .payload_len = static_cast<std::uint16_t>(text.size())}.emit(udp);
    std::memcpy(udp.data() + 8, text.data(), text.size());
    wire::store_be16(udp.data() + 6, wire::transport_checksum(kPeerIp6, kLocalIp6, wire::ipproto::udp, udp));
    std::vector<std::uint8_t> f(14 + 40);
    wire::EthernetRepr{kLocalMac, kPeerMac, wire::ethertype::ipv6}.emit(f);
    const auto payload_len = static_cast<std::uint16_t>(extensions.size() + udp.size());
    wire::Ipv6Repr{kPeerIp6, kLocalIp6, first_header, payload_len, 64, 0, 0}.emit(wire::MutBytes(f).subspan(14));
    f.insert(f.end(), extensions.begin(), extensions.end());
    f.insert(f.end(), udp.begin(), udp.end());
    return f;
}

// An IPv4 UDP frame from the peer; `mutate` may spoil it before the checksums.
std::vector<std::uint8_t> udp_frame(std::uint16_t dst_port, std::string_view text,
                                    const std::function<void(wire::Ipv4Repr&)>& mutate = {}) {
    std::vector<std::uint8_t> f(14 + 20 + 8 + text.size());
    wire::Ipv4Repr ip{.src = kPeerIp, .dst = kLocalIp, .protocol = wire::ipproto::udp};
    if (mutate) mutate(ip);
    wire::emit_ipv4_frame(f, {.dst = kLocalMac, .src = kPeerMac}, ip, 8 + text.size(), [&](wire::MutBytes l4) {
        wire::UdpRepr{.src_port = 5353, .dst_port = dst_port, .payload_len = static_cast<std::uint16_t>(text.size())}.emit(
            l4);
        std::memcpy(l4.data() + 8, text.data(), text.size());
    });
    return f;
}

struct Inbox final : UdpHandler {
    void on_datagram(const wire::IpAddr& from, std::uint16_t from_port, std::uint16_t to_port, wire::Bytes p) override {
        got.push_back({from, from_port, to_port, std::string(p.begin(), p.end())});
    }
    struct Datagram {
        wire::IpAddr from;
        std::uint16_t from_port, to_port;
        std::string text;
    };
    std::vector<Datagram> got;
};

TEST(Udp, BoundPortReceivesAndUnboundPortIsCounted) {
    MemoryLink link;
    Stack stack(config(), link, 0, draw_secrets().value());
    Inbox inbox;
    ASSERT_TRUE(stack.udp_bind(53, inbox));
    EXPECT_FALSE(stack.udp_bind(53, inbox)) << "one socket per port";
    stack.input(udp_frame(53, "query"), 0);
    stack.input(udp_frame(54, "nobody"), 0);
    ASSERT_EQ(inbox.got.size(), 1u);
    EXPECT_EQ(inbox.got[0].text, "query");
    EXPECT_EQ(inbox.got[0].from_port, 5353);
    EXPECT_EQ(inbox.got[0].from, kPeerIp);
    EXPECT_EQ(stack.stats().udp_no_socket, 1u);
}

TEST(Udp, SendToGoesOutWithTheNextFlushWithValidChecksumsAndDf) {
    MemoryLink link;
    Stack stack(config(), link, 0, draw_secrets().value());
    ASSERT_TRUE(stack.udp_send(53, kPeerIp, 5353, wire::Bytes(reinterpret_cast<const std::uint8_t*>("answer"), 6)));
    EXPECT_TRUE(link.take().empty()) << "nothing before the batch ends";
    stack.flush(0);
    const auto frames = link.take();
    ASSERT_EQ(frames.size(), 1u);
    auto ip = wire::Ipv4View::parse(wire::Bytes(frames[0]).subspan(14));
    ASSERT_TRUE(ip.ok());
    EXPECT_TRUE(ip->checksum_ok());
    EXPECT_TRUE(ip->dont_fragment());
    EXPECT_TRUE(wire::transport_checksum_ok(ip->src(), ip->dst(), wire::ipproto::udp, ip->payload()));
    auto udp = wire::UdpView::parse(ip->payload());
    ASSERT_TRUE(udp.ok());
    EXPECT_EQ(udp->dst_port(), 5353);
    EXPECT_EQ(std::string(udp->payload().begin(), udp->payload().end()), "answer");
}

TEST(Udp, SendFailsWithoutANextHopOrOverTheMtu) {
    MemoryLink link;
    Stack stack(config(), link, 0, draw_secrets().value());
    EXPECT_FALSE(stack.udp_send(53, wire::IpAddr::v4(0xc6130001), 53, {}));
    EXPECT_EQ(stack.stats().no_route, 1u);
    std::vector<std::uint8_t> big(1500);
    EXPECT_FALSE(stack.udp_send(53, kPeerIp, 53, big));
}

TEST(Ipv6, UdpBothWaysWithExtensionHeadersWalkedAndFragmentsDropped) {
    MemoryLink link;
    Stack stack(config(), link, 0, draw_secrets().value());
    Inbox inbox;
    ASSERT_TRUE(stack.udp_bind(53, inbox));
    stack.input(udp6_frame(53, "plain"), 0);
    // RFC 8200 §4.6: an 8-byte destination options header (PadN) before UDP.
    stack.input(udp6_frame(53, "behind options", wire::ipproto::dest_options, {wire::ipproto::udp, 0, 1, 4, 0, 0, 0, 0}), 0);
    // §4.5: a fragment header (a first fragment, more to come) is never delivered in part.
    stack.input(udp6_frame(53, "a fragment", wire::ipproto::fragment, {wire::ipproto::udp, 0, 0, 1, 0, 0, 0, 7}), 0);
    ASSERT_EQ(inbox.got.size(), 2u);
    EXPECT_EQ(inbox.got[0].text, "plain");
    EXPECT_EQ(inbox.got[1].text, "behind options");
    EXPECT_EQ(inbox.got[1].from, kPeerIp6);
    EXPECT_EQ(stack.stats().fragments, 1u);

    ASSERT_TRUE(stack.udp_send(53, kPeerIp6, 5353, wire::Bytes(reinterpret_cast<const std::uint8_t*>("answer"), 6)));
    stack.flush(0);
    const auto frames = link.take();
    ASSERT_EQ(frames.size(), 1u);
    auto ip = wire::Ipv6View::parse(wire::Bytes(frames[0]).subspan(14));
    ASSERT_TRUE(ip.ok());
    EXPECT_EQ(ip->src(), kLocalIp6);
    EXPECT_EQ(ip->dst(), kPeerIp6);
    EXPECT_EQ(ip->hop_limit(), 64);
    EXPECT_NE(ip->flow_label(), 0u) << "RFC 6437: a flow label per flow";
    EXPECT_TRUE(wire::transport_checksum_ok(ip->src(), ip->dst(), wire::ipproto::udp, ip->upper_payload()));
    std::vector<std::uint8_t> big(1500 - 40 - 8 + 1);
    EXPECT_FALSE(stack.udp_send(53, kPeerIp6, 53, big)) << "over the MTU with IPv6's 40-byte header";
}

TEST(Ipv4, FragmentsAreDroppedAndCountedNeverDeliveredInPart) {
    MemoryLink link;
    Stack stack(config(), link, 0, draw_secrets().value());
    Inbox inbox;
    ASSERT_TRUE(stack.udp_bind(53, inbox));
    // A first fragment (MF set) carries a whole UDP header and part of the data.
    auto frame = udp_frame(53, "part of a datagram", [](wire::Ipv4Repr& ip) { ip.dont_fragment = false; });
    frame[14 + 6] |= 0x20;  // MF
    wire::store_be16(frame.data() + 14 + 10, 0);
    wire::store_be16(frame.data() + 14 + 10, wire::internet_checksum(wire::Bytes(frame).subspan(14, 20)));
    stack.input(frame, 0);
    EXPECT_TRUE(inbox.got.empty());
    EXPECT_EQ(stack.stats().fragments, 1u);
}

TEST(Ipv4, BadHeaderChecksumOtherAddressAndGarbageAreCounted) {
    MemoryLink link;
    Stack stack(config(), link, 0, draw_secrets().value());
    Inbox inbox;
    ASSERT_TRUE(stack.udp_bind(53, inbox));
    auto bad = udp_frame(53, "x");
    bad[14 + 10] ^= 0xff;
    stack.input(bad, 0);
    stack.input(udp_frame(53, "x", [](wire::Ipv4Repr& ip) { ip.dst = wire::IpAddr::v4(0xc6120009); }), 0);
    const std::uint8_t garbage[7] = {1, 2, 3};
    stack.input(garbage, 0);
    EXPECT_TRUE(inbox.got.empty());
    EXPECT_EQ(stack.stats().bad_checksum, 1u);
    EXPECT_EQ(stack.stats().not_our_address, 1u);
    EXPECT_EQ(stack.stats().malformed, 1u);
}

wire::Bytes text(std::string_view s) { return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()}; }

TEST(IpMarks, DatagramsCarryTheAskedDscpAndFlowLabelBesideTheStacksOwn) {
    MemoryLink link;
    Stack stack(config(), link, 0, draw_secrets().value());
    const IpMarks marks{.dscp = 0xb8, .flow_label = 0x12345};  // EF, as IPV6_TCLASS 0xb8 asks
    ASSERT_TRUE(stack.udp_send(53, kPeerIp6, 53, text("marked"), marks));
    ASSERT_TRUE(stack.udp_send(53, kPeerIp6, 53, text("unlabelled"), IpMarks{.flow_label = 0}));
    ASSERT_TRUE(stack.udp_send(53, kPeerIp6, 53, text("plain")));
    ASSERT_TRUE(stack.udp_send(53, kPeerIp, 53, text("marked v4"), IpMarks{.dscp = 0x2b}));
    ASSERT_TRUE(stack.udp_send(53, kPeerIp, 53, text("ect v4"), IpMarks{.dscp = 0x2b, .ecn = wire::ecn::ect0}));
    stack.flush(0);
    const auto frames = link.take();
    ASSERT_EQ(frames.size(), 5u);
    std::vector<wire::Ipv6View> v6;
    for (int i = 0; i < 3; ++i) {
        auto ip = wire::Ipv6View::parse(wire::Bytes(frames[i]).subspan(14));
        ASSERT_TRUE(ip.ok());
        v6.push_back(*ip);
    }
    EXPECT_EQ(v6[0].traffic_class(), 0xb8);
    EXPECT_EQ(v6[0].flow_label(), 0x12345u);
    EXPECT_EQ(v6[1].flow_label(), 0u) << "IPV6_AUTOFLOWLABEL off: no label";
    EXPECT_EQ(v6[2].traffic_class(), 0);
    EXPECT_NE(v6[2].flow_label(), 0u) << "the stack's own label when none is asked";
    auto v4 = wire::Ipv4View::parse(wire::Bytes(frames[3]).subspan(14));
    ASSERT_TRUE(v4.ok());
    EXPECT_EQ(v4->dscp_ecn(), 0x28) << "the DSCP alone: stray low bits of dscp are not ECN bits";
    EXPECT_TRUE(v4->checksum_ok());
    auto ect = wire::Ipv4View::parse(wire::Bytes(frames[4]).subspan(14));
    ASSERT_TRUE(ect.ok());
    EXPECT_EQ(ect->dscp_ecn(), 0x28 | wire::ecn::ect0) << "a datagram keeps the application's ECN bits (RFC 9000 §13.4)";
}

TEST(IpMarks, EverySegmentOfAConnectionCarriesItsMarksWithTheStacksEcnBits) {
    MemoryLink link;
    StackConfig c = config();
    Stack stack(c, link, 0, draw_secrets().value());
    ConnOptions options = c.defaults;
    options.marks = {.dscp = 0x28, .ecn = wire::ecn::ce, .flow_label = 0xabcde};  // TCP ignores the ecn
    Connection* conn = stack.connect(40000, kPeerIp6, 80, nullptr, &options).value();
    ASSERT_NE(conn, nullptr);
    stack.flush(0);
    auto frames = link.take();
    ASSERT_EQ(frames.size(), 1u);
    auto syn = wire::Ipv6View::parse(wire::Bytes(frames[0]).subspan(14));
    ASSERT_TRUE(syn.ok());
    EXPECT_EQ(syn->traffic_class(), 0x28);
    EXPECT_EQ(syn->flow_label(), 0xabcdeu);

    options.marks.dscp = 0x48;  // IPV6_TCLASS again, on the connection
    conn->set_options(options);
    stack.flush(0);
    EXPECT_TRUE(link.take().empty());
    const std::uint64_t timeout = stack.poll_at();
    stack.advance(timeout);  // the SYN again, after its timeout
    stack.flush(timeout);
    frames = link.take();
    ASSERT_EQ(frames.size(), 1u);
    auto again = wire::Ipv6View::parse(wire::Bytes(frames[0]).subspan(14));
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->traffic_class(), 0x48);
    EXPECT_EQ(again->flow_label(), 0xabcdeu);
}

}  // namespace
}  // namespace ms::utcp::test
