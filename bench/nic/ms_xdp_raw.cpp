// ms-xdp-raw: the peer for bench/nic.sh, a minimal AF_XDP program with no switch. It
// uses the same XDP claim program and AF_XDP attachment as multistackd, but hands
// frames straight between the socket and the program: rx counts what the XDP program
// redirects for UDP ADDR:PORT; tx sends built UDP frames as fast as the socket takes
// them. Its rate is the ceiling for multistackd on the same interface.
#include <CLI/CLI.hpp>
#include <netinet/in.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <iostream>

#include "nic/af_xdp_nic.hpp"
#include "nic/xdp_program.hpp"
#include "pktgen/packet_builder.hpp"

namespace {

using Clock = std::chrono::steady_clock;

std::uint64_t receive(ms::sw::NicQueue& q, Clock::time_point end) {
    std::uint64_t frames = 0;
    while (Clock::now() < end) {
        const std::uint32_t n = q.rx_available();
        q.rx_release(n);
        frames += n;
    }
    return frames;
}

std::uint64_t transmit(ms::sw::NicQueue& q, const ms::pktgen::PacketBuilder& b, Clock::time_point end) {
    std::uint64_t frames = 0;
    std::uint32_t seq = 0;
    while (Clock::now() < end) {
        for (int i = 0; i < 64; ++i) {
            const std::uint32_t n = std::min<std::uint32_t>(q.tx_space(), 64);
            for (std::uint32_t k = 0; k < n; ++k)
                q.tx_set_length(k, static_cast<std::uint16_t>(b.build(q.tx_buffer(k), seq++)));
            q.tx_commit(n);
            frames += n;
        }
    }
    return frames;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"ms-xdp-raw: raw AF_XDP rx or tx with no switch (the peer of bench/nic.sh)"};
    std::string iface, mode = "rx", local_text, peer_text, peer_mac_text;
    std::uint16_t port = 9000, peer_port = 9000, size = 60;
    double seconds = 5;
    app.add_option("--iface", iface, "interface")->required();
    app.add_option("--mode", mode, "rx or tx")->check(CLI::IsMember({"rx", "tx"}));
    app.add_option("--local", local_text, "local address (rx: the one to redirect; tx: the source)")->required();
    app.add_option("--port", port, "UDP port (rx: redirected; tx: source)");
    app.add_option("--peer", peer_text, "tx: destination address");
    app.add_option("--peer-mac", peer_mac_text, "tx: destination MAC");
    app.add_option("--peer-port", peer_port, "tx: destination UDP port");
    app.add_option("--size", size, "tx: frame size")->check(CLI::Range(60, 1514));
    app.add_option("--seconds", seconds, "how long")->check(CLI::PositiveNumber);
    CLI11_PARSE(app, argc, argv);
    try {
        ms::wire::IpAddr local, peer;
        ms::wire::MacAddr peer_mac;
        if (!ms::wire::parse_ip(local_text, local)) throw std::runtime_error("--local wants an address");
        if (const auto stale = ms::nic::remove_stale_program(iface); !stale) throw std::runtime_error(stale.error().detail);
        const auto program = ms::nic::XdpProgram::load(iface);
        if (!program) throw std::runtime_error(program.error().detail);
        ms::nic::XdpProgram& xdp = **program;
        if (const auto attached = xdp.attach(nullptr, 0); !attached) throw std::runtime_error(attached.error().detail);
        const auto opened = ms::nic::AfXdpNic::open({iface, 1}, xdp);
        if (!opened) throw std::runtime_error(opened.error().detail);
        ms::nic::AfXdpNic& nic = **opened;
        const auto start = Clock::now();
        const auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
        std::uint64_t frames;
        if (mode == "rx") {
            if (!xdp.add_claim({IPPROTO_UDP, local, port})) throw std::runtime_error("cannot add the claim");
            frames = receive(nic.queue(0), end);
        } else {
            if (!ms::wire::parse_ip(peer_text, peer) || !ms::wire::parse_mac(peer_mac_text, peer_mac)) {
                throw std::runtime_error("tx needs --peer and --peer-mac");
            }
            const auto b = ms::pktgen::PacketBuilder::create(
                {ms::pktgen::Proto::udp, nic.mac(), peer_mac, local, peer, port, peer_port, size});
            if (!b) throw std::runtime_error(b.error().detail);
            frames = transmit(nic.queue(0), *b, end);
        }
        const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
        std::cout << nlohmann::json{{"mode", mode},
                                    {"frames", frames},
                                    {"seconds", elapsed},
                                    {"mpps", static_cast<double>(frames) / elapsed / 1e6}}
                  << "\n";
    } catch (const std::exception& e) {
        std::cerr << "ms-xdp-raw: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
