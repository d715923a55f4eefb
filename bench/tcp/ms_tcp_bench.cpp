// ms-tcp-bench: the two ends of bench/tcp.sh. The server end runs on UTCP (through
// multistackd) or on kernel sockets, so that the same client measures both; the client
// end is always the kernel's.
//
//   ms-tcp-bench serve --stack utcp|kernel [--socket PATH] --listen ADDR:PORT --mode M
//                      [--cc NAME] [--buffer BYTES]    (congestion control; UTCP's socket buffers)
//       M = sink:   read each connection to its end, then close;
//           source: send --bytes N on each connection, then close;
//           accept: close each connection at once (set-up and teardown rate).
//   ms-tcp-bench send --connect ADDR:PORT --bytes N [--cc NAME]      one flow to a sink
//   ms-tcp-bench receive --connect ADDR:PORT --bytes N [--cc NAME]   one flow from a source
//   ms-tcp-bench connect --connect ADDR:PORT --count N --parallel P
//       N connections, P at a time, each until the server's FIN.
// Client modes print one JSON line: bytes and seconds, or connections per second.
// --cc names the congestion control on either stack: UTCP's registry on a UTCP server,
// TCP_CONGESTION on kernel sockets (whose default is the host's sysctl, which need not be
// CUBIC: a benchmark that compares algorithms says which one it runs).
#include <CLI/CLI.hpp>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nlohmann/json.hpp>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <iostream>
#include <vector>

#include "bbr/bbr.hpp"
#include "loop/event_loop.hpp"

namespace {

using ms::utcp::Connection;

volatile std::sig_atomic_t g_stop = 0;
ms::loop::EventLoop* g_loop = nullptr;
void on_signal(int) {
    g_stop = 1;
    if (g_loop) g_loop->stop();
}

double seconds_since(std::uint64_t start_ms) {
    return static_cast<double>(ms::loop::EventLoop::clock_ms() - start_ms) / 1000.0;
}

// --- UTCP server -------------------------------------------------------------------------

class UtcpServer final : public ms::utcp::Handler {
public:
    UtcpServer(std::string mode, std::uint64_t bytes) : mode_(std::move(mode)), bytes_(bytes) {}
    void on_accepted(Connection& c) override {
        if (mode_ == "accept") return c.close();
        if (mode_ == "source") pump(c);
    }
    void on_readable(Connection& c) override {
        std::uint8_t buf[65536];
        while (c.recv(buf) > 0) {
        }
        if (c.peer_closed()) c.close();
    }
    void on_peer_closed(Connection& c) override { on_readable(c); }
    void on_writable(Connection& c) override {
        if (mode_ == "source") pump(c);
    }

private:
    void pump(Connection& c) {
        static const std::vector<std::uint8_t> zeros(65536, 0x5a);
        auto& sent = sent_[&c];
        while (sent < bytes_) {
            const std::size_t n = c.send({zeros.data(), std::min<std::uint64_t>(zeros.size(), bytes_ - sent)});
            if (n == 0) return;
            sent += n;
        }
        sent_.erase(&c);
        c.close();
    }
    std::string mode_;
    std::uint64_t bytes_;
    std::unordered_map<Connection*, std::uint64_t> sent_;
};

// The congestion control of either stack, and the UTCP end's daemon and buffers.
struct StackOptions {
    std::string socket;
    std::string congestion;  // empty: the stack's default
    std::uint32_t buffer = 1 << 20;
};

int serve_utcp(const StackOptions& stack_options, const ms::wire::IpAddr& addr, std::uint16_t port, const std::string& mode,
               std::uint64_t bytes) {
    ms::loop::LoopOptions options;
    options.addresses = {addr};
    options.defaults.send_buffer = options.defaults.recv_buffer = stack_options.buffer;
    if (!stack_options.congestion.empty()) options.defaults.congestion = stack_options.congestion;
    options.congestion_algorithms.push_back(ms::bbr::algorithm());
    auto loop = ms::loop::EventLoop::open(stack_options.socket, options);
    if (!loop) {
        std::cerr << "ms-tcp-bench: " << loop.error().message() << "\n";
        return 1;
    }
    UtcpServer server(mode, bytes);
    auto l = loop.value()->listen(port, server);
    if (!l) {
        std::cerr << "ms-tcp-bench: listen: " << l.error().message() << "\n";
        return 1;
    }
    l.value()->backlog = l.value()->syn_queue = 4096;
    g_loop = loop.value().get();
    std::cout << "serving" << std::endl;
    loop.value()->run();
    g_loop = nullptr;
    return 0;
}

// --- kernel sockets ----------------------------------------------------------------------

int checked(int rc, const char* what) {
    if (rc < 0) {
        std::perror(what);
        std::exit(1);
    }
    return rc;
}

// Sets the kernel socket's congestion control; an empty name keeps the host's default.
void set_kernel_congestion(int fd, const std::string& name) {
    if (name.empty()) return;
    checked(::setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, name.data(), static_cast<socklen_t>(name.size())),
            "setsockopt(TCP_CONGESTION)");
}

