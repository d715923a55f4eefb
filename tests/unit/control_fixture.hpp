// The control plane under test (control_test.cpp, handoff_control_test.cpp): a ControlServer
// over a memory NIC and a null data path, with clients that speak the protocol by hand.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <optional>
#include <thread>
#include <utility>

#include "ctl/claim.hpp"
#include "ctl/protocol.hpp"
#include "ctl/seqpacket.hpp"
#include "daemon/control_server.hpp"
#include "daemon/descriptors.hpp"
#include "daemon/limits.hpp"
#include "daemon/null_data_path.hpp"
#include "daemon/reaper.hpp"
#include "eventually.hpp"
#include "sw/nic.hpp"

namespace ms::daemon::control_fixture {

inline sockaddr_in v4(const char* addr, std::uint16_t port) {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    ::inet_pton(AF_INET, addr, &sin.sin_addr);
    return sin;
}

struct Option {
    int level = 0;
    int name = 0;  // 0: none
};

inline int bound_socket(int type, const char* addr = "0.0.0.0", std::uint16_t port = 0, Option option = {}) {
    const int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
    const int one = 1;
    if (option.name) {
        EXPECT_EQ(::setsockopt(fd, option.level, option.name, &one, sizeof one), 0);
    }
    const sockaddr_in sin = v4(addr, port);
    EXPECT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&sin), sizeof sin), 0) << std::strerror(errno);
    return fd;
}

// An IPv6 TCP socket bound to the wildcard, dual-stack or IPv6-only; -1 if this host
// has no IPv6.
inline int bound_socket6(bool v6only) {
    const int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    const int flag = v6only ? 1 : 0;
    EXPECT_EQ(::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &flag, sizeof flag), 0);
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&sin6), sizeof sin6) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

inline std::uint16_t local_port(int fd) {
    sockaddr_in sin{};
    socklen_t len = sizeof sin;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len);
    return ntohs(sin.sin_port);
}

// A listener whose one connection is never accepted, so that a socket connected to it and
// filled cannot finish a lingering close until the listener closes (and resets it).
class LingeringPeer {
public:
    LingeringPeer() : fd_(bound_socket(SOCK_STREAM, "127.0.0.1")) { EXPECT_EQ(::listen(fd_, 1), 0); }
    ~LingeringPeer() {
        if (fd_ >= 0) ::close(fd_);
    }
    LingeringPeer(LingeringPeer&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    LingeringPeer& operator=(LingeringPeer&&) = delete;
    [[nodiscard]] std::uint16_t port() const { return local_port(fd_); }

private:
    int fd_;
};

// Connects `tcp` to a new LingeringPeer, fills it and sets an hour of SO_LINGER: the last
// close of `tcp` then blocks until the peer is gone.
inline LingeringPeer linger_for_an_hour(int tcp) {
    LingeringPeer peer;
    const sockaddr_in to = v4("127.0.0.1", peer.port());
    EXPECT_EQ(::connect(tcp, reinterpret_cast<const sockaddr*>(&to), sizeof to), 0);
    std::vector<char> junk(1 << 16);
    while (::send(tcp, junk.data(), junk.size(), MSG_DONTWAIT) > 0) {
    }
    const linger hour{1, 3600};
    EXPECT_EQ(::setsockopt(tcp, SOL_SOCKET, SO_LINGER, &hour, sizeof hour), 0);
    return peer;
}

class ControlTest : public ::testing::Test {
protected:
    explicit ControlTest(Limits limits = {})
        : nic_(1, 64, wire::MacAddr{{2, 0, 0, 0, 0, 1}}), sw_(sw::Switch::create(nic_, sw::SwitchConfig{}).value()) {
        path_ = "/tmp/ms-control-test-" + std::to_string(::getpid()) + ".sock";
        limits.outbox_bytes = 64u << 10;
        auto opened = ControlServer::open(ServerContext{*sw_, data_path_, iface_, {own_netns_cookie(), 0, {}}, limits, 256},
                                          path_, std::nullopt);
        EXPECT_TRUE(opened.ok()) << (opened.ok() ? "" : opened.error().message);
        if (opened) server_ = std::move(opened).value();
    }
    ~ControlTest() override {
        for (int fd : clients_) ::close(fd);
        server_.reset();
    }

