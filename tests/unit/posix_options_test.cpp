// The POSIX layer's getsockopt and setsockopt (posix/options.hpp), without root or a
// daemon: each option reads back what was set (as Linux rounds it), bad values, lengths,
// levels and unknown options give Linux's errno, and what an option reads or changes
// depends on the socket's state (socket.hpp): a listener passes its options on, a
// connection takes them at once, and only a listener says SO_ACCEPTCONN.
#include <gtest/gtest.h>
#include <netinet/in.h>
// After netinet/in.h: in6_flowlabel_req.
#include <linux/in6.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "posix/ip_marks.hpp"
#include "posix/options.hpp"
#include "posix/sockaddr.hpp"
#include "utcp/link.hpp"

namespace ms::posix {
namespace {

constexpr std::uint32_t kUnconnectedMss = 1460;

wire::IpAddr ip(const char* text) {
    wire::IpAddr a;
    EXPECT_TRUE(wire::parse_ip(text, a));
    return a;
}

// A socket of one state with the stack's default options, and the context its option
// calls get; `pushes` counts the output each call asks for.
class PosixOptions : public ::testing::Test {
protected:
    static Socket socket_in(SocketState state) { return Socket{.state = std::move(state)}; }

    base::Result<int, Errno> set_int(Socket& s, int level, int name, int v) {
        return set_socket_option(s, context_, level, name, &v, sizeof v);
    }
    int get_int(Socket& s, int level, int name) {
        int v = -12345;
        socklen_t len = sizeof v;
        const auto got = get_socket_option(s, context_, level, name, &v, &len);
        EXPECT_TRUE(got.ok()) << "level " << level << " option " << name;
        EXPECT_EQ(len, sizeof v);
        return v;
    }
    int set_error(Socket& s, int level, int name, const void* value, socklen_t len) {
        const auto set = set_socket_option(s, context_, level, name, value, len);
        return set.ok() ? 0 : set.error().code;
    }
    int get_error(Socket& s, int level, int name, void* value, socklen_t* len) {
        const auto got = get_socket_option(s, context_, level, name, value, len);
        return got.ok() ? 0 : got.error().code;
    }

