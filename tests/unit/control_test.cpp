// The control plane against hostile clients, in process (docs/DESIGN.md §3, §6, §11): a real
// ControlServer over an in-memory switch and a data path that mirrors nothing. Each
// test reproduces one attack of the security review and checks that it is refused,
// counted, and that the daemon goes on serving others. (Attacks that need another
// user or network namespace run in tests/netns/security.sh.)
#include <sys/wait.h>

#include "control_fixture.hpp"

namespace ms::daemon {
namespace {

using namespace control_fixture;

// Each kind of socket that proves nothing, and the status that names why.
TEST_F(ControlTest, RefusesEveryProofThatDoesNotHold) {
    const int c = connect();
    ASSERT_EQ(attach(c), ctl::Status::ok);
    struct Case {
        const char* what;
        int fd;
        ctl::Status status;
    };
    const int listening = bound_socket(SOCK_STREAM);
    ASSERT_EQ(::listen(listening, 1), 0);
    const Case cases[] = {
        {"SO_REUSEADDR", bound_socket(SOCK_DGRAM, "0.0.0.0", 0, {SOL_SOCKET, SO_REUSEADDR}), ctl::Status::reusable_socket},
        {"IP_FREEBIND to another host's address", bound_socket(SOCK_DGRAM, "198.18.0.99", 0, {IPPROTO_IP, IP_FREEBIND}),
         ctl::Status::address_not_local},
        {"loopback", bound_socket(SOCK_DGRAM, "127.0.0.1"), ctl::Status::address_not_local},
        {"listening", listening, ctl::Status::socket_in_use},
        {"not bound", ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ctl::Status::bad_socket},
        {"not a socket", ::eventfd(0, EFD_CLOEXEC), ctl::Status::bad_socket},
        {"not TCP or UDP", ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_ICMP), ctl::Status::bad_socket},
    };
    for (const Case& k : cases) {
        if (k.fd < 0) continue;  // ICMP datagram sockets may be disabled for this group
        EXPECT_EQ(claim(c, k.fd), k.status) << k.what;
        ::close(k.fd);
    }
    const int good = bound_socket(SOCK_DGRAM);
    EXPECT_EQ(claim(c, good), ctl::Status::ok);
    ::close(good);
    EXPECT_EQ(server_->counters().claims_refused, 7u - (cases[6].fd < 0));
}

TEST_F(ControlTest, RefusesAProofBoundToAnotherDevice) {
    const int c = connect();
    ASSERT_EQ(attach(c), ctl::Status::ok);
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (::setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, "lo", 3) != 0) {
        ::close(fd);
        GTEST_SKIP() << "SKIPPED: SO_BINDTODEVICE needs CAP_NET_RAW here";
    }
    const sockaddr_in sin = v4("0.0.0.0", 0);
    ASSERT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&sin), sizeof sin), 0);
    EXPECT_EQ(claim(c, fd), ctl::Status::bound_to_device);
    ::close(fd);
}

// A client that sends and never reads fills its bounded outbox and is dropped, while
// another client is served throughout.
TEST_F(ControlTest, DropsAClientThatDoesNotReadAndServesOthers) {
    const int slow = connect();
    const int other = connect();
    const ctl::Header list{.op = ctl::Op::status};
    for (int i = 0; i < 2000; ++i) {
        if (ctl::send_message(slow, &list, sizeof list, {}, true) != 0) break;
        if (i % 16 == 0) settle();
        if (server_->counters().slow_clients > 0) break;
    }
    settle();
    EXPECT_EQ(server_->counters().slow_clients, 1u);
    EXPECT_EQ(call(other, ctl::Header{.op = ctl::Op::status}).status, ctl::Status::ok);
    EXPECT_EQ(server_->session_count(), 1u);
}

// Descriptors that arrive with an empty message, too many at once, with an unknown
// op or before attach are all closed.
TEST_F(ControlTest, ClosesEveryDescriptorItReceives) {
    const int c = connect();
    const std::uint32_t before = open_descriptor_count();
    const int three[] = {::eventfd(0, 0), ::eventfd(0, 0), ::eventfd(0, 0)};
    const ctl::Header unknown{.op = static_cast<ctl::Op>(99)};
    EXPECT_EQ(call(c, unknown, std::span(three, 1)).status, ctl::Status::bad_request);
    EXPECT_EQ(call(c, ctl::ClaimRequest{}, std::span(three, 1)).status, ctl::Status::not_attached);
    EXPECT_EQ(call(c, ctl::ClaimRequest{}, std::span(three, 3)).status, ctl::Status::bad_request);
    for (int i = 0; i < 50; ++i) {
        const int fd = connect();
        ASSERT_EQ(ctl::send_message(fd, nullptr, 0, std::span(three, 1)), 0);
        settle();
        hang_up(fd);
    }
    for (int fd : three) ::close(fd);
    // The hung-up sessions go as the server sees their hang-ups: serve until it has.
    EXPECT_TRUE(test::eventually([&] {
        settle();
        return open_descriptor_count() == before;
    })) << open_descriptor_count()
        << " descriptors open, " << before << " before";
    EXPECT_EQ(server_->session_count(), 1u);
}

