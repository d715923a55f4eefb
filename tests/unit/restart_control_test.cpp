// After multistackd restarts (docs/DESIGN.md §6, "Restarts and upgrades"): what the
// control plane does for an application that attached again (it names its connections,
// Op::restore_flows, and the switch records them in a shared claim's flow table), what it
// refuses, and the schedule on which applications try to attach again.
#include "client/multistack.hpp"
#include "control_fixture.hpp"

namespace ms::daemon {
namespace {

using namespace control_fixture;

ctl::RestoredFlow flow_to(std::uint16_t local_port, std::uint16_t remote_port) {
    ctl::RestoredFlow f;
    f.local = ctl::to_tuple({IPPROTO_TCP, wire::IpAddr::v4(0xc6120001), local_port});
    f.remote_family = 4;
    f.remote_port = remote_port;
    const auto remote = wire::IpAddr::v4(0xc6120002);
    std::memcpy(f.remote, remote.bytes.data(), sizeof f.remote);
    return f;
}

class RestoreFlowsTest : public ControlTest {
protected:
    ctl::RestoreFlowsReply restore(int c, const ctl::RestoreFlowsRequest& req, ctl::Status& status) {
        EXPECT_EQ(ctl::send_message(c, &req, sizeof req), 0);
        settle();
        ctl::RestoreFlowsReply rep{};
        std::vector<int> received;
        EXPECT_GE(ctl::receive_message(c, &rep, sizeof rep, received, 0), static_cast<long>(sizeof(ctl::Header)));
        status = rep.h.status;
        return rep;
    }
};

// A member of a shared claim that attached again names its connections: each within its
// claims goes into the group's flow table (to it), and each outside them is skipped.
TEST_F(RestoreFlowsTest, AMemberGetsItsConnectionsBack) {
    const auto [master, worker] = two_attached_sessions();
    const int proof = bound_socket(SOCK_STREAM);
    ASSERT_EQ(claim(master, proof, ctl::ClaimRole::standby), ctl::Status::ok);
    const int inherited = ::dup(proof);
    ASSERT_EQ(claim(worker, inherited), ctl::Status::ok);
    const std::uint16_t port = local_port(proof);
    ctl::RestoreFlowsRequest req;
    req.count = 3;
    req.flows[0] = flow_to(port, 40000);
    req.flows[1] = flow_to(port, 40001);
    req.flows[2] = flow_to(static_cast<std::uint16_t>(port + 1), 40002);  // no claim of the worker's
    ctl::Status status{};
    const auto rep = restore(worker, req, status);
    EXPECT_EQ(status, ctl::Status::ok);
    EXPECT_EQ(rep.recorded, 2u);
    const auto entries = sw_->registry().entries();
    ASSERT_EQ(entries.size(), 1u);
    EXPECT_EQ(entries[0].flows, 2u);
    ::close(inherited);
    ::close(proof);
}

// What cannot be right is refused, and the session goes on: a count past the batch, and a
// session with no port.
TEST_F(RestoreFlowsTest, WhatCannotBeRightIsRefused) {
    const int c = connect();
    ctl::RestoreFlowsRequest req;
    req.count = 1;
    req.flows[0] = flow_to(80, 40000);
    ctl::Status status{};
    (void)restore(c, req, status);
    EXPECT_EQ(status, ctl::Status::not_attached);
    ASSERT_EQ(attach(c), ctl::Status::ok);
    req.count = ctl::RestoreFlowsRequest::kMaxFlows + 1;
    (void)restore(c, req, status);
    EXPECT_EQ(status, ctl::Status::bad_request);
    req.count = 1;
    const auto rep = restore(c, req, status);
    EXPECT_EQ(status, ctl::Status::ok);
    EXPECT_EQ(rep.recorded, 0u) << "a connection outside the session's claims";
}

// Applications try at once, then back off from 1 ms to 4 ms in the first two seconds,
// then doubling to 100 ms, and give up past the daemon's outage limit.
TEST(ReattachScheduleTest, BacksOffWithinTheOutageLimit) {
    client::ReattachSchedule s(1000, 10'000);
    EXPECT_TRUE(s.due(1000));
    std::vector<std::uint64_t> waits;
    std::uint64_t now = 1000;
    for (int k = 0; k < 5; ++k) {
        s.failed(now);
        waits.push_back(s.next_try_ms() - now);
        now = s.next_try_ms();
    }
    EXPECT_EQ(waits, (std::vector<std::uint64_t>{1, 2, 4, 4, 4}));
    EXPECT_FALSE(s.due(now - 1));
    now = 1000 + 3000;  // past the first two seconds: the waits grow to 100 ms
    waits.clear();
    for (int k = 0; k < 7; ++k) {
        s.failed(now);
        waits.push_back(s.next_try_ms() - now);
        now = s.next_try_ms();
    }
    EXPECT_EQ(waits, (std::vector<std::uint64_t>{4, 8, 16, 32, 64, 100, 100}));
    EXPECT_FALSE(s.expired(1000 + 10'000));
    EXPECT_TRUE(s.expired(1000 + 10'001));
    EXPECT_EQ(s.tries(), 12u);
}

}  // namespace
}  // namespace ms::daemon