    utcp::CongestionRegistry congestion_;
    int pushes_ = 0;
    OptionContext context_{
        .congestion = congestion_, .unconnected_mss = kUnconnectedMss, .push_output = [this] { ++pushes_; }};
};

struct IntOption {
    int level, name, set, reads;
};

TEST_F(PosixOptions, EachIntegerOptionReadsBackAsLinuxRoundsIt) {
    const IntOption options[] = {
        {SOL_SOCKET, SO_REUSEADDR, 1, 1},
        {SOL_SOCKET, SO_REUSEADDR, 0, 0},
        {SOL_SOCKET, SO_REUSEPORT, 7, 1},
        {SOL_SOCKET, SO_KEEPALIVE, 1, 1},
        {SOL_SOCKET, SO_KEEPALIVE, 0, 0},
        {SOL_SOCKET, SO_PRIORITY, 6, 6},
        {IPPROTO_IP, IP_TOS, 0x10, 0x10},
        {IPPROTO_TCP, TCP_NODELAY, 1, 1},
        {IPPROTO_TCP, TCP_NODELAY, 0, 0},
        {IPPROTO_TCP, TCP_CORK, 1, 1},
        {IPPROTO_TCP, TCP_CORK, 0, 0},
        {IPPROTO_TCP, TCP_KEEPIDLE, 30, 30},
        {IPPROTO_TCP, TCP_KEEPIDLE, 0, 1},
        {IPPROTO_TCP, TCP_KEEPINTVL, 5, 5},
        {IPPROTO_TCP, TCP_KEEPCNT, 3, 3},
        {IPPROTO_TCP, TCP_KEEPCNT, 0, 1},
        {IPPROTO_TCP, TCP_FASTOPEN, 5, 1},
        {IPPROTO_TCP, TCP_FASTOPEN, 0, 0},
        // Linux doubles a buffer size, within its floor and ceiling.
        {SOL_SOCKET, SO_SNDBUF, 10000, 20000},
        {SOL_SOCKET, SO_SNDBUF, 1, 4608},
        {SOL_SOCKET, SO_RCVBUF, 10000, 20000},
        {SOL_SOCKET, SO_RCVBUF, 1, 2304},
        {SOL_SOCKET, SO_RCVBUF, 1 << 30, 1 << 27},
    };
    Socket s = socket_in(StreamState{});
    for (const IntOption& o : options) {
        ASSERT_TRUE(set_int(s, o.level, o.name, o.set).ok()) << "level " << o.level << " option " << o.name;
        EXPECT_EQ(get_int(s, o.level, o.name), o.reads) << "level " << o.level << " option " << o.name << " set " << o.set;
    }
}

TEST_F(PosixOptions, KeepsOptionsWithoutEffectOnUtcp) {
    Socket s = socket_in(StreamState{});
    EXPECT_TRUE(set_int(s, IPPROTO_TCP, TCP_QUICKACK, 0).ok());
    EXPECT_EQ(get_int(s, IPPROTO_TCP, TCP_QUICKACK), 1) << "UTCP's ACK policy is its own";
    EXPECT_TRUE(set_int(s, IPPROTO_TCP, TCP_DEFER_ACCEPT, 5).ok());
    EXPECT_EQ(pushes_, 0) << "nothing for a connection to send";
    EXPECT_EQ(get_int(s, SOL_SOCKET, SO_DOMAIN), AF_INET);
}

TEST_F(PosixOptions, LingerReadsBackAndWantsAWholeStruct) {
    Socket s = socket_in(StreamState{});
    linger l{};
    socklen_t len = sizeof l;
    ASSERT_EQ(get_error(s, SOL_SOCKET, SO_LINGER, &l, &len), 0);
    EXPECT_EQ(l.l_onoff, 0) << "off until set";
    const linger zero{1, 0};
    ASSERT_EQ(set_error(s, SOL_SOCKET, SO_LINGER, &zero, sizeof zero), 0);
    ASSERT_EQ(get_error(s, SOL_SOCKET, SO_LINGER, &l, &len), 0);
    EXPECT_EQ(len, sizeof l);
    EXPECT_EQ(l.l_onoff, 1);
    EXPECT_EQ(l.l_linger, 0);
    EXPECT_EQ(set_error(s, SOL_SOCKET, SO_LINGER, &zero, sizeof zero - 1), EINVAL);
    EXPECT_EQ(set_error(s, SOL_SOCKET, SO_LINGER, nullptr, sizeof zero), EINVAL);
}

// SO_RCVTIMEO is mirrored onto the application's end, where blocking receives sleep.
TEST_F(PosixOptions, TimeoutsReadBackAndTheReceiveOneIsMirrored) {
    int pair[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
    context_.app_fd = pair[0];
    Socket s = socket_in(StreamState{});
    const timeval t{1, 500000};
    ASSERT_EQ(set_error(s, SOL_SOCKET, SO_RCVTIMEO, &t, sizeof t), 0);
    ASSERT_EQ(set_error(s, SOL_SOCKET, SO_SNDTIMEO, &t, sizeof t), 0);
    EXPECT_EQ(s.recv_timeout_ms, 1500);
    EXPECT_EQ(s.send_timeout_ms, 1500);
    timeval back{};
    socklen_t len = sizeof back;
    ASSERT_EQ(get_error(s, SOL_SOCKET, SO_SNDTIMEO, &back, &len), 0);
    EXPECT_EQ(back.tv_sec, 1);
    EXPECT_EQ(back.tv_usec, 500000);
    timeval kernel{};
    len = sizeof kernel;
    ASSERT_EQ(::getsockopt(pair[0], SOL_SOCKET, SO_RCVTIMEO, &kernel, &len), 0);
    EXPECT_EQ(kernel.tv_sec, 1) << "the application's end times out too";
    const timeval too_many_usec{0, 1'000'000};
    const timeval negative_usec{0, -1};
    EXPECT_EQ(set_error(s, SOL_SOCKET, SO_RCVTIMEO, &too_many_usec, sizeof too_many_usec), EDOM);
    EXPECT_EQ(set_error(s, SOL_SOCKET, SO_SNDTIMEO, &negative_usec, sizeof negative_usec), EDOM);
    EXPECT_EQ(set_error(s, SOL_SOCKET, SO_RCVTIMEO, &t, sizeof t - 1), EINVAL);
    EXPECT_EQ(s.recv_timeout_ms, 1500) << "a refused value changes nothing";
    ::close(pair[0]);
    ::close(pair[1]);
}

TEST_F(PosixOptions, CongestionControlByNameCopiedOutAsAString) {
    Socket s = socket_in(StreamState{});
    ASSERT_EQ(set_error(s, IPPROTO_TCP, TCP_CONGESTION, "newreno", 7), 0);
    char name[16];
    std::memset(name, 'x', sizeof name);
    socklen_t len = sizeof name;
    ASSERT_EQ(get_error(s, IPPROTO_TCP, TCP_CONGESTION, name, &len), 0);
    EXPECT_EQ(len, 7u);
    EXPECT_STREQ(name, "newreno");
    len = 3;
    ASSERT_EQ(get_error(s, IPPROTO_TCP, TCP_CONGESTION, name, &len), 0);
    EXPECT_EQ(len, 3u) << "truncated to the caller's room";
    EXPECT_EQ(set_error(s, IPPROTO_TCP, TCP_CONGESTION, "bbr9", 4), ENOENT);
    EXPECT_EQ(set_error(s, IPPROTO_TCP, TCP_CONGESTION, nullptr, 4), EFAULT);
    EXPECT_EQ(get_error(s, IPPROTO_TCP, TCP_CONGESTION, nullptr, &len), EFAULT);
    EXPECT_EQ(s.options.congestion, "newreno") << "a refused name changes nothing";
    EXPECT_EQ(pushes_, 0);
}

TEST_F(PosixOptions, ShortOrMissingValuesAreRefused) {
    Socket s = socket_in(StreamState{});
    const int one = 1;
    EXPECT_EQ(set_error(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one - 1), EINVAL);
    EXPECT_EQ(set_error(s, IPPROTO_TCP, TCP_NODELAY, nullptr, sizeof one), EINVAL);
    EXPECT_EQ(set_error(s, IPPROTO_TCP, TCP_CORK, &one, 2), EINVAL);
    EXPECT_EQ(set_error(s, SOL_SOCKET, SO_REUSEADDR, &one, 0), EINVAL);
    EXPECT_FALSE(s.options.nodelay);
    EXPECT_FALSE(s.reuse_addr);
    int v = 0;
    socklen_t len = sizeof v;
    EXPECT_EQ(get_error(s, SOL_SOCKET, SO_KEEPALIVE, nullptr, &len), EFAULT);
    EXPECT_EQ(get_error(s, SOL_SOCKET, SO_KEEPALIVE, &v, nullptr), EFAULT);
}

// As Linux: a shorter buffer gets the first bytes, and the length says how many.
TEST_F(PosixOptions, GetTruncatesToTheCallersLength) {
    Socket s = socket_in(StreamState{});
    ASSERT_TRUE(set_int(s, SOL_SOCKET, SO_PRIORITY, 0x0102).ok());
    unsigned char out[4] = {0xee, 0xee, 0xee, 0xee};
    socklen_t len = 1;
    ASSERT_EQ(get_error(s, SOL_SOCKET, SO_PRIORITY, out, &len), 0);
    EXPECT_EQ(len, 1u);
    EXPECT_EQ(out[0], 0x02);
    EXPECT_EQ(out[1], 0xee) << "wrote past the caller's length";
}

TEST_F(PosixOptions, UnknownOptionsAndLevelsAreNotProtocolOptions) {
    Socket s = socket_in(StreamState{});
    const int one = 1;
    int v = 0;
    socklen_t len = sizeof v;
    const std::pair<int, int> unknown[] = {
        {SOL_SOCKET, SO_BROADCAST},  {IPPROTO_TCP, TCP_MD5SIG}, {IPPROTO_IP, IP_TTL},
        {IPPROTO_IPV6, IPV6_V6ONLY}, {IPPROTO_UDP, 1},          {12345, 1},
    };
    for (const auto& [level, name] : unknown) {
        EXPECT_EQ(set_error(s, level, name, &one, sizeof one), ENOPROTOOPT) << level << "/" << name;
        EXPECT_EQ(get_error(s, level, name, &v, &len), ENOPROTOOPT) << level << "/" << name;
    }
    EXPECT_EQ(set_error(s, 12345, 1, &one, 1), EINVAL) << "the value is read before the option is looked up";
    EXPECT_EQ(pushes_, 0);
}

// An AF_INET6 socket's own level: IPV6_V6ONLY as the kernel socket had it (it cannot
// change once bound: EINVAL), IPV6_TCLASS read back and marking the socket's packets. An
// AF_INET socket has none.
TEST_F(PosixOptions, Ipv6LevelOnAnIpv6SocketOnly) {
    Socket s = socket_in(StreamState{});
    s.family = AF_INET6;
    s.v6only = true;
    const int zero = 0;
    EXPECT_EQ(get_int(s, IPPROTO_IPV6, IPV6_V6ONLY), 1);
    EXPECT_EQ(set_error(s, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero), EINVAL);
    ASSERT_TRUE(set_int(s, IPPROTO_IPV6, IPV6_TCLASS, 0x2b).ok());
    EXPECT_EQ(get_int(s, IPPROTO_IPV6, IPV6_TCLASS), 0x2b);
    EXPECT_EQ(s.options.marks.dscp, 0x28) << "the ECN bits stay the stack's";
    EXPECT_EQ(set_int(s, IPPROTO_IPV6, IPV6_TCLASS, 256).error().code, EINVAL);
    ASSERT_TRUE(set_int(s, IPPROTO_IPV6, IPV6_TCLASS, -1).ok());
    EXPECT_EQ(get_int(s, IPPROTO_IPV6, IPV6_TCLASS), 0) << "-1: the default";
    EXPECT_EQ(get_int(s, IPPROTO_IPV6, IPV6_AUTOFLOWLABEL), 1);
    ASSERT_TRUE(set_int(s, IPPROTO_IPV6, IPV6_AUTOFLOWLABEL, 0).ok());
    EXPECT_EQ(s.options.marks.flow_label, std::optional<std::uint32_t>(0)) << "no label";
    ASSERT_TRUE(set_int(s, IPPROTO_IPV6, IPV6_FLOWINFO_SEND, 1).ok());
    EXPECT_EQ(get_int(s, IPPROTO_IPV6, IPV6_FLOWINFO_SEND), 1);
    EXPECT_EQ(pushes_, 0) << "marks wait for the next segment";
    Socket v4 = socket_in(StreamState{});
    int v = 0;
    socklen_t len = sizeof v;
    EXPECT_EQ(get_error(v4, IPPROTO_IPV6, IPV6_TCLASS, &v, &len), ENOPROTOOPT);
}

// A flow label asked for at connect() or sendto(): only with IPV6_FLOWINFO_SEND, only a
// sockaddr_in6's nonzero label, and only one the kernel socket leased (else EINVAL).
TEST(PosixIpMarks, AnAskedFlowLabelMustBeLeasedOnTheKernelSocket) {
    const int fd = ::socket(AF_INET6, SOCK_DGRAM, 0);
    ASSERT_GE(fd, 0) << "an IPv6 socket: " << std::strerror(errno);
    sockaddr_in6 to{.sin6_family = AF_INET6, .sin6_port = htons(9), .sin6_flowinfo = htonl(0x12345)};
    to.sin6_addr.s6_addr[0] = 0x20, to.sin6_addr.s6_addr[1] = 0x01, to.sin6_addr.s6_addr[3] = 0x02;  // 2001:2::
    const auto* addr = reinterpret_cast<const sockaddr*>(&to);
    IpOptions o;
    EXPECT_FALSE(asked_flow_label(o, fd, addr, sizeof to).value()) << "IPV6_FLOWINFO_SEND is off";
    o.flowinfo_send = true;
    EXPECT_EQ(asked_flow_label(o, fd, addr, sizeof to).error().code, EINVAL) << "not leased";
    EXPECT_FALSE(asked_flow_label(o, fd, addr, sizeof(sockaddr_in)).value()) << "too short for a sockaddr_in6";
    in6_flowlabel_req lease{};
    lease.flr_dst = to.sin6_addr;
    lease.flr_label = htonl(0x12345);
    lease.flr_action = IPV6_FL_A_GET;
    lease.flr_share = IPV6_FL_S_EXCL;
    lease.flr_flags = IPV6_FL_F_CREATE;
    ASSERT_EQ(::setsockopt(fd, IPPROTO_IPV6, IPV6_FLOWLABEL_MGR, &lease, sizeof lease), 0) << std::strerror(errno);
    EXPECT_EQ(asked_flow_label(o, fd, addr, sizeof to).value(), std::optional<std::uint32_t>(0x12345));
    o.asked_label = 0x12345;
    o.tos = 0xb9;
    EXPECT_EQ(marks_of(o), (utcp::IpMarks{.dscp = 0xb8, .ecn = 0x01, .flow_label = 0x12345}))
        << "ECN bits apart (UDP sends them)";
    to.sin6_flowinfo = htonl(0x0ff00000);  // a traffic class only: no label asked
    EXPECT_FALSE(asked_flow_label(o, fd, addr, sizeof to).value());
    ::close(fd);
}

// An option that changes what a connection does asks for output at once; one that is
// only kept does not.
TEST_F(PosixOptions, OnlyConnectionOptionsPushOutput) {
    Socket s = socket_in(StreamState{});
    ASSERT_TRUE(set_int(s, SOL_SOCKET, SO_REUSEADDR, 1).ok());
    ASSERT_TRUE(set_int(s, SOL_SOCKET, SO_PRIORITY, 3).ok());
    ASSERT_TRUE(set_int(s, IPPROTO_TCP, TCP_CORK, 1).ok());
    EXPECT_EQ(pushes_, 0) << "no connection to push";
    ASSERT_TRUE(set_int(s, SOL_SOCKET, SO_KEEPALIVE, 1).ok());
    ASSERT_TRUE(set_int(s, IPPROTO_TCP, TCP_NODELAY, 1).ok());
    EXPECT_EQ(pushes_, 2);
}

TEST_F(PosixOptions, CorkTurnsNagleOnForTheConnectionOnly) {
    Socket s = socket_in(StreamState{});
    ASSERT_TRUE(set_int(s, IPPROTO_TCP, TCP_NODELAY, 1).ok());
    ASSERT_TRUE(set_int(s, IPPROTO_TCP, TCP_CORK, 1).ok());
    EXPECT_FALSE(effective_options(s).nodelay);
    EXPECT_EQ(get_int(s, IPPROTO_TCP, TCP_NODELAY), 1) << "the application's setting stays";
    ASSERT_TRUE(set_int(s, IPPROTO_TCP, TCP_CORK, 0).ok());
    EXPECT_TRUE(effective_options(s).nodelay);
}

// --- what each state reads -----------------------------------------------------------

TEST_F(PosixOptions, KindAndProtocolFollowTheState) {
    Socket listener = socket_in(ListenerState{});
    Socket stream = socket_in(StreamState{});
    Socket udp = socket_in(DatagramState{});
    EXPECT_EQ(get_int(listener, SOL_SOCKET, SO_TYPE), SOCK_STREAM);
    EXPECT_EQ(get_int(stream, SOL_SOCKET, SO_TYPE), SOCK_STREAM);
    EXPECT_EQ(get_int(udp, SOL_SOCKET, SO_TYPE), SOCK_DGRAM);
    EXPECT_EQ(get_int(listener, SOL_SOCKET, SO_PROTOCOL), IPPROTO_TCP);
    EXPECT_EQ(get_int(udp, SOL_SOCKET, SO_PROTOCOL), IPPROTO_UDP);
    EXPECT_EQ(get_int(listener, SOL_SOCKET, SO_ACCEPTCONN), 1);
    EXPECT_EQ(get_int(stream, SOL_SOCKET, SO_ACCEPTCONN), 0) << "a listener's option on a connection";
    EXPECT_EQ(get_int(udp, SOL_SOCKET, SO_ACCEPTCONN), 0);
}

TEST_F(PosixOptions, OnlyAStreamHasAnErrorAndItIsReadOnce) {
    Socket stream = socket_in(StreamState{.pending_error = ECONNREFUSED});
    EXPECT_EQ(get_int(stream, SOL_SOCKET, SO_ERROR), ECONNREFUSED);
    EXPECT_EQ(get_int(stream, SOL_SOCKET, SO_ERROR), 0) << "cleared by the read";
    Socket listener = socket_in(ListenerState{});
    Socket udp = socket_in(DatagramState{});
    EXPECT_EQ(get_int(listener, SOL_SOCKET, SO_ERROR), 0);
    EXPECT_EQ(get_int(udp, SOL_SOCKET, SO_ERROR), 0);
}

TEST_F(PosixOptions, TcpInfoSaysListenOrCloseWithoutAConnection) {
    const auto state_of = [&](Socket& s) {
        tcp_info info{};
        socklen_t len = sizeof info;
        EXPECT_EQ(get_error(s, IPPROTO_TCP, TCP_INFO, &info, &len), 0);
        return info.tcpi_state;
    };
    Socket listener = socket_in(ListenerState{});
    Socket closed = socket_in(StreamState{.conn = nullptr});
    Socket udp = socket_in(DatagramState{});
    EXPECT_EQ(state_of(listener), TCP_LISTEN);
    EXPECT_EQ(state_of(closed), TCP_CLOSE) << "closed by the stack";
    EXPECT_EQ(state_of(udp), TCP_CLOSE);
    EXPECT_EQ(get_int(listener, IPPROTO_TCP, TCP_MAXSEG), static_cast<int>(kUnconnectedMss));
}

// A listener's options go to the connections it accepts next.
TEST_F(PosixOptions, AListenerPassesItsOptionsOn) {
    utcp::Listener l;
    ListenerState listening;
    listening.listener = &l;
    Socket s = socket_in(std::move(listening));
    ASSERT_TRUE(set_int(s, SOL_SOCKET, SO_RCVBUF, 65536).ok());
    ASSERT_TRUE(set_int(s, IPPROTO_TCP, TCP_NODELAY, 1).ok());
    ASSERT_EQ(set_error(s, IPPROTO_TCP, TCP_CONGESTION, "newreno", 8), 0);
    EXPECT_EQ(l.options.recv_buffer, 131072u);
    EXPECT_TRUE(l.options.nodelay);
    EXPECT_EQ(l.options.congestion, "newreno");
    ASSERT_TRUE(set_int(s, SOL_SOCKET, SO_REUSEPORT, 1).ok());
    EXPECT_EQ(get_int(s, SOL_SOCKET, SO_REUSEPORT), 1);
}

// A connection in SYN_SENT on a stack over memory: options reach it at once.
class PosixConnectionOptions : public PosixOptions {
protected:
    PosixConnectionOptions() {
        utcp::StackConfig config;
        config.address = ip("198.18.0.1");
        config.resolve = [](const wire::IpAddr&) { return std::optional<wire::MacAddr>(wire::MacAddr{}); };
        stack_ = std::make_unique<utcp::Stack>(config, link_, 0, utcp::draw_secrets().value());
        const utcp::ConnectResult made = stack_->connect(40000, ip("198.18.0.2"), 80);
        EXPECT_TRUE(made.ok());
        conn_ = *made;
    }
    Socket connecting() { return socket_in(StreamState{.conn = conn_, .tuple = conn_->tuple(), .connecting = true}); }

    utcp::MemoryLink link_;
    std::unique_ptr<utcp::Stack> stack_;
    utcp::Connection* conn_ = nullptr;
};

TEST_F(PosixConnectionOptions, TheConnectionTakesAChangeAtOnce) {
    Socket s = connecting();
    ASSERT_TRUE(set_int(s, IPPROTO_TCP, TCP_NODELAY, 1).ok());
    EXPECT_TRUE(conn_->options().nodelay);
    ASSERT_TRUE(set_int(s, IPPROTO_TCP, TCP_CORK, 1).ok());
    EXPECT_FALSE(conn_->options().nodelay) << "Nagle on while corked";
    EXPECT_EQ(pushes_, 2);
    ASSERT_TRUE(set_int(s, IPPROTO_TCP, TCP_CORK, 0).ok());
    EXPECT_TRUE(conn_->options().nodelay);
    EXPECT_EQ(pushes_, 3) << "uncorking sends what waits";
    ASSERT_EQ(set_error(s, IPPROTO_TCP, TCP_CONGESTION, "newreno", 7), 0);
    EXPECT_EQ(conn_->options().congestion, "newreno");
}

TEST_F(PosixConnectionOptions, ReadsTheConnectionsOwnState) {
    Socket s = connecting();
    tcp_info info{};
    socklen_t len = sizeof info;
    ASSERT_EQ(get_error(s, IPPROTO_TCP, TCP_INFO, &info, &len), 0);
    EXPECT_EQ(info.tcpi_state, TCP_SYN_SENT);
    EXPECT_EQ(get_int(s, IPPROTO_TCP, TCP_MAXSEG), conn_->send_mss());
    EXPECT_EQ(get_int(s, SOL_SOCKET, SO_ACCEPTCONN), 0);
}

// --- the states themselves -------------------------------------------------------------

TEST(PosixSocketState, ReachesOnlyTheFieldsOfItsKind) {
    utcp::Listener l;
    ListenerState listening;
    listening.listener = &l;
    listening.proof_fd = 7;
    Socket listener{.state = std::move(listening)};
    Socket stream{.state = StreamState{}};
    Socket udp{.state = DatagramState{}};
    Socket unused;
    EXPECT_FALSE(unused.in_use()) << "a new slot is unused";
    EXPECT_TRUE(listener.in_use());
    EXPECT_EQ(listener.listener(), &l);
    EXPECT_EQ(stream.listener(), nullptr);
    EXPECT_EQ(listener.connection(), nullptr);
    ASSERT_NE(listener.claimed(), nullptr);
    EXPECT_EQ(listener.claimed()->proof_fd, 7);
    EXPECT_NE(udp.claimed(), nullptr) << "a UDP socket holds a claim too";
    EXPECT_EQ(stream.claimed(), nullptr);
    EXPECT_EQ(unused.claimed(), nullptr);
    listener.state = Unused{};
    EXPECT_FALSE(listener.in_use());
    EXPECT_EQ(listener.listener(), nullptr) << "nothing of the listener is left";
}

}  // namespace
}  // namespace ms::posix