// A proof whose owner sets SO_REUSEADDR on its own copy after the claim is revoked at
// the next audit, so that no kernel application can bind the port into a black hole.
TEST_F(ControlTest, RevokesAClaimWhoseProofChangesAfterwards) {
    const int c = connect();
    ASSERT_EQ(attach(c), ctl::Status::ok);
    const int proof = bound_socket(SOCK_STREAM);
    ASSERT_EQ(claim(c, proof), ctl::Status::ok);
    ASSERT_EQ(sw_->registry().entries().size(), 1u);
    const int one = 1;
    ASSERT_EQ(::setsockopt(proof, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), 0);
    for (int i = 0; i < 30 && server_->counters().claims_revoked == 0; ++i) server_->run_once(100);
    EXPECT_EQ(server_->counters().claims_revoked, 1u);
    EXPECT_TRUE(sw_->registry().entries().empty());
    ::close(proof);
}

// connect() on the owner's copy narrows a wildcard proof to the loopback address (and
// makes it connected): the kernel then lets anyone bind the interface's address on that
// port, so the audit must revoke the claim. UDP and TCP.
TEST_F(ControlTest, RevokesAClaimWhoseProofIsConnectedAfterwards) {
    const int c = connect();
    ASSERT_EQ(attach(c), ctl::Status::ok);
    const int udp = bound_socket(SOCK_DGRAM);
    ASSERT_EQ(claim(c, udp), ctl::Status::ok);
    const sockaddr_in loop = v4("127.0.0.1", 9);
    ASSERT_EQ(::connect(udp, reinterpret_cast<const sockaddr*>(&loop), sizeof loop), 0);
    serve_until_revoked(1u);
    const int tcp = bound_socket(SOCK_STREAM);
    ASSERT_EQ(claim(c, tcp), ctl::Status::ok);
    const LingeringPeer peer;
    const sockaddr_in to = v4("127.0.0.1", peer.port());
    ASSERT_EQ(::connect(tcp, reinterpret_cast<const sockaddr*>(&to), sizeof to), 0);
    serve_until_revoked(2u);
    EXPECT_TRUE(sw_->registry().entries().empty());
    ::close(udp);
    ::close(tcp);
}

// A proof bound with SO_REUSEADDR, which is cleared before the claim, while another
// kernel socket (here a live TCP connection from the same port) holds the tuple: the
// claim is refused, for TCP and for UDP alike.
TEST_F(ControlTest, RefusesAProofThatSharesItsTupleWithAKernelSocket) {
    const int c = connect();
    ASSERT_EQ(attach(c), ctl::Status::ok);
    const LingeringPeer peer;
    const int victim = bound_socket(SOCK_STREAM, "0.0.0.0", 0, {SOL_SOCKET, SO_REUSEADDR});
    const std::uint16_t port = local_port(victim);
    const sockaddr_in to = v4("127.0.0.1", peer.port());
    ASSERT_EQ(::connect(victim, reinterpret_cast<const sockaddr*>(&to), sizeof to), 0);
    const int zero = 0;
    const int tcp = bound_socket(SOCK_STREAM, "0.0.0.0", port, {SOL_SOCKET, SO_REUSEADDR});
    ASSERT_EQ(::setsockopt(tcp, SOL_SOCKET, SO_REUSEADDR, &zero, sizeof zero), 0);
    EXPECT_EQ(claim(c, tcp), ctl::Status::tuple_shared);
    const int udp_victim = bound_socket(SOCK_DGRAM, "0.0.0.0", 0, {SOL_SOCKET, SO_REUSEADDR});
    const int udp = bound_socket(SOCK_DGRAM, "0.0.0.0", local_port(udp_victim), {SOL_SOCKET, SO_REUSEADDR});
    ASSERT_EQ(::setsockopt(udp, SOL_SOCKET, SO_REUSEADDR, &zero, sizeof zero), 0);
    EXPECT_EQ(claim(c, udp), ctl::Status::tuple_shared);
    EXPECT_TRUE(sw_->registry().entries().empty());
    for (int fd : {victim, tcp, udp_victim, udp}) ::close(fd);
}

