// ms-socket-calls: what one call costs a server on a socket that is ready, through the
// API it is given (bench/preload/run.py, part "calls"):
//   --api posix: the POSIX calls: on the kernel's stack, or on UTCP when run under
//                libmultistack-preload.so;
//   --api event: UTCP's event API (loop::EventLoop) through multistackd at --socket.
// It connects to a kernel peer that streams without end (--source ADDR:PORT) and to one
// that discards (--sink ADDR:PORT), then times --calls of each:
//   poll_ready: epoll_wait(timeout 0) on a set whose one socket has data waiting (event
//               API: one turn of the loop, which is what epoll_wait does under the preload);
//   recv_64:    a 64-byte read from the streaming socket while its receive buffer holds
//               data: rounds of reads until it runs dry (or kRoundReads), each after the
//               buffer has filled again, untimed; a window update a read sends counts;
//   send_64:    a 64-byte write to the sink, Nagle on (the calls, not one packet each:
//               a segment leaves per MSS of writes), in rounds as the reads: each after
//               the send side has room again, untimed.
// Prints one JSON object: nanoseconds per call of each.
#include <CLI/CLI.hpp>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nlohmann/json.hpp>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <stdexcept>
#include <string>
#include <thread>

#include "loop/event_loop.hpp"

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kChunk = 64;
constexpr std::uint64_t kRoundCalls = 1024;          // 64 KiB: well within either stack's buffers
constexpr auto kRefill = std::chrono::milliseconds(5);  // the peer fills the window again meanwhile

double ns_per_call(Clock::time_point start, std::uint64_t calls) {
    return static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count()) /
           static_cast<double>(calls);
}

ms::wire::IpAddr address_of(const std::string& endpoint, std::uint16_t& port) {
    ms::wire::IpAddr addr;
    if (!ms::wire::parse_endpoint(endpoint, addr, port)) throw std::runtime_error("not ADDR:PORT: " + endpoint);
    return addr;
}

// Nanoseconds per call over `calls` calls: rounds of `call` until it says it could not
// (the buffer ran dry, or full) or kRoundCalls, each after `refill` (untimed).
template <class Refill, class Call>
double timed_calls(std::uint64_t calls, Refill&& refill, Call&& call) {
    std::uint64_t done = 0;
    Clock::duration spent{};
    while (done < calls) {
        refill();
        const auto start = Clock::now();
        std::uint64_t round = 0;
        while (round < kRoundCalls && done + round < calls && call()) ++round;
        spent += Clock::now() - start;
        done += round;
    }
    return static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(spent).count()) /
           static_cast<double>(calls);
}

// --- the POSIX calls ----------------------------------------------------------------------

int connect_to(const std::string& endpoint) {
    std::uint16_t port = 0;
    const ms::wire::IpAddr addr = address_of(endpoint, port);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    std::memcpy(&sin.sin_addr, addr.bytes.data(), 4);
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || ::connect(fd, reinterpret_cast<const sockaddr*>(&sin), sizeof sin) != 0) {
        throw std::runtime_error("connect to " + endpoint + ": " + std::strerror(errno));
    }
    ::fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

// Waits, in `epfd`, for `fd` to be ready for `events`.
void wait_for(int epfd, int fd, std::uint32_t events) {
    epoll_event ev{.events = events, .data = {.fd = fd}};
    ::epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev);
    epoll_event out{};
    while (::epoll_wait(epfd, &out, 1, 1000) == 0) {
    }
}

nlohmann::json posix_calls(const std::string& source, const std::string& sink, std::uint64_t calls) {
    const int in = connect_to(source);
    const int out = connect_to(sink);
    const int epfd = ::epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{.events = EPOLLIN, .data = {.fd = in}};
    ::epoll_ctl(epfd, EPOLL_CTL_ADD, in, &ev);
    ev = {.events = EPOLLOUT, .data = {.fd = out}};
    ::epoll_ctl(epfd, EPOLL_CTL_ADD, out, &ev);
    wait_for(epfd, in, EPOLLIN);
    nlohmann::json r;
    epoll_event got[4];
    auto start = Clock::now();
    for (std::uint64_t i = 0; i < calls; ++i) {
        if (::epoll_wait(epfd, got, 4, 0) < 1) throw std::runtime_error("the ready socket was not reported");
    }
    r["poll_ready"] = ns_per_call(start, calls);
    char buf[kChunk];
    r["recv_64"] = timed_calls(
        calls,
        [&] {
            std::this_thread::sleep_for(kRefill);
            wait_for(epfd, in, EPOLLIN);
        },
        [&] {
            if (::recv(in, buf, kChunk, 0) > 0) return true;
            if (errno != EAGAIN) throw std::runtime_error(std::string("recv: ") + std::strerror(errno));
            return false;
        });
    r["send_64"] = timed_calls(
        calls,
        [&] {
            std::this_thread::sleep_for(kRefill);
            wait_for(epfd, out, EPOLLOUT);
        },
        [&] {
            if (::send(out, buf, kChunk, MSG_NOSIGNAL) > 0) return true;
            if (errno != EAGAIN) throw std::runtime_error(std::string("send: ") + std::strerror(errno));
            return false;
        });
    ::close(in);
    ::close(out);
    ::close(epfd);
    return r;
}

