// ms-pktgen: every frame it builds is valid, and the in-process rig moves frames.
#include <gtest/gtest.h>

#include "frames.hpp"
#include "pktgen/packet_builder.hpp"
#include "pktgen/rig.hpp"
#include "wire/frame.hpp"

namespace ms::pktgen {
namespace {

void expect_valid(Proto proto, std::uint16_t size) {
    const FlowTemplate flow{proto, test::kNicMac, test::kPeerMac, test::ip("198.18.0.1"), test::ip("198.18.0.2"), 4000,
                            9,     size};
    const PacketBuilder b = PacketBuilder::create(flow).value();
    std::vector<std::uint8_t> frame(b.size());
    for (std::uint32_t seq : {0u, 1u, 2u, 0xffffu, 0x10000u, 0xfffffffeu, 0xffffffffu, 123456789u}) {
        ASSERT_EQ(b.build(frame, seq), size);
        wire::ParsedFrame f;
        ASSERT_TRUE(wire::parse_frame(frame, f));
        EXPECT_EQ(f.src_port, 4000);
        EXPECT_EQ(PacketBuilder::sequence_of(frame, proto), seq);
        auto ip = wire::Ipv4View::parse(wire::Bytes(frame).subspan(14));
        ASSERT_TRUE(ip);
        EXPECT_TRUE(ip->checksum_ok());
        EXPECT_TRUE(wire::transport_checksum_ok(ip->src(), ip->dst(), ip->protocol(), ip->payload()))
            << "seq " << seq << " size " << size;
    }
}

TEST(PacketBuilder, BuildsValidUdpAndTcpAtEverySize) {
    for (int size : {60, 61, 124, 252, 508, 1020, 1514}) {
        expect_valid(Proto::udp, static_cast<std::uint16_t>(size));
        expect_valid(Proto::tcp, static_cast<std::uint16_t>(size));
    }
}

TEST(PacketBuilder, ChecksumsStayValidForEverySequenceNumberInARange) {
    const FlowTemplate flow{Proto::udp, test::kNicMac, test::kPeerMac, test::ip("198.18.0.1"), test::ip("198.18.0.2"), 1, 2,
                            60};
    const PacketBuilder b = PacketBuilder::create(flow).value();
    std::vector<std::uint8_t> frame(b.size());
    for (std::uint32_t seq = 0; seq < 70000; ++seq) {
        b.build(frame, seq);
        const wire::Bytes l4 = wire::Bytes(frame).subspan(34);
        ASSERT_TRUE(wire::transport_checksum_ok(flow.src_ip, flow.dst_ip, wire::ipproto::udp, l4)) << seq;
    }
}

TEST(PacketBuilder, RefusesSizesOutsideEthernet) {
    FlowTemplate flow{Proto::tcp, test::kNicMac, test::kPeerMac, test::ip("198.18.0.1"), test::ip("198.18.0.2"), 1, 2, 53};
    const auto too_short = PacketBuilder::create(flow);
    ASSERT_FALSE(too_short);
    EXPECT_EQ(too_short.error().error, PktgenError::bad_frame_size);
    EXPECT_EQ(too_short.error().detail, "frame size must be 54..1514");
    flow.frame_size = 1515;
    EXPECT_FALSE(PacketBuilder::create(flow));
}

RigResult short_run(RigMode mode, std::uint32_t ports, std::uint32_t workers) {
    RigConfig c;
    c.mode = mode;
    c.ports = ports;
    c.workers = workers;
    c.rebuild = true;
    c.seconds = 0.2;
    c.warmup_seconds = 0.05;
    return run_rig(c).value();
}

TEST(Rig, MovesFramesInBothDirectionsInOrder) {
    for (RigMode mode : {RigMode::tx, RigMode::rx}) {
        for (std::uint32_t workers : {1u, 2u}) {
            const RigResult r = short_run(mode, 4, workers);
            EXPECT_GT(r.received, 0u) << to_string(mode) << " workers " << workers;
            EXPECT_LE(r.received, r.sent + 8192);  // what is in flight at the start
            EXPECT_EQ(r.sequence_errors, 0u);
        }
    }
}

TEST(Rig, RefusesZeroPorts) {
    RigConfig c;
    c.ports = 0;
    const auto run = run_rig(c);
    ASSERT_FALSE(run);
    EXPECT_EQ(run.error().error, PktgenError::no_ports);
}

}  // namespace
}  // namespace ms::pktgen