// The sibling over time: the owner sets SO_REUSEADDR between two audits, another socket
// binds the port meanwhile, and the flag is cleared before the next audit. The socket
// that now shares the tuple is in the kernel's table: the audit revokes the claim.
TEST_F(ControlTest, RevokesAClaimThatAnotherSocketCameToShare) {
    const int c = connect();
    ASSERT_EQ(attach(c), ctl::Status::ok);
    const int proof = bound_socket(SOCK_DGRAM);
    ASSERT_EQ(claim(c, proof), ctl::Status::ok);
    const int one = 1, zero = 0;
    ASSERT_EQ(::setsockopt(proof, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), 0);
    const int sharer = bound_socket(SOCK_DGRAM, "0.0.0.0", local_port(proof), {SOL_SOCKET, SO_REUSEADDR});
    ASSERT_EQ(::setsockopt(proof, SOL_SOCKET, SO_REUSEADDR, &zero, sizeof zero), 0);
    serve_until_revoked(1u);
    EXPECT_TRUE(sw_->registry().entries().empty());
    ::close(sharer);
    ::close(proof);
}

// A process that holds the same proof socket (a forked worker) joins the claim with its
// own port: the claim becomes a group of both, as the listing shows, and the parent's
// going leaves the child's membership whole. Another socket for the same tuple cannot
// join, a holder cannot join twice, and a role that is neither serving nor standby is
// refused.
TEST_F(ControlTest, TheSameProofSocketJoinsTheClaim) {
    const auto [parent, child] = two_attached_sessions();
    const int proof = bound_socket(SOCK_STREAM);
    ASSERT_EQ(claim(parent, proof, ctl::ClaimRole::standby), ctl::Status::ok);
    const auto before = sw_->registry().entries();
    ASSERT_EQ(before.size(), 1u);
    EXPECT_FALSE(before[0].shared);
    const int inherited = ::dup(proof);
    ctl::ClaimRequest bad;
    bad.role = static_cast<ctl::ClaimRole>(7);
    const int bad_fds[] = {inherited};
    EXPECT_EQ(call(child, bad, bad_fds).status, ctl::Status::bad_request);
    EXPECT_EQ(claim(child, inherited), ctl::Status::ok);
    const auto after = sw_->registry().entries();
    ASSERT_EQ(after.size(), 1u);
    EXPECT_EQ(after[0].key, before[0].key);
    ASSERT_TRUE(after[0].shared);
    ASSERT_EQ(after[0].members.size(), 2u);
    EXPECT_EQ(after[0].members[0].port, before[0].members[0].port);
    EXPECT_TRUE(after[0].members[0].founder);
    EXPECT_EQ(after[0].members[0].role, sw::MemberRole::standby);
    EXPECT_NE(after[0].members[1].port, before[0].members[0].port);
    EXPECT_EQ(after[0].members[1].role, sw::MemberRole::serving);
    EXPECT_EQ(claim(child, proof), ctl::Status::address_in_use) << "a second claim by a member itself";
    ::close(inherited);
    hang_up(parent);  // the parent's session going takes nothing the child holds
    const auto left = sw_->registry().entries();
    ASSERT_EQ(left.size(), 1u);
    ASSERT_EQ(left[0].members.size(), 1u);
    EXPECT_EQ(left[0].members[0].port, after[0].members[1].port);
    const int stranger = connect();
    ASSERT_EQ(attach(stranger), ctl::Status::ok);
    const int other = bound_socket(SOCK_STREAM);
    EXPECT_EQ(claim(stranger, other), ctl::Status::ok) << "a different port is an ordinary claim";
    EXPECT_EQ(sw_->registry().entries().size(), 2u);
    ::close(other);
    ::close(proof);
}

// Separate SO_REUSEPORT sockets of one user (the kernel let them share the port) form one
// shared claim, each from its own session; a socket without the flag cannot even bind.
TEST_F(ControlTest, ReusePortSocketsOfOneUserShareAClaim) {
    const auto [first, second] = two_attached_sessions();
    const int a = bound_socket(SOCK_STREAM, "0.0.0.0", 0, {SOL_SOCKET, SO_REUSEPORT});
    const int b = bound_socket(SOCK_STREAM, "0.0.0.0", local_port(a), {SOL_SOCKET, SO_REUSEPORT});
    ASSERT_EQ(claim(first, a), ctl::Status::ok);
    ASSERT_EQ(claim(second, b), ctl::Status::ok);
    const auto entries = sw_->registry().entries();
    ASSERT_EQ(entries.size(), 1u);
    EXPECT_TRUE(entries[0].shared);
    EXPECT_EQ(entries[0].members.size(), 2u);
    const int plain = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(local_port(a));
    EXPECT_NE(::bind(plain, reinterpret_cast<sockaddr*>(&to), sizeof to), 0) << "the kernel let a plain socket share";
    ::close(plain);
    hang_up(first);
    ASSERT_EQ(sw_->registry().entries().size(), 1u);
    EXPECT_EQ(sw_->registry().entries()[0].members.size(), 1u);
    ::close(a);
    ::close(b);
}

