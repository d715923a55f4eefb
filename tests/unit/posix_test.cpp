// The POSIX layer's conversions, without root or a daemon: socket addresses to and from
// the stack's, what accept() and getsockname() copy out, SO_RCVTIMEO/SO_SNDTIMEO
// timeouts, the errno each of the stack's and the client library's reasons becomes, the
// descriptor facts the preload reads, the descriptor table's bounds, and the list of
// listeners an exec hands over (MULTISTACK_LISTENERS), read as hostile input.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <string>

#include "posix/exec_listeners.hpp"
#include "posix/fd_table.hpp"
#include "posix/sockaddr.hpp"

namespace ms::posix {
namespace {

wire::IpAddr ip(const char* text) {
    wire::IpAddr a;
    EXPECT_TRUE(wire::parse_ip(text, a));
    return a;
}

sockaddr_in as_v4(const SockaddrBuffer& b) {
    sockaddr_in sin{};
    EXPECT_EQ(b.length, sizeof sin);
    std::memcpy(&sin, &b.storage, sizeof sin);
    return sin;
}

sockaddr_in6 as_v6(const SockaddrBuffer& b) {
    sockaddr_in6 sin6{};
    EXPECT_EQ(b.length, sizeof sin6);
    std::memcpy(&sin6, &b.storage, sizeof sin6);
    return sin6;
}

TEST(PosixSockaddr, ConvertsBothWaysInNetworkOrder) {
    const Endpoint e{ip("198.18.0.1"), 8080};
    const SockaddrBuffer b = to_sockaddr(e, AF_INET);
    const sockaddr_in sin = as_v4(b);
    EXPECT_EQ(sin.sin_family, AF_INET);
    EXPECT_EQ(ntohs(sin.sin_port), 8080);
    EXPECT_EQ(ntohl(sin.sin_addr.s_addr), 0xc6120001u);
    EXPECT_EQ(endpoint_of(b.get(), b.length), e);
    EXPECT_EQ(describe(e), "198.18.0.1:8080");
}

TEST(PosixSockaddr, WritesIpv6AndMapsIpv4IntoAnIpv6Socket) {
    const Endpoint v6{ip("2001:2::1"), 443};
    const SockaddrBuffer b = to_sockaddr(v6, AF_INET6);
    const sockaddr_in6 sin6 = as_v6(b);
    EXPECT_EQ(sin6.sin6_family, AF_INET6);
    EXPECT_EQ(ntohs(sin6.sin6_port), 443);
    EXPECT_EQ(endpoint_of(b.get(), b.length), v6);
    EXPECT_EQ(describe(v6), "[2001:2::1]:443");
    // An IPv4 peer of an AF_INET6 socket: ::ffff:198.18.0.2, read back as IPv4.
    const Endpoint v4{ip("198.18.0.2"), 80};
    const SockaddrBuffer mapped = to_sockaddr(v4, AF_INET6);
    const sockaddr_in6 m = as_v6(mapped);
    EXPECT_EQ(m.sin6_addr.s6_addr[10], 0xff);
    EXPECT_EQ(m.sin6_addr.s6_addr[11], 0xff);
    EXPECT_EQ(m.sin6_addr.s6_addr[15], 2);
    EXPECT_EQ(endpoint_of(mapped.get(), mapped.length), v4) << "v4-mapped is kept as IPv4";
    // The IPv4 wildcard is the IPv6 one in an AF_INET6 socket.
    const sockaddr_in6 any = as_v6(to_sockaddr(Endpoint{wire::IpAddr::any(wire::IpFamily::v4), 0}, AF_INET6));
    EXPECT_TRUE(IN6_IS_ADDR_UNSPECIFIED(&any.sin6_addr));
}

TEST(PosixSockaddr, RefusesWhatIsNotAnInternetAddressOfItsFullSize) {
    const SockaddrBuffer v4 = to_sockaddr(Endpoint{ip("198.18.0.1"), 1}, AF_INET);
    const SockaddrBuffer v6 = to_sockaddr(Endpoint{ip("2001:2::1"), 1}, AF_INET6);
    EXPECT_FALSE(endpoint_of(v4.get(), v4.length - 1)) << "short";
    EXPECT_FALSE(endpoint_of(v6.get(), sizeof(sockaddr_in))) << "a sockaddr_in6 cut to sockaddr_in's size";
    EXPECT_FALSE(endpoint_of(nullptr, 16));
    sockaddr_storage unix_family{};
    unix_family.ss_family = AF_UNIX;
    EXPECT_FALSE(endpoint_of(reinterpret_cast<const sockaddr*>(&unix_family), sizeof unix_family));
}

TEST(PosixSockaddr, KnowsLoopbackByItsWholeNetwork) {
    EXPECT_TRUE(is_loopback(Endpoint{ip("127.0.0.1"), 1}));
    EXPECT_TRUE(is_loopback(Endpoint{ip("127.255.0.9"), 1}));
    EXPECT_TRUE(is_loopback(Endpoint{ip("::1"), 1}));
    EXPECT_FALSE(is_loopback(Endpoint{ip("198.18.0.1"), 1}));
    EXPECT_FALSE(is_loopback(Endpoint{ip("0.0.0.0"), 1}));
    EXPECT_FALSE(is_loopback(Endpoint{ip("2001:2::1"), 1}));
    EXPECT_FALSE(is_loopback(Endpoint{ip("::"), 1}));
}

// As accept() and getsockname(): truncated to the caller's length, which then says the
// full size; null pointers are left alone.
TEST(PosixSockaddr, CopiesOutTruncatedAndSaysTheFullSize) {
    const Endpoint e{ip("198.18.0.2"), 443};
    const SockaddrBuffer want = to_sockaddr(e, AF_INET);
    sockaddr_storage out{};
    socklen_t len = sizeof out;
    copy_out(e, AF_INET, reinterpret_cast<sockaddr*>(&out), &len);
    EXPECT_EQ(len, sizeof(sockaddr_in));
    EXPECT_EQ(std::memcmp(&out, &want.storage, sizeof(sockaddr_in)), 0);
    len = sizeof out;
    copy_out(e, AF_INET6, reinterpret_cast<sockaddr*>(&out), &len);
    EXPECT_EQ(len, sizeof(sockaddr_in6)) << "in the socket's family";
    unsigned char small[4] = {0xee, 0xee, 0xee, 0xee};
    len = 2;
    copy_out(e, AF_INET, reinterpret_cast<sockaddr*>(small), &len);
    EXPECT_EQ(len, sizeof(sockaddr_in));
    EXPECT_EQ(small[2], 0xee) << "wrote past the caller's length";
    copy_out(e, AF_INET, nullptr, &len);
    copy_out(e, AF_INET, reinterpret_cast<sockaddr*>(&out), nullptr);
}

TEST(PosixSockaddr, ReadsTheBoundAddressOfInternetSocketsOnly) {
    const int v4 = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in any{};
    any.sin_family = AF_INET;
    ASSERT_EQ(::bind(v4, reinterpret_cast<sockaddr*>(&any), sizeof any), 0);
    const auto bound = bound_address(v4);
    ASSERT_TRUE(bound);
    EXPECT_NE(bound->port, 0) << "an ephemeral port";
    EXPECT_EQ(socket_family(v4), AF_INET);
    const int v6 = ::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (v6 >= 0) {
        sockaddr_in6 any6{};
        any6.sin6_family = AF_INET6;
        ASSERT_EQ(::bind(v6, reinterpret_cast<sockaddr*>(&any6), sizeof any6), 0);
        const auto bound6 = bound_address(v6);
        ASSERT_TRUE(bound6);
        EXPECT_EQ(bound6->addr.family, wire::IpFamily::v6);
        EXPECT_TRUE(bound6->addr.is_any());
        EXPECT_EQ(socket_family(v6), AF_INET6);
    }
    const int unix_socket = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    EXPECT_FALSE(bound_address(unix_socket)) << "another family";
    EXPECT_FALSE(bound_address(-1)) << "a failure";
    ::close(v4);
    ::close(unix_socket);
    if (v6 >= 0) ::close(v6);
}

// A zero timeval means no timeout; anything else rounds up to whole milliseconds, so that
// a timeout of a microsecond never reads as none.
TEST(PosixTimeouts, ReadZeroAsNoneAndRoundUp) {
    EXPECT_EQ(timeout_ms({0, 0}), -1);
    EXPECT_EQ(timeout_ms({0, 1}), 1);
    EXPECT_EQ(timeout_ms({1, 500000}), 1500);
    EXPECT_EQ(timeout_ms({LONG_MAX / 2000, 0}), INT32_MAX) << "clamped";
    const timeval back = to_timeval(1500);
    EXPECT_EQ(back.tv_sec, 1);
    EXPECT_EQ(back.tv_usec, 500000);
    const timeval none = to_timeval(-1);
    EXPECT_EQ(none.tv_sec, 0);
    EXPECT_EQ(none.tv_usec, 0);
}

TEST(PosixErrno, NamesEachReasonAsLinuxWould) {
    EXPECT_EQ(errno_for(client::Error::address_in_use), EADDRINUSE);
    EXPECT_EQ(errno_for(client::Error::permission_denied), EACCES);
    EXPECT_EQ(errno_for(client::Error::no_route), ENETUNREACH);
    EXPECT_EQ(errno_for(client::Error::unreachable), ENETUNREACH);
    EXPECT_EQ(errno_for(client::Error::limit_reached), ENOBUFS);
    EXPECT_EQ(errno_for(client::Error::switch_full), ENOBUFS);
    EXPECT_EQ(errno_for(client::Error::switch_not_running), ENETDOWN);
    EXPECT_EQ(errno_for(client::Error::bad_socket), EADDRNOTAVAIL);
    EXPECT_EQ(errno_for(utcp::ConnError::refused), ECONNREFUSED);
    EXPECT_EQ(errno_for(utcp::ConnError::reset), ECONNRESET);
    EXPECT_EQ(errno_for(utcp::ConnError::timed_out), ETIMEDOUT);
    EXPECT_EQ(errno_for(utcp::ConnError::aborted), ECONNABORTED);
    EXPECT_EQ(errno_for(utcp::ConnError::net_unreachable), ENETUNREACH);
    EXPECT_EQ(errno_for(utcp::ConnError::host_unreachable), EHOSTUNREACH);
    EXPECT_EQ(errno_for(utcp::ConnError::protocol_error), EPROTO);
    EXPECT_EQ(errno_for(utcp::ConnError::none), 0);
}

TEST(PosixDescriptors, MoveAboveTheFloorCloseOnExec) {
    const int fd = ::open("/dev/null", O_RDONLY);
    ASSERT_GE(fd, 0);
    const int moved = move_descriptor_above(fd, 900);
    ASSERT_GE(moved, 900);
    EXPECT_NE(::fcntl(moved, F_GETFD) & FD_CLOEXEC, 0);
    EXPECT_EQ(::fcntl(fd, F_GETFD), -1) << "the old number was closed";
    EXPECT_EQ(move_descriptor_above(-1, 900), -1);
    ::close(moved);
    const iovec parts[] = {{nullptr, 3}, {nullptr, 0}, {nullptr, 1500}};
    EXPECT_EQ(total_length(parts), 1503u);
}

// Numbers outside the table are never ours, and setting them does nothing.
TEST(PosixFdTable, IgnoresNumbersOutsideItsRange) {
    FdTable& t = fd_table();
    EXPECT_FALSE(t.in_range(-1));
    EXPECT_EQ(t.socket(-1), nullptr);
    EXPECT_EQ(t.pending(-1), 0);
    t.set_pending(-1, pending::stream);
    EXPECT_EQ(t.pending(-1), 0);
    EXPECT_EQ(t.socket(INT_MAX), nullptr);
    EXPECT_GT(t.own_fd_floor(), 2) << "the library's numbers stay above the program's";
    const int fd = ::open("/dev/null", O_RDONLY);
    ASSERT_TRUE(t.in_range(fd));
    t.set_pending(fd, pending::stream | pending::reuse_addr);
    EXPECT_EQ(t.pending(fd), pending::stream | pending::reuse_addr);
    t.set_pending(fd, 0);
    ::close(fd);
}

// A TCP socket bound to a loopback port, listening or not.
int bound_tcp_socket(bool listening) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    const SockaddrBuffer a = to_sockaddr(Endpoint{ip("127.0.0.1"), 0}, AF_INET);
    EXPECT_EQ(::bind(fd, a.get(), a.length), 0);
    if (listening) {
        EXPECT_EQ(::listen(fd, 1), 0);
    }
    return fd;
}

TEST(PosixExecListeners, TakesBoundUnplacedSocketsAndLeavesTheEnvironment) {
    const int handed = bound_tcp_socket(false);
    const int listening = bound_tcp_socket(true);
    const int udp = ::socket(AF_INET, SOCK_DGRAM, 0);
    const std::string list = std::to_string(handed) + ":77:o," + std::to_string(listening) + ":5:o," + std::to_string(udp) +
                             ":5:i,abc,12:,:3:o,999999:4:o," + std::to_string(handed) + ":x:o," + std::to_string(handed) +
                             ":7:z," + std::to_string(handed) + ":7," + std::to_string(handed) + "::i," +
                             std::to_string(handed) + ":9:i,";
    ::setenv("MULTISTACK_LISTENERS", list.c_str(), 1);
    const auto taken = take_exec_listeners();
    ASSERT_EQ(taken.size(), 2u);
    EXPECT_EQ(taken[0].fd, handed);
    EXPECT_EQ(taken[0].backlog, 77);
    EXPECT_TRUE(taken[0].owned);
    EXPECT_EQ(taken[1].backlog, 9);
    EXPECT_FALSE(taken[1].owned);
    EXPECT_EQ(::getenv("MULTISTACK_LISTENERS"), nullptr);
    EXPECT_TRUE(take_exec_listeners().empty());
    for (int fd : {handed, listening, udp}) ::close(fd);
}

}  // namespace
}  // namespace ms::posix
