// ms-udp-echo: a UDP echo server on a MultiStack port, the smallest real application.
// It attaches to multistackd, claims UDP ADDR:PORT (the library binds the kernel socket
// that proves it), and sends every datagram back to its sender through the switch.
// It runs until SIGTERM or SIGINT and then prints how many datagrams it echoed. If
// multistackd goes away, it attaches again (docs/DESIGN.md §6, "Restarts and upgrades")
// within the daemon's outage limit, or exits with status 1.
#include <CLI/CLI.hpp>
#include <netinet/in.h>
#include <unistd.h>

#include <csignal>
#include <ctime>
#include <iostream>

#include "client/multistack.hpp"
#include "wire/ethernet.hpp"
#include "wire/frame.hpp"

namespace {

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

// Turns a received UDP frame around in place: swapping source and destination MAC,
// address and port leaves both checksums valid, since each is a sum over both.
void turn_around(std::uint8_t* f, const ms::wire::ParsedFrame& p) {
    std::swap_ranges(f, f + 6, f + 6);
    std::uint8_t* ip = f + p.l3_offset;
    const bool v4 = p.ethertype == ms::wire::ethertype::ipv4;
    const std::size_t addr_len = v4 ? 4 : 16;
    std::uint8_t* src = ip + (v4 ? 12 : 8);
    std::swap_ranges(src, src + addr_len, src + addr_len);
    std::uint8_t* udp = f + p.l4_offset;
    std::swap_ranges(udp, udp + 2, udp + 2);
}

std::uint32_t echo_batch(ms::client::AppPort& port, std::uint16_t my_port) {
    auto& rx = port.rx();
    auto& tx = port.tx();
    const std::uint32_t n = std::min(rx.available(), tx.space());
    std::uint32_t out = 0;
    for (std::uint32_t k = 0; k < n; ++k) {
        const ms::wire::Bytes in = rx.frame(k);
        ms::wire::ParsedFrame p;
        if (!ms::wire::parse_frame(in, p) || !p.has_ports || p.protocol != IPPROTO_UDP || p.dst_port != my_port) continue;
        std::memcpy(tx.buffer(out).data(), in.data(), in.size());
        turn_around(tx.buffer(out).data(), p);
        tx.set_length(out++, static_cast<std::uint16_t>(in.size()));
    }
    rx.release(n);
    tx.publish(out);
    return out;
}

std::uint64_t now_ms() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000 + static_cast<std::uint64_t>(ts.tv_nsec) / 1'000'000;
}

// multistackd went away: attaches again on the library's schedule, with the claim proved
// again; false past the daemon's outage limit (or on a signal).
bool attach_again(ms::client::ControlSession& conn, const std::string& socket) {
    if (ms::client::ControlSession::stopped_for_good(socket)) {
        std::cerr << "ms-udp-echo: multistackd stopped (its control socket is gone)\n";
        return false;
    }
    ms::client::ReattachSchedule schedule(now_ms(), conn.outage_limit_ms());
    std::cerr << "ms-udp-echo: multistackd went away: attaching again for up to " << schedule.limit_ms() << " ms\n";
    while (!g_stop && !schedule.expired(now_ms())) {
        std::vector<std::pair<ms::client::Claim, ms::client::Failure>> refused;
        auto next = conn.reattach(socket, 0, refused);
        if (next) {
            conn = std::move(next).value();
            std::cerr << "ms-udp-echo: attached again after " << now_ms() - schedule.since_ms() << " ms, port "
                      << conn.port()->id() << "\n";
            for (const auto& [claim, why] : refused) std::cerr << "ms-udp-echo: claim lost: " << why.message() << "\n";
            return refused.empty();
        }
        schedule.failed(now_ms());
        ::usleep(static_cast<useconds_t>((schedule.next_try_ms() - std::min(schedule.next_try_ms(), now_ms())) * 1000));
    }
    std::cerr << "ms-udp-echo: multistackd did not come back within " << schedule.limit_ms() << " ms\n";
    return false;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"ms-udp-echo: UDP echo server on a MultiStack port"};
    std::string socket;
    std::string listen;
    app.add_option("--socket", socket, "multistackd control socket")->required();
    app.add_option("--listen", listen, "ADDR:PORT to claim, e.g. 198.18.0.1:7")->required();
    CLI11_PARSE(app, argc, argv);

    ms::wire::IpAddr addr;
    std::uint16_t port_number = 0;
    if (!ms::wire::parse_endpoint(listen, addr, port_number)) {
        std::cerr << "ms-udp-echo: --listen wants ADDR:PORT, got " << listen << "\n";
        return 2;
    }
    std::signal(SIGTERM, on_signal);
    std::signal(SIGINT, on_signal);

    auto conn = ms::client::ControlSession::open(socket);
    if (!conn) {
        std::cerr << "ms-udp-echo: " << conn.error().message() << "\n";
        return 1;
    }
    auto port = conn->attach();
    if (!port) {
        std::cerr << "ms-udp-echo: attach: " << port.error().message() << "\n";
        return 1;
    }
    auto claim = conn->claim(IPPROTO_UDP, addr, port_number);
    if (!claim) {
        std::cerr << "ms-udp-echo: claim udp " << listen << ": " << claim.error().message() << "\n";
        return 1;
    }
    // Port 0 takes an ephemeral port from the kernel: say which one was claimed.
    const auto& claimed = claim.value();
    std::cout << "ms-udp-echo: port " << port.value()->id() << " echoes udp " << claimed.addr.to_string() << ":"
              << claimed.port << std::endl;
    std::uint64_t echoed = 0;
    while (!g_stop) {
        const std::uint32_t n = echo_batch(*conn->port(), claimed.port);
        echoed += n;
        if (n == 0 && conn->port()->wait(0, 200, conn->fd()) && !attach_again(*conn, socket)) return 1;
    }
    // A clean exit gives the claim back; a crash would too, when the connection drops.
    if (auto released = conn->release(claimed); !released) {
        std::cerr << "ms-udp-echo: release: " << released.error().message() << "\n";
        return 1;
    }
    if (auto again = conn->release(claimed); again || again.error().error != ms::client::Error::not_found) {
        std::cerr << "ms-udp-echo: a second release must say not found\n";
        return 1;
    }
    std::cout << "ms-udp-echo: echoed " << echoed << " datagrams" << std::endl;
    return 0;
}