sockaddr_in to_sockaddr(const ms::wire::IpAddr& addr, std::uint16_t port) {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    std::memcpy(&sin.sin_addr, addr.bytes.data(), 4);
    return sin;
}

void serve_kernel_connection(int fd, const std::string& mode, std::uint64_t bytes) {
    static std::vector<std::uint8_t> buf(1 << 16, 0x5a);
    if (mode == "sink") {
        while (::read(fd, buf.data(), buf.size()) > 0) {
        }
    } else if (mode == "source") {
        for (std::uint64_t sent = 0; sent < bytes;) {
            const ssize_t n = ::write(fd, buf.data(), std::min<std::uint64_t>(buf.size(), bytes - sent));
            if (n <= 0) break;
            sent += static_cast<std::uint64_t>(n);
        }
    }
    ::close(fd);
}

int serve_kernel(const ms::wire::IpAddr& addr, std::uint16_t port, const std::string& mode, std::uint64_t bytes,
                 const std::string& congestion) {
    const int lfd = checked(::socket(AF_INET, SOCK_STREAM, 0), "socket");
    set_kernel_congestion(lfd, congestion);  // accepted connections inherit it
    const int one = 1;
    ::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    const sockaddr_in sin = to_sockaddr(addr, port);
    checked(::bind(lfd, reinterpret_cast<const sockaddr*>(&sin), sizeof sin), "bind");
    checked(::listen(lfd, 4096), "listen");
    std::cout << "serving" << std::endl;
    while (!g_stop) {
        const int fd = ::accept(lfd, nullptr, nullptr);
        if (fd >= 0) serve_kernel_connection(fd, mode, bytes);
    }
    ::close(lfd);
    return 0;
}

int connect_to(const sockaddr_in& sin, const std::string& congestion = {}) {
    const int fd = checked(::socket(AF_INET, SOCK_STREAM, 0), "socket");
    set_kernel_congestion(fd, congestion);
    checked(::connect(fd, reinterpret_cast<const sockaddr*>(&sin), sizeof sin), "connect");
    return fd;
}

int client_flow(const sockaddr_in& sin, bool send, std::uint64_t bytes, const std::string& congestion) {
    std::vector<std::uint8_t> buf(1 << 16, 0x5a);
    const std::uint64_t start = ms::loop::EventLoop::clock_ms();
    const int fd = connect_to(sin, congestion);
    std::uint64_t moved = 0;
    while (moved < bytes) {
        const std::size_t want = std::min<std::uint64_t>(buf.size(), bytes - moved);
        const ssize_t n = send ? ::write(fd, buf.data(), want) : ::read(fd, buf.data(), want);
        if (n <= 0) break;
        moved += static_cast<std::uint64_t>(n);
    }
    if (send) {
        ::shutdown(fd, SHUT_WR);
        while (::read(fd, buf.data(), buf.size()) > 0) {  // the sink's FIN: everything arrived
        }
    }
    ::close(fd);
    const double s = seconds_since(start);
    std::cout
        << nlohmann::json{{"bytes", moved}, {"seconds", s}, {"gbit_per_s", static_cast<double>(moved) * 8 / s / 1e9}}.dump()
        << std::endl;
    return moved == bytes ? 0 : 1;
}

