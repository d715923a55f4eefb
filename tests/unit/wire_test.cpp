// Hex round trips over captured frames, and one test per rejection reason.
#include <gtest/gtest.h>

#include <random>

#include "captures.hpp"
#include "frames.hpp"
#include "hex.hpp"
#include "wire/checksum.hpp"
#include "wire/ethernet.hpp"
#include "wire/frame.hpp"
#include "wire/icmp.hpp"
#include "wire/ip.hpp"
#include "wire/transport.hpp"

namespace ms::wire {
namespace {

using test::from_hex;
namespace capture = test::capture;

IpAddr ip(const char* text) {
    IpAddr a;
    EXPECT_TRUE(parse_ip(text, a)) << text;
    return a;
}

Bytes l3_of(const std::vector<std::uint8_t>& frame) { return Bytes(frame).subspan(kEthernetHeaderLen); }
Bytes l4_of(const std::vector<std::uint8_t>& frame) { return l3_of(frame).subspan(kIpv4MinHeaderLen); }

// ---- Ethernet and ARP ----

TEST(Ethernet, ParsesAndEmitsCapturedHeader) {
    const auto frame = from_hex(capture::arp_request);
    auto eth = EthernetView::parse(frame);
    ASSERT_TRUE(eth);
    EXPECT_TRUE(eth->dst().is_group());
    EXPECT_EQ(eth->src().to_string(), "2a:b4:38:4f:60:8e");
    EXPECT_EQ(eth->ethertype(), ethertype::arp);
    EXPECT_FALSE(eth->has_vlan());
    EXPECT_EQ(eth->payload().size(), kArpLen);

    std::vector<std::uint8_t> out(kEthernetHeaderLen);
    EthernetRepr{eth->dst(), eth->src(), eth->ethertype()}.emit(out);
    EXPECT_EQ(out, std::vector<std::uint8_t>(frame.begin(), frame.begin() + 14));
}

TEST(Ethernet, ParsesOneVlanTag) {
    auto frame = from_hex(capture::udp);
    const std::uint8_t tag[] = {0x81, 0x00, 0x20, 0x64};  // PCP 1, VLAN 100
    frame.insert(frame.begin() + 12, std::begin(tag), std::end(tag));
    auto eth = EthernetView::parse(frame);
    ASSERT_TRUE(eth);
    EXPECT_TRUE(eth->has_vlan());
    EXPECT_EQ(eth->vlan_id(), 100);
    EXPECT_EQ(eth->ethertype(), ethertype::ipv4);
    EXPECT_EQ(eth->header_len(), 18u);

    std::vector<std::uint8_t> out(18);
    EthernetRepr{eth->dst(), eth->src(), ethertype::ipv4, 100, true}.emit(out);
    out[14] |= 0x20;  // the repr emits PCP 0
    EXPECT_EQ(out, std::vector<std::uint8_t>(frame.begin(), frame.begin() + 18));
}

TEST(Ethernet, RejectsTruncatedHeaders) {
    const auto frame = from_hex(capture::udp);
    EXPECT_EQ(EthernetView::parse(Bytes(frame).first(13)).error(), ParseError::truncated);
    auto tagged = frame;
    tagged[12] = 0x81;
    tagged[13] = 0x00;
    EXPECT_EQ(EthernetView::parse(Bytes(tagged).first(17)).error(), ParseError::truncated);
}

TEST(Arp, RoundTripsCapturedRequest) {
    const auto frame = from_hex(capture::arp_request);
    auto arp = ArpView::parse(Bytes(frame).subspan(14));
    ASSERT_TRUE(arp);
    EXPECT_EQ(arp->operation(), 1);
    EXPECT_EQ(arp->sender_ip(), ip("198.18.0.1"));
    EXPECT_EQ(arp->target_ip(), ip("198.18.0.2"));
    EXPECT_EQ(arp->sender_mac().to_string(), "2a:b4:38:4f:60:8e");

    std::vector<std::uint8_t> out(kArpLen);
    ArpRepr{arp->operation(), arp->sender_mac(), arp->sender_ip(), arp->target_mac(), arp->target_ip()}.emit(out);
    EXPECT_EQ(out, std::vector<std::uint8_t>(frame.begin() + 14, frame.end()));
}

TEST(Arp, RejectsTruncatedAndNonEthernet) {
    auto frame = from_hex(capture::arp_request);
    EXPECT_EQ(ArpView::parse(Bytes(frame).subspan(14, 27)).error(), ParseError::truncated);
    frame[14 + 4] = 8;  // hardware address length
    EXPECT_EQ(ArpView::parse(Bytes(frame).subspan(14)).error(), ParseError::bad_hardware_type);
}

// ---- IPv4 ----

TEST(Ipv4, RoundTripsCapturedHeader) {
    const auto frame = from_hex(capture::tcp_syn);
    auto v = Ipv4View::parse(l3_of(frame));
    ASSERT_TRUE(v);
    EXPECT_EQ(v->header_len(), 20u);
    EXPECT_EQ(v->total_length(), 60);
    EXPECT_TRUE(v->dont_fragment());
    EXPECT_FALSE(v->is_fragment());
    EXPECT_EQ(v->ttl(), 64);
    EXPECT_EQ(v->protocol(), ipproto::tcp);
    EXPECT_EQ(v->src(), ip("198.18.0.1"));
    EXPECT_EQ(v->dst(), ip("198.18.0.2"));
    EXPECT_TRUE(v->checksum_ok());

    Ipv4Repr r;
    r.src = v->src();
    r.dst = v->dst();
    r.protocol = v->protocol();
    r.payload_len = 40;
    r.ident = v->ident();
    std::vector<std::uint8_t> out(20);
    r.emit(out);
    EXPECT_EQ(out, std::vector<std::uint8_t>(frame.begin() + 14, frame.begin() + 34));
}

TEST(Ipv4, SkipsOptionsByHeaderLength) {
    auto frame = from_hex(capture::udp);
    // Insert a Router Alert option (RFC 2113) and fix IHL, total length and checksum.
    const std::uint8_t option[] = {0x94, 0x04, 0x00, 0x00};
    frame.insert(frame.begin() + 34, std::begin(option), std::end(option));
    frame[14] = 0x46;
    store_be16(&frame[16], load_be16(&frame[16]) + 4);
    store_be16(&frame[24], 0);
    store_be16(&frame[24], internet_checksum(Bytes(frame).subspan(14, 24)));

    auto v = Ipv4View::parse(l3_of(frame));
    ASSERT_TRUE(v);
    EXPECT_EQ(v->header_len(), 24u);
    EXPECT_EQ(v->options().size(), 4u);
    EXPECT_EQ(v->options()[0], 0x94);
    EXPECT_TRUE(v->checksum_ok());
    auto udp = UdpView::parse(v->payload());
    ASSERT_TRUE(udp);
    EXPECT_EQ(udp->dst_port(), 7);
}

TEST(Ipv4, PayloadExcludesEthernetPadding) {
    auto frame = from_hex(capture::udp);
    frame.resize(60, 0);  // padded to the Ethernet minimum
    auto v = Ipv4View::parse(l3_of(frame));
    ASSERT_TRUE(v);
    EXPECT_EQ(v->payload().size(), 18u);
}

TEST(Ipv4, RejectsEachMalformation) {
    const auto good = from_hex(capture::udp);
    EXPECT_EQ(Ipv4View::parse(l3_of(good).first(19)).error(), ParseError::truncated);

    auto bad = good;
    bad[14] = 0x65;
    EXPECT_EQ(Ipv4View::parse(l3_of(bad)).error(), ParseError::bad_version);
    bad[14] = 0x44;
    EXPECT_EQ(Ipv4View::parse(l3_of(bad)).error(), ParseError::bad_header_length);
    bad[14] = 0x4f;  // 60 bytes of header in a 38-byte packet
    EXPECT_EQ(Ipv4View::parse(l3_of(bad)).error(), ParseError::bad_header_length);

    bad = good;
    store_be16(&bad[16], 39);  // one byte more than the frame holds
    EXPECT_EQ(Ipv4View::parse(l3_of(bad)).error(), ParseError::bad_total_length);
    store_be16(&bad[16], 19);  // less than the header
    EXPECT_EQ(Ipv4View::parse(l3_of(bad)).error(), ParseError::bad_total_length);
}

TEST(Ipv4, DetectsBadChecksumAndFragments) {
    auto frame = from_hex(capture::udp);
    frame[22] = 63;  // TTL changed, checksum not updated
    auto v = Ipv4View::parse(l3_of(frame));
    ASSERT_TRUE(v);
    EXPECT_FALSE(v->checksum_ok());

    frame = from_hex(capture::udp);
    store_be16(&frame[20], 0x2000);  // MF, offset 0: a first fragment
    EXPECT_TRUE(Ipv4View::parse(l3_of(frame))->is_fragment());
    store_be16(&frame[20], 0x0003);  // offset 24 bytes: a later fragment
    auto later = Ipv4View::parse(l3_of(frame));
    EXPECT_TRUE(later->is_fragment());
    EXPECT_EQ(later->fragment_offset(), 24);
}

// ---- IPv6 ----

TEST(Ipv6, RoundTripsCapturedHeader) {
    const auto frame = from_hex(capture::ipv6_udp);
    auto v = Ipv6View::parse(l3_of(frame));
    ASSERT_TRUE(v);
    EXPECT_EQ(v->payload_length(), 19);
    EXPECT_EQ(v->next_header(), ipproto::udp);
    EXPECT_EQ(v->upper_protocol(), ipproto::udp);
    EXPECT_EQ(v->hop_limit(), 64);
    EXPECT_EQ(v->flow_label(), 0xd163bu);
    EXPECT_EQ(v->src(), ip("2001:2::1"));
    EXPECT_EQ(v->dst(), ip("2001:2::2"));
    EXPECT_FALSE(v->is_fragment());

    Ipv6Repr r{v->src(), v->dst(), ipproto::udp, 19, 64, v->traffic_class(), v->flow_label()};
    std::vector<std::uint8_t> out(40);
    r.emit(out);
    EXPECT_EQ(out, std::vector<std::uint8_t>(frame.begin() + 14, frame.begin() + 54));
}

TEST(Ipv6, FindsUpperProtocolBehindHopByHop) {
    const auto frame = from_hex(capture::ipv6_hop_by_hop);
    auto v = Ipv6View::parse(l3_of(frame));
    ASSERT_TRUE(v);
    EXPECT_EQ(v->next_header(), ipproto::hop_by_hop);
    EXPECT_EQ(v->upper_protocol(), ipproto::icmpv6);
    EXPECT_EQ(v->upper_payload().size(), 56u - 8u);
    EXPECT_EQ(v->upper_payload()[0], 143);  // MLDv2 report
}

TEST(Ipv6, TellsFirstFragmentFromLater) {
    auto frame = from_hex(capture::ipv6_udp);
    // Put a fragment header between IPv6 and UDP.
    std::uint8_t fragment[8] = {ipproto::udp, 0, 0x00, 0x01, 0, 0, 0, 42};  // offset 0, M set
    frame.insert(frame.begin() + 54, std::begin(fragment), std::end(fragment));
    frame[20] = ipproto::fragment;
    store_be16(&frame[18], 19 + 8);
    auto first = Ipv6View::parse(l3_of(frame));
    ASSERT_TRUE(first);
    EXPECT_TRUE(first->is_first_fragment());
    EXPECT_EQ(first->upper_protocol(), ipproto::udp);

    store_be16(&frame[54 + 2], 0x0010);  // offset 16 bytes
    auto later = Ipv6View::parse(l3_of(frame));
    ASSERT_TRUE(later);
    EXPECT_TRUE(later->is_fragment());
    EXPECT_FALSE(later->is_first_fragment());
}

TEST(Ipv6, RejectsEachMalformation) {
    const auto good = from_hex(capture::ipv6_udp);
    EXPECT_EQ(Ipv6View::parse(l3_of(good).first(39)).error(), ParseError::truncated);
    auto bad = good;
    bad[14] = 0x40;
    EXPECT_EQ(Ipv6View::parse(l3_of(bad)).error(), ParseError::bad_version);
    bad = good;
    store_be16(&bad[18], 20);
    EXPECT_EQ(Ipv6View::parse(l3_of(bad)).error(), ParseError::bad_total_length);

    auto hbh = from_hex(capture::ipv6_hop_by_hop);
    hbh[55] = 10;  // hop-by-hop claims 88 bytes
    EXPECT_EQ(Ipv6View::parse(l3_of(hbh)).error(), ParseError::bad_extension);
}

// ---- TCP ----

TEST(Tcp, RoundTripsCapturedSynWithEveryOption) {
    const auto frame = from_hex(capture::tcp_syn);
    auto tcp = TcpView::parse(l4_of(frame));
    ASSERT_TRUE(tcp);
    EXPECT_EQ(tcp->src_port(), 33298);
    EXPECT_EQ(tcp->dst_port(), 8080);
    EXPECT_EQ(tcp->seq(), 1665150855u);
    EXPECT_EQ(tcp->flags(), tcpflag::syn);
    EXPECT_EQ(tcp->window(), 64240);
    EXPECT_EQ(tcp->header_len(), 40u);
    const TcpOptions& o = tcp->options();
    EXPECT_EQ(o.mss, 1460);
    EXPECT_TRUE(o.sack_permitted);
    EXPECT_EQ(o.window_scale, 10);
    ASSERT_TRUE(o.timestamps);
    EXPECT_EQ(o.timestamps->value, 822420083u);
    EXPECT_EQ(o.timestamps->echo_reply, 0u);
    EXPECT_TRUE(transport_checksum_ok(ip("198.18.0.1"), ip("198.18.0.2"), ipproto::tcp, l4_of(frame)));

    TcpRepr r{tcp->src_port(), tcp->dst_port(), tcp->seq(), tcp->ack(), tcp->flags(), tcp->window(), 0, o};
    std::vector<std::uint8_t> out(r.header_len());
    r.emit(out);
    store_be16(&out[16], transport_checksum(ip("198.18.0.1"), ip("198.18.0.2"), ipproto::tcp, out));
    EXPECT_EQ(out, std::vector<std::uint8_t>(frame.begin() + 34, frame.end()));
}

TEST(Tcp, RoundTripsCapturedDataSegment) {
    const auto frame = from_hex(capture::tcp_data);
    auto tcp = TcpView::parse(l4_of(frame));
    ASSERT_TRUE(tcp);
    EXPECT_TRUE(tcp->has(tcpflag::psh) && tcp->has(tcpflag::ack));
    EXPECT_EQ(std::string(tcp->payload().begin(), tcp->payload().end()), "hello");
    EXPECT_EQ(tcp->options().timestamps, (Timestamps{822420083u, 3158797420u}));
    EXPECT_FALSE(tcp->options().mss);
    EXPECT_TRUE(transport_checksum_ok(ip("198.18.0.1"), ip("198.18.0.2"), ipproto::tcp, l4_of(frame)));

    TcpRepr r{tcp->src_port(), tcp->dst_port(), tcp->seq(), tcp->ack(), tcp->flags(), tcp->window(), 0, tcp->options()};
    std::vector<std::uint8_t> out(r.header_len());
    r.emit(out);
    EXPECT_EQ(std::vector<std::uint8_t>(out.begin() + 20, out.end()),
              std::vector<std::uint8_t>(frame.begin() + 54, frame.begin() + 66));
}

TEST(Tcp, RoundTripsSackBlocksAndFastOpenCookie) {
    TcpRepr r;
    r.src_port = 1;
    r.dst_port = 2;
    r.flags = tcpflag::ack;
    r.options.sack_count = 3;
    r.options.sack_blocks[0] = {100, 200};
    r.options.sack_blocks[1] = {300, 400};
    r.options.sack_blocks[2] = {0xfffffff0u, 0x10};
    FastOpenCookie cookie;
    cookie.size = 8;
    for (std::uint8_t i = 0; i < 8; ++i) cookie.bytes[i] = static_cast<std::uint8_t>(0xa0 + i);
    r.options.fast_open = cookie;
    std::vector<std::uint8_t> out(r.header_len());
    ASSERT_LE(out.size(), 60u);
    r.emit(out);
    auto parsed = TcpView::parse(out);
    ASSERT_TRUE(parsed) << to_string(parsed.error());
    EXPECT_EQ(parsed->options(), r.options);
}

TEST(Tcp, SkipsUnknownOptionsAndStopsAtEol) {
    // kind 254 (experimental, length 4), then EOL, then garbage that must be ignored.
    const auto opts = from_hex("fe04abcd 00 ffffff");
    auto o = TcpOptions::parse(opts);
    ASSERT_TRUE(o);
    EXPECT_EQ(*o, TcpOptions{});
}

TEST(Tcp, RejectsEachMalformation) {
    const auto frame = from_hex(capture::tcp_syn);
    const Bytes seg = l4_of(frame);
    EXPECT_EQ(TcpView::parse(seg.first(19)).error(), ParseError::truncated);
    auto bad = std::vector<std::uint8_t>(seg.begin(), seg.end());
    bad[12] = 0x40;  // data offset 4
    EXPECT_EQ(TcpView::parse(bad).error(), ParseError::bad_data_offset);
    bad[12] = 0xb0;  // 44 bytes of header in 40
    EXPECT_EQ(TcpView::parse(bad).error(), ParseError::bad_data_offset);

    auto option_error = [](const char* hex) { return TcpOptions::parse(from_hex(hex)).error(); };
    EXPECT_EQ(option_error("0201"), ParseError::bad_option);          // length below 2
    EXPECT_EQ(option_error("020405"), ParseError::bad_option);        // overruns the header
    EXPECT_EQ(option_error("02"), ParseError::bad_option);            // no length byte
    EXPECT_EQ(option_error("0203050000"), ParseError::bad_option);    // MSS with length 3
    EXPECT_EQ(option_error("030203"), ParseError::bad_option);        // window scale with length 2
    EXPECT_EQ(option_error("0506000000000000"), ParseError::bad_option);  // SACK of 4 bytes
    EXPECT_EQ(option_error("080800000000000000"), ParseError::bad_option);  // timestamps of 6
    EXPECT_EQ(option_error("2203aa"), ParseError::bad_option);        // Fast Open cookie of 1 byte
}

// ---- UDP and ICMP ----

TEST(Udp, RoundTripsCapturedDatagram) {
    const auto frame = from_hex(capture::udp);
    auto udp = UdpView::parse(l4_of(frame));
    ASSERT_TRUE(udp);
    EXPECT_EQ(udp->src_port(), 36523);
    EXPECT_EQ(udp->dst_port(), 7);
    EXPECT_EQ(udp->length(), 18);
    EXPECT_EQ(std::string(udp->payload().begin(), udp->payload().end()), "multistack");
    EXPECT_TRUE(transport_checksum_ok(ip("198.18.0.1"), ip("198.18.0.2"), ipproto::udp, l4_of(frame)));

    std::vector<std::uint8_t> out(l4_of(frame).begin(), l4_of(frame).end());
    UdpRepr{36523, 7, 10}.emit(out);
    store_be16(&out[6], transport_checksum(ip("198.18.0.1"), ip("198.18.0.2"), ipproto::udp, out));
    EXPECT_EQ(out, std::vector<std::uint8_t>(l4_of(frame).begin(), l4_of(frame).end()));
}

TEST(Udp, Ipv6ChecksumUsesThePseudoHeader) {
    const auto frame = from_hex(capture::ipv6_udp);
    const Bytes l4 = Bytes(frame).subspan(54);
    EXPECT_TRUE(transport_checksum_ok(ip("2001:2::1"), ip("2001:2::2"), ipproto::udp, l4));
    EXPECT_FALSE(transport_checksum_ok(ip("2001:2::1"), ip("2001:2::3"), ipproto::udp, l4));
}

TEST(Udp, RejectsEachMalformation) {
    const auto frame = from_hex(capture::udp);
    EXPECT_EQ(UdpView::parse(l4_of(frame).first(7)).error(), ParseError::truncated);
    auto bad = std::vector<std::uint8_t>(l4_of(frame).begin(), l4_of(frame).end());
    store_be16(&bad[4], 7);
    EXPECT_EQ(UdpView::parse(bad).error(), ParseError::bad_total_length);
    store_be16(&bad[4], 19);
    EXPECT_EQ(UdpView::parse(bad).error(), ParseError::bad_total_length);
}

TEST(Icmp, ParsesCapturedUnreachableAndEmitsEcho) {
    const auto frame = from_hex(capture::icmp_unreachable);
    auto icmp = IcmpV4View::parse(l4_of(frame));
    ASSERT_TRUE(icmp);
    EXPECT_EQ(icmp->type(), 3);
    EXPECT_EQ(icmp->code(), 3);
    EXPECT_TRUE(icmp->checksum_ok());
    EXPECT_EQ(IcmpV4View::parse(l4_of(frame).first(7)).error(), ParseError::truncated);

    const auto echo_frame = from_hex(capture::icmp_echo);
    auto echo = IcmpV4View::parse(l4_of(echo_frame));
    ASSERT_TRUE(echo);
    EXPECT_EQ(echo->type(), 8);
    EXPECT_EQ(echo->ident(), 8449);
    EXPECT_EQ(echo->sequence(), 1);
    std::vector<std::uint8_t> out(l4_of(echo_frame).begin(), l4_of(echo_frame).end());
    IcmpV4Repr{8, 0, 8449, 1}.emit(out, out.size() - kIcmpHeaderLen);
    EXPECT_EQ(out, std::vector<std::uint8_t>(l4_of(echo_frame).begin(), l4_of(echo_frame).end()));
}

TEST(Icmp, ParsesErrorsAndTheTupleTheyQuote) {
    const auto sent = test::ipv4_frame(pktgen::Proto::tcp, "198.18.0.1", 80, "198.18.1.2", 40000);
    const auto too_big = test::icmp_error_frame(sent, {icmp::dest_unreachable, icmp::fragmentation_needed, 1280},
                                                "198.18.0.254");
    const auto e = parse_icmp_error(l4_of(too_big));
    ASSERT_TRUE(e) << to_string(e.error());
    EXPECT_TRUE(IcmpV4View::parse(l4_of(too_big))->checksum_ok());
    EXPECT_EQ(e->kind, IcmpErrorKind::packet_too_big);
    EXPECT_EQ(e->mtu, 1280u);
    EXPECT_EQ(e->quoted.src, test::ip("198.18.0.1"));
    EXPECT_EQ(e->quoted.dst, test::ip("198.18.1.2"));
    EXPECT_EQ(e->quoted.protocol, ipproto::tcp);
    EXPECT_EQ(e->quoted.src_port, 80);
    EXPECT_EQ(e->quoted.dst_port, 40000);
    EXPECT_EQ(e->quoted.tcp_seq, load_be32(&sent[14 + 20 + 4]));

    const auto kinds = {std::pair{icmp::port_unreachable, IcmpErrorKind::port_unreachable},
                        std::pair{icmp::host_unreachable, IcmpErrorKind::host_unreachable},
                        std::pair{std::uint8_t{13}, IcmpErrorKind::prohibited}};
    for (const auto& [code, kind] : kinds) {
        const auto f = test::icmp_error_frame(sent, {icmp::dest_unreachable, code, 0}, "198.18.0.254");
        EXPECT_EQ(parse_icmp_error(l4_of(f))->kind, kind);
    }
    const auto ttl = test::icmp_error_frame(sent, {icmp::time_exceeded, 0, 0}, "198.18.0.254");
    EXPECT_EQ(parse_icmp_error(l4_of(ttl))->kind, IcmpErrorKind::time_exceeded);

    // RFC 4443 §3.2, over IPv6, with its pseudo-header checksum.
    const auto sent6 = test::ipv6_udp_frame("2001:2::1", 5000, "2001:2:0:1::2", 53);
    const auto ptb = test::icmp_error_frame(sent6, {icmpv6::packet_too_big, 0, 1400}, "2001:2::fe");
    auto ip6 = Ipv6View::parse(wire::Bytes(ptb).subspan(14));
    ASSERT_TRUE(ip6);
    EXPECT_TRUE(icmpv6_checksum_ok(ip6->src(), ip6->dst(), ip6->upper_payload()));
    const auto e6 = parse_icmpv6_error(ip6->upper_payload());
    ASSERT_TRUE(e6) << to_string(e6.error());
    EXPECT_EQ(e6->kind, IcmpErrorKind::packet_too_big);
    EXPECT_EQ(e6->mtu, 1400u);
    EXPECT_EQ(e6->quoted.src, test::ip("2001:2::1"));
    EXPECT_EQ(e6->quoted.src_port, 5000);
    EXPECT_EQ(e6->quoted.protocol, ipproto::udp);
}

TEST(Icmp, RefusesWhatIsNoErrorAboutTcpOrUdpAndQuotesCutShort) {
    const auto echo_frame = from_hex(capture::icmp_echo);
    EXPECT_EQ(parse_icmp_error(l4_of(echo_frame)).error(), ParseError::unsupported);
    const auto sent = test::ipv4_frame(pktgen::Proto::tcp, "198.18.0.1", 80, "198.18.1.2", 40000);
    const auto error = test::icmp_error_frame(sent, {icmp::dest_unreachable, icmp::port_unreachable, 0}, "198.18.0.254");
    const wire::Bytes message = l4_of(error);
    EXPECT_EQ(parse_icmp_error(message.first(8 + 20 + 7)).error(), ParseError::truncated);
    EXPECT_EQ(parse_icmp_error(message.first(8 + 19)).error(), ParseError::truncated);
    auto odd = std::vector<std::uint8_t>(message.begin(), message.end());
    odd[8] = 0x44;  // IHL 4
    EXPECT_EQ(parse_icmp_error(odd).error(), ParseError::bad_header_length);
    odd[8] = 0x45;
    odd[8 + 9] = ipproto::icmp;  // an error about an ICMP message
    EXPECT_EQ(parse_icmp_error(odd).error(), ParseError::unsupported);
    odd[8 + 9] = ipproto::tcp;
    odd[8 + 7] = 0x10;  // a later fragment: no ports in it
    EXPECT_EQ(parse_icmp_error(odd).error(), ParseError::unsupported);
}

// ---- Checksum ----

std::uint16_t reference_checksum(Bytes data) {
    std::uint32_t sum = 0;
    for (std::size_t i = 0; i + 1 < data.size(); i += 2) sum += (data[i] << 8) | data[i + 1];
    if (data.size() % 2) sum += data.back() << 8;
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<std::uint16_t>(~sum);
}

TEST(Checksum, MatchesRfc1071Example) {
    // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
    const auto data = from_hex("0001f203f4f5f6f7");
    EXPECT_EQ(ones_sum(data), 0xddf2);
    EXPECT_EQ(internet_checksum(data), 0x220d);
}

TEST(Checksum, MatchesReferenceForEveryLengthAndAlignment) {
    std::mt19937 rng(1);
    std::vector<std::uint8_t> buf(1600);
    for (auto& b : buf) b = static_cast<std::uint8_t>(rng());
    for (std::size_t offset = 0; offset < 8; ++offset) {
        for (std::size_t len = 0; len < 300; ++len) {
            const Bytes data = Bytes(buf).subspan(offset, len);
            ASSERT_EQ(internet_checksum(data), reference_checksum(data)) << offset << "+" << len;
        }
    }
    EXPECT_EQ(internet_checksum(buf), reference_checksum(buf));
}

TEST(Checksum, IncrementalUpdateMatchesRecomputation) {
    std::mt19937 rng(2);
    std::vector<std::uint8_t> buf(64);
    for (int round = 0; round < 1000; ++round) {
        for (auto& b : buf) b = static_cast<std::uint8_t>(rng());
        const std::uint16_t before = internet_checksum(buf);
        const std::uint32_t old_value = load_be32(&buf[20]);
        const auto new_value = static_cast<std::uint32_t>(rng());
        store_be32(&buf[20], new_value);
        const std::uint16_t updated = checksum_update32(before, old_value, new_value);
        // 0x0000 and 0xffff are both zero in ones' complement (RFC 1624 §3).
        const std::uint16_t full = internet_checksum(buf);
        EXPECT_TRUE(updated == full || (updated ^ full) == 0xffff) << round;
    }
}

TEST(Checksum, UdpZeroIsSentAsAllOnes) {
    // A datagram whose checksum computes to zero: solve for the payload word.
    const IpAddr src = IpAddr::v4(0);
    const IpAddr dst = IpAddr::v4(0);
    std::vector<std::uint8_t> seg(10, 0);
    UdpRepr{0, 0, 2}.emit(seg);
    const std::uint16_t c = transport_checksum(src, dst, ipproto::udp, seg);
    store_be16(&seg[8], c);  // makes the sum 0xffff, so the checksum computes to 0
    EXPECT_EQ(transport_checksum(src, dst, ipproto::udp, seg), 0xffff);
}

// ---- Whole frames ----

TEST(ParseFrame, FindsPortsOfTcpUdpAndIpv6) {
    ParsedFrame f;
    const auto syn = from_hex(capture::tcp_syn);
    ASSERT_TRUE(parse_frame(syn, f));
    EXPECT_TRUE(f.has_ports);
    EXPECT_EQ(f.protocol, ipproto::tcp);
    EXPECT_EQ(f.src_port, 33298);
    EXPECT_EQ(f.dst_port, 8080);
    EXPECT_EQ(f.l3_offset, 14);
    EXPECT_EQ(f.l3_length, 60);
    EXPECT_EQ(f.l4_offset, 34);

    ParsedFrame g;
    ASSERT_TRUE(parse_frame(from_hex(capture::ipv6_udp), g));
    EXPECT_TRUE(g.has_ports);
    EXPECT_EQ(g.dst_ip, ip("2001:2::2"));
    EXPECT_EQ(g.dst_port, 7);
    EXPECT_EQ(g.l4_offset, 54);
}

TEST(ParseFrame, AcceptsFramesWithoutPorts) {
    ParsedFrame arp;
    ASSERT_TRUE(parse_frame(from_hex(capture::arp_request), arp));
    EXPECT_FALSE(arp.is_ip());
    EXPECT_FALSE(arp.has_ports);
    ParsedFrame icmp;
    ASSERT_TRUE(parse_frame(from_hex(capture::icmp_unreachable), icmp));
    EXPECT_TRUE(icmp.is_ip());
    EXPECT_FALSE(icmp.has_ports);
    ParsedFrame mld;
    ASSERT_TRUE(parse_frame(from_hex(capture::ipv6_hop_by_hop), mld));
    EXPECT_EQ(mld.protocol, ipproto::icmpv6);
}

TEST(ParseFrame, AnIcmpErrorNamesTheTupleItQuotes) {
    const auto sent = test::ipv4_frame(pktgen::Proto::udp, "198.18.0.1", 5000, "198.18.1.2", 53);
    const auto error = test::icmp_error_frame(sent, {icmp::dest_unreachable, icmp::port_unreachable, 0}, "198.18.1.2");
    ParsedFrame f;
    ASSERT_TRUE(parse_frame(error, f));
    EXPECT_FALSE(f.has_ports);
    ASSERT_TRUE(f.icmp_error);
    EXPECT_EQ(f.quoted.src, test::ip("198.18.0.1"));
    EXPECT_EQ(f.quoted.src_port, 5000);
    ASSERT_TRUE(parse_frame(from_hex(capture::icmp_echo), f));
    EXPECT_FALSE(f.icmp_error);
}

TEST(ParseFrame, NamesTheLayerThatFailed) {
    ParsedFrame f;
    auto frame = from_hex(capture::tcp_syn);
    EXPECT_EQ(parse_frame(Bytes(frame).first(10), f).error(), ParseError::truncated);
    EXPECT_EQ(parse_frame(Bytes(frame).first(40), f).error(), ParseError::bad_total_length);
    frame[46] = 0x30;  // TCP data offset 3
    EXPECT_EQ(parse_frame(frame, f).error(), ParseError::bad_data_offset);
    auto udp = from_hex(capture::udp);
    store_be16(&udp[38], 4);  // UDP length below its header
    EXPECT_EQ(parse_frame(udp, f).error(), ParseError::bad_total_length);
}

TEST(Addresses, ParseAndPrint) {
    EXPECT_EQ(ip("198.18.0.1").to_string(), "198.18.0.1");
    EXPECT_EQ(ip("2001:2::1").to_string(), "2001:2::1");
    IpAddr a;
    EXPECT_FALSE(parse_ip("198.18.0.256", a));
    EXPECT_FALSE(parse_ip("nonsense", a));
    EXPECT_TRUE(IpAddr::any(IpFamily::v6).is_any());

    MacAddr mac;
    ASSERT_TRUE(parse_mac("02:00:0a:ff:10:01", mac));
    EXPECT_EQ(mac.to_string(), "02:00:0a:ff:10:01");
    EXPECT_FALSE(parse_mac("02:00:0a:ff:10", mac));
    EXPECT_FALSE(parse_mac("02:00:0a:ff:10:100", mac));
    EXPECT_FALSE(parse_mac("02:00:0a:ff:10:01:07", mac));

    std::uint16_t port = 0;
    ASSERT_TRUE(parse_endpoint("198.18.0.1:7", a, port));
    EXPECT_EQ(a, ip("198.18.0.1"));
    EXPECT_EQ(port, 7);
    ASSERT_TRUE(parse_endpoint("[2001:2::1]:80", a, port));
    EXPECT_EQ(a, ip("2001:2::1"));
    EXPECT_EQ(port, 80);
    EXPECT_FALSE(parse_endpoint("198.18.0.1", a, port));
    EXPECT_FALSE(parse_endpoint("198.18.0.1:", a, port));
    EXPECT_FALSE(parse_endpoint("198.18.0.1:65536", a, port));
    EXPECT_FALSE(parse_endpoint("198.18.0.1:7x", a, port));
}

}  // namespace
}  // namespace ms::wire