// A claim whose proof had no SO_REUSEPORT when it was made cannot be joined through the
// flag: its owner sets it afterwards and binds a second socket beside it (the kernel then
// allows that), but the daemon judges the proof as it was proven.
TEST_F(ControlTest, APlainProofIsNotJoinedThroughALateReusePort) {
    const auto [first, second] = two_attached_sessions();
    const int a = bound_socket(SOCK_DGRAM);
    ASSERT_EQ(claim(first, a), ctl::Status::ok);
    const int one = 1;
    ASSERT_EQ(::setsockopt(a, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one), 0);
    const int b = bound_socket(SOCK_DGRAM, "0.0.0.0", local_port(a), {SOL_SOCKET, SO_REUSEPORT});
    ASSERT_GE(b, 0);
    EXPECT_EQ(claim(second, b), ctl::Status::address_in_use);
    const auto entries = sw_->registry().entries();
    ASSERT_EQ(entries.size(), 1u);
    EXPECT_FALSE(entries[0].shared);
    ::close(a);
    ::close(b);
}

// A socket passed over SCM_RIGHTS joins, serving, only the claim that this very socket
// proves: one that proves no claim is refused (not_found) and claims nothing, and neither
// does another SO_REUSEPORT socket of the same owner, which an ordinary claim may join.
TEST_F(ControlTest, APassedSocketJoinsOnlyTheClaimItProves) {
    const auto [sender, receiver] = two_attached_sessions();
    const int unclaimed = bound_socket(SOCK_STREAM);
    EXPECT_EQ(claim(receiver, unclaimed, ctl::ClaimRole::passed), ctl::Status::not_found);
    EXPECT_TRUE(sw_->registry().entries().empty()) << "a passed socket made a claim of its own";
    const int proof = bound_socket(SOCK_STREAM, "0.0.0.0", 0, {SOL_SOCKET, SO_REUSEPORT});
    const int sibling = bound_socket(SOCK_STREAM, "0.0.0.0", local_port(proof), {SOL_SOCKET, SO_REUSEPORT});
    ASSERT_EQ(claim(sender, proof, ctl::ClaimRole::standby), ctl::Status::ok);
    EXPECT_EQ(claim(receiver, sibling, ctl::ClaimRole::passed), ctl::Status::not_found) << "not the same socket";
    const int passed = ::dup(proof);
    ASSERT_EQ(claim(receiver, passed, ctl::ClaimRole::passed), ctl::Status::ok);
    const auto entries = sw_->registry().entries();
    ASSERT_EQ(entries.size(), 1u);
    ASSERT_EQ(entries[0].members.size(), 2u);
    EXPECT_EQ(entries[0].members[1].role, sw::MemberRole::serving);
    for (int fd : {unclaimed, proof, sibling, passed}) ::close(fd);
}

// A socket made by `uid` (in a child that drops to it), bound to a free UDP port.
int socket_of_user(uid_t uid) {
    int pair[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, pair), 0);
    const pid_t child = ::fork();
    if (child == 0) {
        if (::setuid(uid) != 0) ::_exit(1);
        const int udp = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        const sockaddr_in any = v4("0.0.0.0", 0);
        if (::bind(udp, reinterpret_cast<const sockaddr*>(&any), sizeof any) != 0) ::_exit(2);
        ::_exit(ctl::send_message(pair[0], "s", 1, std::span(&udp, 1)) == 0 ? 0 : 3);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char byte;
    std::vector<int> fds;
    EXPECT_EQ(ctl::receive_message(pair[1], &byte, 1, fds, 1), 1);
    ::close(pair[0]);
    ::close(pair[1]);
    return fds.empty() ? -1 : fds[0];
}

