// Shared claims (sw/port_group.hpp): how the switch steers a group's traffic among its
// members, pins each connection to the member that answered it, and keeps its flow table
// bounded, whatever members join or leave.
#include <gtest/gtest.h>

#include <netinet/in.h>

#include <map>
#include <set>
#include <vector>

#include "pktgen/packet_builder.hpp"
#include "sw/port_group.hpp"
#include "sw/validator.hpp"
#include "wire/transport.hpp"

namespace ms::sw {
namespace {

using wire::tcpflag::ack;
using wire::tcpflag::fin;
using wire::tcpflag::rst;
using wire::tcpflag::syn;

wire::IpAddr ip(const char* text) {
    wire::IpAddr a;
    EXPECT_TRUE(wire::parse_ip(text, a));
    return a;
}

const wire::IpAddr kLocal = ip("198.18.0.1");
const wire::IpAddr kPeer = ip("198.18.0.2");
constexpr std::uint16_t kPort = 80;

// One TCP or UDP segment between the peer (port `peer_port`) and the group's tuple, parsed
// as the switch parses it.
struct Segment {
    std::vector<std::uint8_t> bytes;
    wire::ParsedFrame f;
    std::uint32_t hash = 0;

    wire::Bytes frame() const { return {bytes.data(), bytes.size()}; }
};

Segment segment(bool incoming, std::uint16_t peer_port, std::uint8_t flags, std::uint32_t seq = 0, std::uint32_t ackno = 0,
                pktgen::Proto proto = pktgen::Proto::tcp) {
    pktgen::FlowTemplate t;
    t.proto = proto;
    t.src_ip = incoming ? kPeer : kLocal;
    t.dst_ip = incoming ? kLocal : kPeer;
    t.src_port = incoming ? peer_port : kPort;
    t.dst_port = incoming ? kPort : peer_port;
    auto builder = pktgen::PacketBuilder::create(t);
    EXPECT_TRUE(builder);
    Segment s;
    s.bytes.resize(builder->size());
    builder->build({s.bytes.data(), s.bytes.size()}, 0);
    EXPECT_TRUE(wire::parse_frame(s.frame(), s.f));
    if (proto == pktgen::Proto::tcp) {
        wire::store_be32(s.bytes.data() + s.f.l4_offset + 4, seq);
        wire::store_be32(s.bytes.data() + s.f.l4_offset + 8, ackno);
        s.bytes[s.f.l4_offset + 13] = flags;
    }
    s.hash = flow_hash(s.f);
    return s;
}

class PortGroupTest : public ::testing::Test {
protected:
    // A group founded by port 1 (standing by, as nginx's master does) with `serving` more.
    void make(std::size_t serving, std::size_t max_flows = 1024, MemberRole founder = MemberRole::standby) {
        auto made = PortGroup::create(qsbr_, 1, founder, max_flows);
        ASSERT_TRUE(made);
        group_ = std::move(made).value();
        for (std::size_t i = 0; i < serving; ++i) ASSERT_TRUE(group_->join(static_cast<PortId>(10 + i), MemberRole::serving));
    }
    PortId steer(const Segment& s) { return group_->steer_incoming(s.frame(), s.f, s.hash); }
    bool send(PortId from, const Segment& s) { return group_->note_outgoing(s.frame(), s.f, from); }
    // A full handshake from the peer's port `p`: the member that answered it.
    PortId connect(std::uint16_t p) {
        const PortId m = steer(segment(true, p, syn, 1000));
        EXPECT_TRUE(send(m, segment(false, p, syn | ack, 5000, 1001)));
        EXPECT_EQ(steer(segment(true, p, ack, 1001, 5001)), m);
        return m;
    }