// Keeps `parallel` non-blocking connections going until `count` have finished; each
// finishes when the server's FIN arrives (set-up, then teardown started by the server).
int client_connect_rate(const sockaddr_in& sin, std::uint64_t count, std::uint32_t parallel) {
    const int ep = checked(::epoll_create1(0), "epoll_create1");
    std::uint64_t started = 0, finished = 0, failed = 0;
    const auto start_one = [&] {
        const int fd = checked(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), "socket");
        const int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&sin), sizeof sin);
        if (rc < 0 && errno != EINPROGRESS) checked(rc, "connect");
        epoll_event ev{.events = EPOLLIN | EPOLLRDHUP, .data = {.fd = fd}};
        checked(::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), "epoll_ctl");
        ++started;
    };
    const std::uint64_t t0 = ms::loop::EventLoop::clock_ms();
    while (started < std::min<std::uint64_t>(count, parallel)) start_one();
    epoll_event events[256];
    while (finished < count && !g_stop) {
        const int n = ::epoll_wait(ep, events, 256, 5000);
        if (n == 0) break;  // stalled: report what finished
        for (int k = 0; k < n; ++k) {
            char b;
            if (::recv(events[k].data.fd, &b, 1, 0) < 0 && errno != ECONNRESET) ++failed;
            ::close(events[k].data.fd);
            ++finished;
            if (started < count) start_one();
        }
    }
    const double s = seconds_since(t0);
    std::cout << nlohmann::json{{"connections", finished},
                                {"failed", failed},
                                {"seconds", s},
                                {"per_second", static_cast<double>(finished) / s}}
                     .dump()
              << std::endl;
    return finished == count && failed == 0 ? 0 : 1;
}

bool parse(const std::string& endpoint, ms::wire::IpAddr& addr, std::uint16_t& port) {
    if (ms::wire::parse_endpoint(endpoint, addr, port) && addr.family == ms::wire::IpFamily::v4) return true;
    std::cerr << "ms-tcp-bench: want an IPv4 ADDR:PORT, got " << endpoint << "\n";
    return false;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"ms-tcp-bench: the server (UTCP or kernel) and client (kernel) ends of bench/tcp.sh"};
    app.require_subcommand(1);
    std::string stack = "kernel", endpoint, mode = "sink";
    StackOptions stack_options;
    std::uint64_t bytes = 1ull << 30, count = 10000;
    std::uint32_t parallel = 1;
    auto* serve = app.add_subcommand("serve", "accept connections and sink, source or close them");
    serve->add_option("--stack", stack, "utcp or kernel")->check(CLI::IsMember({"utcp", "kernel"}));
    serve->add_option("--socket", stack_options.socket, "multistackd control socket (utcp)");
    serve->add_option("--cc", stack_options.congestion,
                      "congestion control (utcp: cubic, newreno or bbr; kernel: any TCP_CONGESTION name); "
                      "the stack's default if not given");
    serve->add_option("--buffer", stack_options.buffer, "send and receive buffer of each connection (utcp), bytes")
        ->check(CLI::Range(4096u, 64u << 20))
        ->capture_default_str();
    serve->add_option("--listen", endpoint, "ADDR:PORT")->required();
    serve->add_option("--mode", mode, "sink, source or accept")->check(CLI::IsMember({"sink", "source", "accept"}));
    serve->add_option("--bytes", bytes, "bytes per connection (source)");
    auto* send = app.add_subcommand("send", "one flow to a sink");
    auto* receive = app.add_subcommand("receive", "one flow from a source");
    auto* rate = app.add_subcommand("connect", "connection set-up and teardown rate");
    for (auto* sub : {send, receive, rate}) sub->add_option("--connect", endpoint, "ADDR:PORT")->required();
    for (auto* sub : {send, receive}) {
        sub->add_option("--bytes", bytes, "bytes to move")->capture_default_str();
        sub->add_option("--cc", stack_options.congestion,
                        "TCP_CONGESTION of the kernel socket (the host's default if not given)");
    }
    rate->add_option("--count", count, "connections")->capture_default_str();
    rate->add_option("--parallel", parallel, "connections at a time")->capture_default_str();
    CLI11_PARSE(app, argc, argv);

    ms::wire::IpAddr addr;
    std::uint16_t port = 0;
    if (!parse(endpoint, addr, port)) return 2;
    // Without SA_RESTART, so that a blocked accept() returns and sees the stop.
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
    if (*serve) {
        if (stack == "utcp") return serve_utcp(stack_options, addr, port, mode, bytes);
        return serve_kernel(addr, port, mode, bytes, stack_options.congestion);
    }
    const sockaddr_in sin = to_sockaddr(addr, port);
    if (*send) return client_flow(sin, true, bytes, stack_options.congestion);
    if (*receive) return client_flow(sin, false, bytes, stack_options.congestion);
    return client_connect_rate(sin, count, std::max<std::uint32_t>(parallel, 1));
}