    int connect() {
        const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        sockaddr_un sun{};
        sun.sun_family = AF_UNIX;
        std::memcpy(sun.sun_path, path_.c_str(), path_.size() + 1);
        EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun), 0);
        clients_.push_back(fd);
        settle();
        return fd;
    }
    void hang_up(int fd) {
        ::close(fd);
        std::erase(clients_, fd);
        settle();
    }
    void settle() {
        for (int i = 0; i < 256 && server_->run_once(0); ++i) {
        }
    }
    // Sends `req` with `fds` and returns the reply's header (its status), serving in between.
    template <class Req>
    ctl::Header call(int fd, const Req& req, std::span<const int> fds = {}) {
        EXPECT_EQ(ctl::send_message(fd, &req, sizeof req, fds), 0);
        settle();
        alignas(8) std::uint8_t buf[ctl::kMaxMessage];
        std::vector<int> received;
        const long n = ctl::receive_message(fd, buf, sizeof buf, received, ctl::kMaxFds);
        ctl::close_all(received);
        ctl::Header h{};
        if (n >= static_cast<long>(sizeof h)) std::memcpy(&h, buf, sizeof h);
        else h.status = ctl::Status::internal;
        return h;
    }
    // Sends `h` with `fds` (any number) without waiting for the reply.
    static int send_raw(int fd, const ctl::Header& h, std::span<const int> fds) {
        msghdr msg{};
        iovec iov{const_cast<ctl::Header*>(&h), sizeof h};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
        msg.msg_control = control.data();
        msg.msg_controllen = control.size();
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
        std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
        return ::sendmsg(fd, &msg, 0) < 0 ? -errno : 0;
    }
    // Reads every reply waiting on `fd`; returns how many there were.
    static std::size_t drain(int fd) {
        alignas(8) std::uint8_t buf[ctl::kMaxMessage];
        std::size_t count = 0;
        for (;;) {
            const long n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
            if (n <= 0) return count;
            ++count;
        }
    }
    ctl::Status attach(int fd, std::uint32_t pairs = 1, std::uint32_t slots = 64) {
        return call(fd, ctl::AttachRequest{.ring_pairs = pairs, .slots_per_ring = slots}).status;
    }
    // A TCP socket whose close blocks for an hour (its peer kept in `peers`).
    static int lingering_socket(std::vector<LingeringPeer>& peers) {
        const int tcp = bound_socket(SOCK_STREAM);
        peers.push_back(linger_for_an_hour(tcp));
        return tcp;
    }
    // Sends on `c` a UNIX socket with a lingering socket in flight inside it: the daemon's
    // Reaper, which closes it, is then stuck until `peers` go.
    void stick_the_reaper(int c, std::vector<LingeringPeer>& peers) {
        const int tcp = lingering_socket(peers);
        int pair[2];
        ASSERT_EQ(::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, pair), 0);
        ASSERT_EQ(ctl::send_message(pair[0], "x", 1, std::span(&tcp, 1)), 0);
        ::close(tcp);
        ::close(pair[0]);
        ASSERT_EQ(send_raw(c, ctl::Header{.op = static_cast<ctl::Op>(99)}, std::span(&pair[1], 1)), 0);
        ::close(pair[1]);  // in flight, so that the daemon's copy is the last one
        settle();
    }
    // Sends junk with a descriptor on `c` until the Reaper holds too many of its user's
    // descriptors and pauses the session; returns how many were answered.
    std::size_t pile_junk_until_paused(int c) {
        const int efd = ::eventfd(0, EFD_CLOEXEC);
        for (std::size_t i = 0; i < kMaxPendingClosesPerUser + 1; ++i) {
            EXPECT_EQ(send_raw(c, ctl::Header{.op = static_cast<ctl::Op>(99)}, std::span(&efd, 1)), 0);
            settle();
        }
        ::close(efd);
        return drain(c);
    }
    // Serves until the audit has revoked `count` claims in all, or for 3 s.
    void serve_until_revoked(std::uint64_t count) {
        for (int i = 0; i < 30 && server_->counters().claims_revoked < count; ++i) server_->run_once(100);
        EXPECT_EQ(server_->counters().claims_revoked, count);
    }
    // Two sessions, each attached with a port of its own.
    std::pair<int, int> two_attached_sessions() {
        const int first = connect();
        const int second = connect();
        EXPECT_EQ(attach(first), ctl::Status::ok);
        EXPECT_EQ(attach(second), ctl::Status::ok);
        return {first, second};
    }

    ctl::Status claim(int fd, int proof, ctl::ClaimRole role = ctl::ClaimRole::serving) {
        const int fds[] = {proof};
        ctl::ClaimRequest req;
        req.role = role;
        return call(fd, req, fds).status;
    }

    NullDataPath data_path_;
    netlink::InterfaceInfo iface_{.name = "test0", .ifindex = 0, .mac = {}, .mtu = 1500, .addresses = {}, .gateway = {}};
    sw::MemoryNic nic_;
    std::unique_ptr<sw::Switch> sw_;
    std::string path_;
    std::unique_ptr<ControlServer> server_;
    std::vector<int> clients_;
};

}  // namespace ms::daemon::control_fixture