// --- the event API ------------------------------------------------------------------------

class Quiet final : public ms::utcp::Handler {};

ms::utcp::Connection& open_connection(ms::loop::EventLoop& loop, Quiet& handler, const std::string& endpoint) {
    std::uint16_t port = 0;
    const ms::wire::IpAddr addr = address_of(endpoint, port);
    auto c = loop.connect(addr, port, handler);
    if (!c) throw std::runtime_error("connect to " + endpoint + ": " + c.error().message());
    for (int tries = 0; tries < 500 && c.value()->state() != ms::utcp::State::established; ++tries) loop.run_once(10);
    if (c.value()->state() != ms::utcp::State::established) throw std::runtime_error("no handshake with " + endpoint);
    return *c.value();
}

nlohmann::json event_calls(const std::string& socket_path, const std::string& source, const std::string& sink,
                           std::uint64_t calls) {
    ms::loop::LoopOptions options;
    options.super_segments = false;  // as under the preload
    options.data_area_bytes = 0;
    auto opened = ms::loop::EventLoop::open(socket_path, options);
    if (!opened) throw std::runtime_error("multistackd at " + socket_path + ": " + opened.error().message());
    ms::loop::EventLoop& loop = *opened.value();
    Quiet handler;
    ms::utcp::Connection& in = open_connection(loop, handler, source);
    ms::utcp::Connection& out = open_connection(loop, handler, sink);
    while (in.readable() == 0) loop.run_once(10);
    nlohmann::json r;
    auto start = Clock::now();
    for (std::uint64_t i = 0; i < calls; ++i) {
        loop.turn(ms::loop::EventLoop::clock_us());
        if (in.readable() == 0) throw std::runtime_error("the ready connection was not ready");
    }
    r["poll_ready"] = ns_per_call(start, calls);
    std::uint8_t buf[kChunk];
    r["recv_64"] = timed_calls(
        calls,
        [&] {
            const auto until = Clock::now() + kRefill;
            while (Clock::now() < until || in.readable() == 0) loop.run_once(1);
        },
        [&] {
            if (in.recv(buf) == 0) return false;
            loop.stack().flush(ms::loop::EventLoop::clock_us());  // a window update leaves, as under the preload
            return true;
        });
    r["send_64"] = timed_calls(
        calls,
        [&] {
            const auto until = Clock::now() + kRefill;
            while (Clock::now() < until || out.send_room() < kRoundCalls * kChunk) loop.run_once(1);
        },
        [&] {
            if (out.send({buf, kChunk}) == 0) return false;
            loop.stack().flush(ms::loop::EventLoop::clock_us());  // as the preload's send leaves at once
            return true;
        });
    in.abort();
    out.abort();
    loop.turn(ms::loop::EventLoop::clock_us());
    return r;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"ms-socket-calls: the cost of one socket call on a ready socket, per API"};
    std::string api = "posix";
    std::string socket_path, source, sink;
    std::uint64_t calls = 200'000;
    app.add_option("--api", api, "posix (the kernel's, or UTCP's under the preload) or event (UTCP's event API)")
        ->check(CLI::IsMember({"posix", "event"}));
    app.add_option("--socket", socket_path, "multistackd's control socket (--api event)");
    app.add_option("--source", source, "ADDR:PORT of a kernel peer that streams")->required();
    app.add_option("--sink", sink, "ADDR:PORT of a kernel peer that discards")->required();
    app.add_option("--calls", calls, "calls timed of each kind")->check(CLI::PositiveNumber);
    CLI11_PARSE(app, argc, argv);
    try {
        nlohmann::json r = api == "posix" ? posix_calls(source, sink, calls) : event_calls(socket_path, source, sink, calls);
        r["api"] = api;
        r["calls"] = calls;
        std::cout << r.dump() << std::endl;
    } catch (const std::exception& e) {
        std::cerr << "ms-socket-calls: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