// A copy of a claim's proof (a connection taken up keeps one, to prove the claim again
// after a restart) goes only to a session that holds the claim, and only if its user owns
// the socket: the socket is a capability.
TEST_F(ControlTest, AProofCopyGoesOnlyToTheSocketsOwner) {
    const int c = connect();
    ASSERT_EQ(attach(c), ctl::Status::ok);
    const int own = bound_socket(SOCK_DGRAM);
    ASSERT_EQ(claim(c, own), ctl::Status::ok);
    ctl::ProofCopyRequest copy;
    copy.tuple = ctl::to_tuple({IPPROTO_UDP, wire::IpAddr::any(wire::IpFamily::v4), local_port(own)});
    EXPECT_EQ(call(c, copy).status, ctl::Status::ok);
    const int stranger = connect();
    ASSERT_EQ(attach(stranger), ctl::Status::ok);
    EXPECT_EQ(call(stranger, copy).status, ctl::Status::not_found);
    const int nobodys = socket_of_user(65534);
    ASSERT_GE(nobodys, 0);
    ASSERT_EQ(claim(c, nobodys), ctl::Status::ok);
    copy.tuple = ctl::to_tuple({IPPROTO_UDP, wire::IpAddr::any(wire::IpFamily::v4), local_port(nobodys)});
    EXPECT_EQ(call(c, copy).status, ctl::Status::permission_denied);
    ::close(own);
    ::close(nobodys);
}

// A member whose listener closed drains: its role says so; a session cannot drain a claim
// it does not hold.
TEST_F(ControlTest, AMemberDrainsOnlyItsOwnClaim) {
    const auto [parent, child] = two_attached_sessions();
    const int proof = bound_socket(SOCK_STREAM);
    ASSERT_EQ(claim(parent, proof, ctl::ClaimRole::standby), ctl::Status::ok);
    const int inherited = ::dup(proof);
    ASSERT_EQ(claim(child, inherited), ctl::Status::ok);
    ctl::DrainRequest drain;
    const sw::ClaimKey key = sw_->registry().entries()[0].key;
    drain.tuple = ctl::to_tuple({key.protocol, key.addr, key.port});
    EXPECT_EQ(call(child, drain).status, ctl::Status::ok);
    EXPECT_EQ(sw_->registry().entries()[0].members[1].role, sw::MemberRole::draining);
    const int stranger = connect();
    ASSERT_EQ(attach(stranger), ctl::Status::ok);
    EXPECT_EQ(call(stranger, drain).status, ctl::Status::not_found);
    EXPECT_EQ(sw_->registry().entries()[0].members[0].role, sw::MemberRole::standby);
    ::close(inherited);
    ::close(proof);
}

// Joins are charged to the joining user: past --max-shared-claims-per-user, limit_reached.
TEST_F(ControlTest, JoiningIsBoundedPerUser) {
    const auto [parent, child] = two_attached_sessions();
    std::vector<int> proofs;
    const std::uint32_t limit = server_->limits().shared_claims_per_user;
    for (std::uint32_t i = 0; i <= limit; ++i) {
        proofs.push_back(bound_socket(SOCK_STREAM));
        ASSERT_EQ(claim(parent, proofs.back(), ctl::ClaimRole::standby), ctl::Status::ok);
        const ctl::Status joined = claim(child, proofs.back());
        EXPECT_EQ(joined, i < limit ? ctl::Status::ok : ctl::Status::limit_reached) << i;
    }
    for (int p : proofs) ::close(p);
}

// A dual-stack socket (:: with IPV6_V6ONLY off) holds the port for IPv4 too, so its claim
// covers both wildcards and goes whole with one release; an IPv6-only one covers IPv6.
TEST_F(ControlTest, ADualStackProofClaimsBothWildcardsAndV6OnlyOne) {
    const int c = connect();
    ASSERT_EQ(attach(c), ctl::Status::ok);
    const int dual = bound_socket6(false);
    if (dual < 0) GTEST_SKIP() << "SKIPPED: this host has no IPv6";
    ASSERT_EQ(claim(c, dual), ctl::Status::ok);
    const auto both = sw_->registry().entries();
    ASSERT_EQ(both.size(), 2u);
    EXPECT_EQ(both[0].key.addr, wire::IpAddr::any(wire::IpFamily::v6));
    EXPECT_EQ(both[1].key.addr, wire::IpAddr::any(wire::IpFamily::v4));
    EXPECT_EQ(both[1].key.port, both[0].key.port);
    ctl::ReleaseRequest rel;
    rel.tuple = {IPPROTO_TCP, 6, both[0].key.port, {}};
    EXPECT_EQ(call(c, rel).status, ctl::Status::ok);
    EXPECT_TRUE(sw_->registry().entries().empty());
    const int only6 = bound_socket6(true);
    ASSERT_EQ(claim(c, only6), ctl::Status::ok);
    const auto one = sw_->registry().entries();
    ASSERT_EQ(one.size(), 1u);
    EXPECT_EQ(one[0].key.addr, wire::IpAddr::any(wire::IpFamily::v6));
    ::close(dual);
    ::close(only6);
}