    Qsbr qsbr_{1};  // its one reader stays offline: updates never wait
    std::unique_ptr<PortGroup> group_;
};

TEST_F(PortGroupTest, NewConnectionsSpreadOverServingMembersAndNotTheOneStandingBy) {
    make(3);
    std::map<PortId, int> got;
    for (std::uint16_t p = 1000; p < 4000; ++p) ++got[steer(segment(true, p, syn))];
    EXPECT_EQ(got.count(1), 0u) << "the member standing by got new connections";
    ASSERT_EQ(got.size(), 3u);
    for (const auto& [port, n] : got) EXPECT_NEAR(n, 1000, 150) << port;
    std::uint64_t counted = 0;
    for (const GroupMemberView& m : group_->members_view()) counted += m.new_connections;
    EXPECT_EQ(counted, 3000u);
}

TEST_F(PortGroupTest, WithNoServingMemberTheOneStandingByServes) {
    make(0);
    EXPECT_EQ(steer(segment(true, 1234, syn)), 1);
}

TEST_F(PortGroupTest, AConnectionStaysWithItsMemberWhateverJoins) {
    make(2);
    std::map<std::uint16_t, PortId> owner;
    for (std::uint16_t p = 2000; p < 2200; ++p) owner[p] = connect(p);
    for (PortId extra = 20; extra < 40; ++extra) ASSERT_TRUE(group_->join(extra, MemberRole::serving));
    for (const auto& [p, m] : owner) {
        EXPECT_EQ(steer(segment(true, p, ack, 1001, 5001)), m) << p;
        EXPECT_EQ(steer(segment(true, p, ack | fin, 1001, 5001)), m) << p;
    }
    std::set<PortId> fresh;
    for (std::uint16_t p = 5000; p < 6000; ++p) fresh.insert(steer(segment(true, p, syn)));
    EXPECT_TRUE(fresh.count(20)) << "new connections do go to the members that joined";
}

TEST_F(PortGroupTest, WhenAMemberLeavesOnlyItsConnectionsGo) {
    make(3);
    std::map<std::uint16_t, PortId> owner;
    for (std::uint16_t p = 2000; p < 2300; ++p) owner[p] = connect(p);
    ASSERT_EQ(group_->leave(10).value(), 3u);  // the founder and two serving members remain
    for (const auto& [p, m] : owner) {
        const PortId now = steer(segment(true, p, ack, 1001, 5001));
        if (m == 10) {
            EXPECT_EQ(now, 1) << "a departed member's connection is the founder's to reset";
        } else {
            EXPECT_EQ(now, m) << p;
        }
    }
    for (std::uint16_t p = 7000; p < 7500; ++p) EXPECT_NE(steer(segment(true, p, syn)), 10);
    EXPECT_FALSE(group_->leave(10)) << "it left already";
}

// A member whose listener closed drains: it keeps its connections and gets no new one;
// with every member draining, a SYN finds none (the client sends it again).
TEST_F(PortGroupTest, ADrainingMemberKeepsItsConnectionsAndGetsNoNewOne) {
    make(2);
    std::map<std::uint16_t, PortId> owner;
    for (std::uint16_t p = 2000; p < 2200; ++p) owner[p] = connect(p);
    ASSERT_TRUE(group_->set_role(10, MemberRole::draining));
    for (const auto& [p, m] : owner) EXPECT_EQ(steer(segment(true, p, ack, 1001, 5001)), m) << p;
    for (std::uint16_t p = 7000; p < 7500; ++p) EXPECT_EQ(steer(segment(true, p, syn)), 11);
    ASSERT_TRUE(group_->set_role(11, MemberRole::draining));
    EXPECT_EQ(steer(segment(true, 7777, syn)), 1) << "the founder standing by takes them";
    ASSERT_TRUE(group_->set_role(1, MemberRole::draining));
    EXPECT_EQ(steer(segment(true, 7777, syn)), kNoPort);
    EXPECT_FALSE(group_->set_role(99, MemberRole::serving)) << "not a member";
}

TEST_F(PortGroupTest, SegmentsOfNoRecordedConnectionAreTheFoundersThenTheHashs) {
    make(2, 1024, MemberRole::serving);
    // The founder's own connections predate the group: they are never recorded.
    const PortId first = steer(segment(true, 3000, syn, 1));
    EXPECT_TRUE(send(first, segment(false, 3000, syn | ack, 7, 2)));
    EXPECT_EQ(steer(segment(true, 3000, ack, 2, 8)), first);
    EXPECT_EQ(steer(segment(true, 4242, ack, 5, 5)), 1);
    EXPECT_EQ(group_->flows(), first == 1 ? 0u : 1u);
    ASSERT_TRUE(group_->leave(1));
    const Segment orphan = segment(true, 4242, ack, 5, 5);
    EXPECT_EQ(steer(orphan), steer(orphan));
    EXPECT_NE(steer(orphan), 1);
}

TEST_F(PortGroupTest, OnlyTheAckOfTheSynAckPinsAConnection) {
    make(2);
    const PortId m = steer(segment(true, 2500, syn, 1000));
    ASSERT_TRUE(send(m, segment(false, 2500, syn | ack, 9000, 1001)));
    EXPECT_EQ(steer(segment(true, 2500, ack, 1001, 12345)), m);  // a blind ACK: routed by the embryo, not recorded
    EXPECT_EQ(group_->flows(), 0u);
    EXPECT_EQ(steer(segment(true, 2500, ack, 1001, 9001)), m);
    EXPECT_EQ(group_->flows(), 1u);
    group_->sweep(PortGroup::current_tick() + 100);
    EXPECT_EQ(group_->flows(), 1u) << "an established connection expired";
}

// A member that leaves takes its unanswered handshakes too: a new member that gets the same
// port id later does not inherit them.
TEST_F(PortGroupTest, ALeavingMembersHandshakesGoWithIt) {
    make(2);
    const PortId m = steer(segment(true, 2550, syn, 1000));
    ASSERT_TRUE(send(m, segment(false, 2550, syn | ack, 9000, 1001)));
    ASSERT_TRUE(group_->leave(m));
    ASSERT_TRUE(group_->join(m, MemberRole::serving));  // the id comes back with another port
    EXPECT_EQ(steer(segment(true, 2550, ack, 1001, 9001)), 1) << "the late ACK is the founder's to reset";
    EXPECT_EQ(group_->flows(), 0u);
}

TEST_F(PortGroupTest, AMemberCannotTakeAnotherMembersConnection) {
    make(2);
    const PortId m = connect(2600);
    const PortId other = m == 10 ? 11 : 10;
    EXPECT_FALSE(send(other, segment(false, 2600, syn | ack, 1, 1001)));
    EXPECT_EQ(steer(segment(true, 2600, ack, 1001, 5001)), m);
    EXPECT_TRUE(send(other, segment(false, 2600, rst, 5001))) << "a RST for another's connection passes, unrecorded";
    EXPECT_EQ(steer(segment(true, 2600, ack, 1001, 5001)), m);
}

TEST_F(PortGroupTest, ARstEndsARecordAndAFinEndsItAfterItsLinger) {
    make(2);
    const PortId a = connect(2700);
    const PortId b = connect(2701);
    const std::size_t before = group_->flows();
    ASSERT_TRUE(send(a, segment(false, 2700, rst | ack, 5001, 1001)));
    EXPECT_EQ(group_->flows(), before - 1);
    ASSERT_TRUE(send(b, segment(false, 2701, fin | ack, 5001, 1001)));
    EXPECT_EQ(steer(segment(true, 2701, ack, 1001, 5002)), b) << "the last ACK reaches the member in its linger";
    group_->sweep(PortGroup::current_tick() + 1);
    EXPECT_EQ(group_->flows(), before - 1);
    group_->sweep(PortGroup::current_tick() + PortGroup::kClosingTicks + 1);
    EXPECT_EQ(group_->flows(), before - 2);
}

// The flow table holds at most its bound; an ACK that would record one more connection is
// dropped (the peer sends it again), and recorded when a record has gone.
TEST_F(PortGroupTest, TheFlowTableIsBoundedAndAnAckBeyondItWaits) {
    make(2, 16);
    std::size_t waiting = 0;
    std::map<std::uint16_t, PortId> owner;
    for (std::uint16_t p = 3000; p < 3100; ++p) {
        const PortId m = steer(segment(true, p, syn, 1000));
        ASSERT_TRUE(send(m, segment(false, p, syn | ack, 5000, 1001)));
        owner[p] = m;
        if (steer(segment(true, p, ack, 1001, 5001)) == kNoPort) ++waiting;
    }
    EXPECT_EQ(group_->flows(), 16u);
    EXPECT_EQ(waiting, 84u);
    EXPECT_EQ(group_->unrecorded(), 84u);
    const auto first = owner.begin();
    ASSERT_TRUE(send(first->second, segment(false, first->first, rst | ack, 5001, 1001)));
    const std::uint16_t retry = 3099;  // its embryo is still there: the ACK sent again is recorded now
    EXPECT_EQ(steer(segment(true, retry, ack, 1001, 5001)), owner[retry]);
    EXPECT_EQ(group_->flows(), 16u);
}

// A SYN flood's SYN-ACKs take no memory beyond the embryo cache's fixed slots: the flow
// table stays empty, and a real handshake in the middle of it is recorded.
TEST_F(PortGroupTest, ASynFloodFillsNothing) {
    make(2, 64);
    for (std::uint32_t i = 0; i < 20000; ++i) {
        const auto p = static_cast<std::uint16_t>(1024 + i % 60000);
        const PortId m = steer(segment(true, p, syn, i));
        ASSERT_TRUE(send(m, segment(false, p, syn | ack, i * 7, i + 1)));
        if (i == 10000) {
            EXPECT_NE(connect(40000), kNoPort);
        }
    }
    EXPECT_EQ(group_->flows(), 1u);
    EXPECT_EQ(group_->unrecorded(), 0u);
}

TEST_F(PortGroupTest, CompactionKeepsEveryLiveRecord) {
    make(3, 64);
    std::map<std::uint16_t, PortId> kept;
    for (int round = 0; round < 20; ++round) {
        for (std::uint16_t i = 0; i < 40; ++i) {
            const auto p = static_cast<std::uint16_t>(10000 + round * 40 + i);
            const PortId m = connect(p);
            if (i < 1) {
                kept[p] = m;
            } else {
                ASSERT_TRUE(send(m, segment(false, p, rst | ack, 5001, 1001)));
            }
        }
        group_->sweep(PortGroup::current_tick());
    }
    EXPECT_EQ(group_->flows(), kept.size());
    for (const auto& [p, m] : kept) EXPECT_EQ(steer(segment(true, p, ack, 1001, 5001)), m) << p;
}

TEST_F(PortGroupTest, UdpDatagramsSpreadByTheFlowHash) {
    make(3);
    std::map<std::uint16_t, PortId> first;
    std::set<PortId> used;
    for (std::uint16_t p = 1000; p < 1300; ++p) {
        const PortId m = steer(segment(true, p, 0, 0, 0, pktgen::Proto::udp));
        first[p] = m;
        used.insert(m);
    }
    EXPECT_EQ(used.size(), 3u);
    for (const auto& [p, m] : first) EXPECT_EQ(steer(segment(true, p, 0, 0, 0, pktgen::Proto::udp)), m);
    EXPECT_EQ(group_->flows(), 0u) << "UDP keeps no per-flow state";
}

TEST_F(PortGroupTest, AGroupHasAtMostItsMemberBound) {
    make(0);
    for (PortId p = 100; group_->members_view().size() < kMaxGroupMembers; ++p)
        ASSERT_TRUE(group_->join(p, MemberRole::serving));
    EXPECT_EQ(group_->join(999, MemberRole::serving).error(), GroupError::full);
    EXPECT_EQ(group_->join(100, MemberRole::serving).error(), GroupError::already_member);
}

}  // namespace
}  // namespace ms::sw