// The owner connects its copy of the proof to a peer that never reads, fills it, sets
// an hour of SO_LINGER and closes its copy: the daemon's close on release must not wait.
TEST_F(ControlTest, ReleaseNeverLingers) {
    const int c = connect();
    ASSERT_EQ(attach(c), ctl::Status::ok);
    const int proof = bound_socket(SOCK_STREAM);
    ASSERT_EQ(claim(c, proof), ctl::Status::ok);
    const LingeringPeer sink = linger_for_an_hour(proof);
    ::close(proof);
    ctl::ReleaseRequest rel;
    rel.tuple = {IPPROTO_TCP, 4, static_cast<std::uint16_t>(0), {}};
    const auto claims = sw_->registry().entries();
    ASSERT_EQ(claims.size(), 1u);
    rel.tuple.port = claims[0].key.port;
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(call(c, rel).status, ctl::Status::ok);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
}

// Lingering sockets sent where the daemon only closes them: with an unknown op, in an
// empty message, 40 copies at once, and hidden in flight inside a UNIX socket. None may
// stall the control plane; the last one holds back only its sender's session (paused
// while the Reaper waits), which resumes once the close completes.
TEST_F(ControlTest, JunkThatLingersNeverBlocksTheControlPlane) {
    const int c = connect();
    const int other = connect();
    const std::uint32_t before = open_descriptor_count();
    std::vector<LingeringPeer> peers;  // each case needs its own socket: the daemon turns linger off
    const auto lingering = [&] { return lingering_socket(peers); };
    const auto answers_at_once = [&](const char* what) {
        const auto start = std::chrono::steady_clock::now();
        EXPECT_EQ(call(other, ctl::Header{.op = ctl::Op::status}).status, ctl::Status::ok) << what;
        EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1)) << what;
    };
    const ctl::Header unknown{.op = static_cast<ctl::Op>(99)};

    int tcp = lingering();
    EXPECT_EQ(call(c, unknown, std::span(&tcp, 1)).status, ctl::Status::bad_request);
    ::close(tcp);
    answers_at_once("unknown op");

    tcp = lingering();
    const int empty = connect();
    ASSERT_EQ(ctl::send_message(empty, nullptr, 0, std::span(&tcp, 1)), 0);
    ::close(tcp);
    settle();
    answers_at_once("empty message");
    hang_up(empty);

    tcp = lingering();
    ASSERT_EQ(send_raw(c, unknown, std::vector<int>(40, tcp)), 0);
    ::close(tcp);
    settle();
    answers_at_once("40 copies");
    drain(c);

    // In flight inside a UNIX socket: the Reaper's close of it blocks until the peer goes.
    stick_the_reaper(c, peers);
    EXPECT_EQ(drain(c), 1u);
    answers_at_once("a UNIX socket with a lingering socket in flight");

    // Behind the stuck close, the sender's own junk piles up until its session is paused.
    const std::size_t sent = kMaxPendingClosesPerUser + 1;
    const std::size_t answered = pile_junk_until_paused(c);
    EXPECT_LT(answered, sent) << "the session was never paused";
    peers.clear();  // every lingering close ends: the Reaper catches up and the session resumes
    std::size_t late = 0;
    EXPECT_TRUE(test::eventually([&] {
        server_->run_once(1);
        late += drain(c);
        return answered + late == sent && open_descriptor_count() == before;
    })) << answered
        << " + " << late << " answers of " << sent << "; " << open_descriptor_count() << " descriptors, " << before
        << " before";
}

// A session paused behind a stuck close whose client hangs up goes at once, with its port:
// epoll still reports the hang-up of a session it is not reading (the fuzzer found a
// session that outlived its client).
TEST_F(ControlTest, APausedSessionThatHangsUpGoesAtOnce) {
    const int c = connect();
    ASSERT_EQ(attach(c), ctl::Status::ok);
    drain(c);
    std::vector<LingeringPeer> peers;
    stick_the_reaper(c, peers);
    ASSERT_LT(pile_junk_until_paused(c), kMaxPendingClosesPerUser + 1) << "the session was never paused";
    ASSERT_EQ(server_->session_count(), 1u);
    hang_up(c);
    EXPECT_EQ(server_->session_count(), 0u);
    EXPECT_TRUE(sw_->port_ids().empty());
    peers.clear();
}

// msctl sockets: the daemon reads the owner's socket table and leaves hostile records
// out; a refresh bumps the table's request count; an unknown port is named.
TEST_F(ControlTest, SocketsComeFromTheTableWithJunkLeftOut) {
    const int a = connect();
    ASSERT_EQ(attach(a), ctl::Status::ok);
    sw::Port& port = sw_->port(0);
    std::uint8_t* table = port.region.base() + port.region.layout().sockets_offset;  // the application's memory too
    ring::SocketRecord good{};
    good.state = 4;
    good.family = 4;
    std::strcpy(good.congestion, "newreno");
    ring::SocketRecord junk;
    std::memset(&junk, 0x7f, sizeof junk);
    ring::SocketRecord modelled = good;  // BBR's phase, as the publisher writes it
    std::strcpy(modelled.phase, "bw_cruise");
    ring::SocketRecord unterminated = good;  // a phase that runs off its field
    std::memset(unterminated.phase, 'a', sizeof unterminated.phase);
    const ring::SocketRecord records[] = {good, junk, modelled, unterminated};
    ring::publish_sockets(table, records, 4, 0);

    const auto sockets = [&](const ctl::SocketsRequest& req) {
        EXPECT_EQ(ctl::send_message(a, &req, sizeof req), 0);
        settle();
        ctl::SocketsReply rep{};
        std::vector<int> fds;
        EXPECT_GE(ctl::receive_message(a, &rep, sizeof rep, fds, ctl::kMaxFds), static_cast<long>(sizeof(ctl::Header)));
        return rep;
    };
    const ctl::SocketsReply rep = sockets({.port_id = 0});
    ASSERT_EQ(rep.h.status, ctl::Status::ok);
    EXPECT_EQ(rep.count, 4u);
    EXPECT_EQ(rep.records, 2u);
    EXPECT_EQ(rep.invalid, 2u) << "the junk and the unterminated phase";
    EXPECT_EQ(std::string(rep.record[1].congestion), "newreno");
    EXPECT_EQ(std::string(rep.record[1].phase), "bw_cruise");

    EXPECT_EQ(sockets({.port_id = 0, .refresh = 1}).h.status, ctl::Status::ok);
    EXPECT_EQ(ring::sockets_requested(table), 1u);
    EXPECT_EQ(sockets({.port_id = 9}).h.status, ctl::Status::not_found);
}

class LimitedControlTest : public ControlTest {
protected:
    static Limits small() {
        Limits l;
        l.claims_per_session = 2;
        l.ports_per_user = 2;
        l.port_memory_per_user =
            2u << 20;  // 2 MiB: two ports of 64 slots (about 0.77 MiB each, the socket table included) fit, 8 pairs do not
        l.sessions_per_user = 4;
        l.claims_per_user = 3;
        l.outbox_bytes_per_user = 96u << 10;  // a session may leave 64 KiB unread (ControlTest)
        return l;
    }
    LimitedControlTest() : ControlTest(small()) {}
    // Sends status requests on `fd` and never reads, until the daemon drops a client or
    // 2000 requests went.
    void fill_outbox(int fd, std::uint64_t slow_before) {
        const ctl::Header status{.op = ctl::Op::status};
        for (int i = 0; i < 2000 && server_->counters().slow_clients == slow_before; ++i) {
            if (ctl::send_message(fd, &status, sizeof status, {}, true) != 0) break;
            if (i % 16 == 0) settle();
        }
        settle();
    }
};

TEST_F(LimitedControlTest, RefusesPastEachLimitAndFreesOnHangUp) {
    const int a = connect();
    ASSERT_EQ(attach(a), ctl::Status::ok);
    std::vector<int> proofs;
    for (int i = 0; i < 3; ++i) proofs.push_back(bound_socket(SOCK_DGRAM));
    EXPECT_EQ(claim(a, proofs[0]), ctl::Status::ok);
    EXPECT_EQ(claim(a, proofs[1]), ctl::Status::ok);
    EXPECT_EQ(claim(a, proofs[2]), ctl::Status::limit_reached);  // claims per session
    const int b = connect();
    EXPECT_EQ(attach(b, 8, 64), ctl::Status::limit_reached);  // port memory per user
    EXPECT_EQ(attach(b), ctl::Status::ok);
    const int c = connect();
    EXPECT_EQ(attach(c), ctl::Status::limit_reached);  // ports per user
    connect();
    connect();  // the fifth session of this user
    EXPECT_EQ(server_->session_count(), 4u);
    EXPECT_EQ(server_->counters().limits_reached, 4u);
    hang_up(b);
    EXPECT_EQ(attach(c), ctl::Status::ok);  // what b held is free again
    for (int fd : proofs) ::close(fd);
}

// Claims count against their user over all its sessions: two sessions of one user hold
// three claims between them, and the fourth is refused on either.
TEST_F(LimitedControlTest, CountsClaimsPerUserOverAllItsSessions) {
    const auto [a, b] = two_attached_sessions();
    std::vector<int> proofs;
    for (int i = 0; i < 4; ++i) proofs.push_back(bound_socket(SOCK_DGRAM));
    EXPECT_EQ(claim(a, proofs[0]), ctl::Status::ok);
    EXPECT_EQ(claim(a, proofs[1]), ctl::Status::ok);
    EXPECT_EQ(claim(b, proofs[2]), ctl::Status::ok);
    EXPECT_EQ(claim(b, proofs[3]), ctl::Status::limit_reached);  // claims per user
    hang_up(a);
    EXPECT_EQ(claim(b, proofs[3]), ctl::Status::ok) << "a's claims were given back";
    for (int fd : proofs) ::close(fd);
}

// Unread replies count against their user: a second session that stays under its own
// bound is dropped when both together pass the user's, and what they held is freed.
TEST_F(LimitedControlTest, DropsSessionsWhoseUserLeavesTooManyRepliesUnread) {
    const int first = connect();
    fill_outbox(first, 0);
    ASSERT_EQ(server_->counters().slow_clients, 1u) << "the first session alone passes its own 64 KiB";
    const int a = connect();
    const int b = connect();
    const ctl::Header status{.op = ctl::Op::status};
    for (int i = 0; i < 200; ++i) (void)ctl::send_message(a, &status, sizeof status, {}, true);
    settle();
    const std::uint64_t before = server_->counters().slow_clients;
    fill_outbox(b, before);
    EXPECT_EQ(server_->counters().slow_clients, before + 1) << "the user's 96 KiB were passed";
    const int other = connect();
    EXPECT_EQ(call(other, ctl::Header{.op = ctl::Op::status}).status, ctl::Status::ok);
    hang_up(a);
    hang_up(b);
    hang_up(first);
    const int again = connect();
    EXPECT_EQ(call(again, ctl::Header{.op = ctl::Op::status}).status, ctl::Status::ok) << "the budget was given back";
}

// Every per-user limit fits in what the daemon can hold; a limit that does not is named.
TEST(Limits, FitInsideTheDaemonsOwnLimits) {
    const auto twenty_thousand = fit_limits({}, {20000, 65536}).value();
    EXPECT_EQ(twenty_thousand.descriptors_per_user, (20000 - kReservedDescriptors) / 4);
    EXPECT_EQ(twenty_thousand.claims_per_user, twenty_thousand.descriptors_per_user);
    EXPECT_EQ(twenty_thousand.descriptors_for_users, 20000 - kReservedDescriptors);
    const auto plenty = fit_limits({}, {1u << 20, 65536}).value();
    EXPECT_EQ(plenty.claims_per_user, 65536u / 4);
    Limits too_many_claims;
    too_many_claims.claims_per_user = 60000;
    const auto claims_misfit = fit_limits(too_many_claims, {1u << 20, 65536}).error();
    EXPECT_EQ(claims_misfit.limit, UnfitLimit::claims_per_user);
    EXPECT_NE(claims_misfit.message.find("--max-claims-per-user"), std::string::npos);
    Limits too_many_fds;
    too_many_fds.descriptors_per_user = 30000;
    const auto fds_misfit = fit_limits(too_many_fds, {20000, 65536}).error();
    EXPECT_EQ(fds_misfit.limit, UnfitLimit::descriptors_per_user);
    EXPECT_NE(fds_misfit.message.find("--max-descriptors-per-user"), std::string::npos);
    const auto too_few = fit_limits({}, {300, 65536});
    ASSERT_FALSE(too_few.ok());
    EXPECT_EQ(too_few.error().limit, UnfitLimit::descriptor_limit);
}

// Unprivileged users together stop short of the reserve; a privileged peer goes on.
TEST(Limits, KeepAReserveForPrivilegedPeers) {
    Limits l = fit_limits({}, {4096, 65536}).value();
    l.descriptors_per_user = l.claims_per_user = l.descriptors_for_users + 100;  // as if many users held it
    UserLedger users(l);
    const Peer nobody{1, 65534, false};
    const Peer root{2, 0, true};
    std::uint32_t granted = 0;
    while (users.add_claim(nobody)) ++granted;
    EXPECT_EQ(granted, l.descriptors_for_users);
    EXPECT_EQ(users.add_claim(nobody).error(), LimitHit::descriptors_for_users);
    EXPECT_TRUE(users.open_session(root)) << "root is served from the reserve";
    EXPECT_TRUE(users.add_claim(root));
}

}  // namespace
}  // namespace ms::daemon
