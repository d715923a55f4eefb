// ms-nic-echo: a root-only test helper. It attaches the switch to a real interface
// (the XDP claim program and AF_XDP), opens one port that claims UDP ADDR:PORT, and
// echoes every datagram it receives back to its sender, through the switch and its
// validation. Everything else on the interface stays with the kernel. It runs until
// SIGTERM or SIGINT, then detaches and prints its counters as JSON.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <netinet/in.h>
#include <poll.h>

#include <csignal>
#include <iostream>

#include "nic/af_xdp_nic.hpp"
#include "nic/xdp_program.hpp"
#include "ring/app_ring.hpp"
#include "switch/switch.hpp"
#include "wire/frame.hpp"

namespace {

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

// Turns a received UDP/IPv4 frame around in place. Swapping source and destination
// leaves both checksums valid: each is a sum over both addresses and both ports.
void turn_around(std::uint8_t* f, const ms::wire::ParsedFrame& p) {
    std::uint8_t tmp[6];
    std::memcpy(tmp, f, 6);
    std::memcpy(f, f + 6, 6);
    std::memcpy(f + 6, tmp, 6);
    std::uint8_t* ip = f + p.l3_offset;
    std::uint8_t a[4];
    std::memcpy(a, ip + 12, 4);
    std::memcpy(ip + 12, ip + 16, 4);
    std::memcpy(ip + 16, a, 4);
    std::uint8_t* udp = ip + (ip[0] & 0x0f) * 4;
    std::uint8_t port[2];
    std::memcpy(port, udp, 2);
    std::memcpy(udp, udp + 2, 2);
    std::memcpy(udp + 2, port, 2);
}

std::uint32_t echo_batch(ms::ring::AppRxRing& rx, ms::ring::AppTxRing& tx) {
    const std::uint32_t n = std::min(rx.available(), tx.space());
    std::uint32_t out = 0;
    for (std::uint32_t k = 0; k < n; ++k) {
        const ms::wire::Bytes in = rx.frame(k);
        ms::wire::ParsedFrame p;
        if (ms::wire::parse_frame(in, p) || !p.has_ports || p.ethertype != 0x0800) continue;
        std::memcpy(tx.buffer(out).data(), in.data(), in.size());
        turn_around(tx.buffer(out).data(), p);
        tx.set_length(out++, static_cast<std::uint16_t>(in.size()));
    }
    rx.release(n);
    tx.publish(out);
    return n;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"ms-nic-echo: UDP echo through the MultiStack switch on a real interface (test helper)"};
    std::string ifname;
    std::string address = "198.18.0.1";
    std::uint16_t udp_port = 7;
    app.add_option("--iface", ifname, "interface to attach to")->required();
    app.add_option("--addr", address, "local IPv4 address to claim")->capture_default_str();
    app.add_option("--port", udp_port, "UDP port to claim")->capture_default_str();
    CLI11_PARSE(app, argc, argv);

    ms::wire::IpAddr local;
    if (!ms::wire::parse_ip(address, local)) {
        std::cerr << "ms-nic-echo: not an address: " << address << "\n";
        return 2;
    }
    std::signal(SIGTERM, on_signal);
    std::signal(SIGINT, on_signal);
    try {
        if (ms::nic::remove_stale_program(ifname)) std::cerr << "ms-nic-echo: removed a stale ms_claim program\n";
        ms::nic::XdpProgram xdp(ifname);
        ms::nic::AfXdpNic nic({ifname, 1}, xdp);
        ms::sw::Switch sw(nic, {});
        const ms::sw::PortId port = sw.attach_port({1, 1024});
        const ms::sw::ClaimKey claim{IPPROTO_UDP, local, udp_port};
        if (sw.registry().add(claim, port) != ms::sw::ClaimError::ok || !xdp.add_claim(claim)) {
            throw std::runtime_error("cannot claim the UDP port");
        }
        sw.registry().set_local_addresses({local});
        sw.start();
        std::cout << nlohmann::json{{"ready", true}, {"xdp_mode", ms::nic::to_string(xdp.mode())},
                                    {"zero_copy", nic.zero_copy()}} << std::endl;

        ms::sw::PortRing& ring = *sw.port(port).rings[0];
        ms::ring::AppRxRing rx(sw.port(port).region, 0);
        ms::ring::AppTxRing tx(sw.port(port).region, 0, &ring.to_switch);
        std::uint64_t echoed = 0;
        while (!g_stop) {
            const std::uint32_t n = echo_batch(rx, tx);
            echoed += n;
            if (n == 0 && !rx.prepare_to_sleep()) {
                pollfd pfd{ring.to_app.fd(), POLLIN, 0};
                (void)::poll(&pfd, 1, 200);
                ring.to_app.drain();
                rx.wake();
            }
        }
        sw.stop();
        const auto ps = sw.port_stats(port);
        const auto ns = sw.nic_stats();
        std::cout << nlohmann::json{{"echoed", echoed}, {"port_rx", ps.rx_frames}, {"port_tx", ps.tx_frames},
                                    {"port_drops", ps.total_drops()}, {"nic_rx", ns.rx_frames},
                                    {"nic_tx", ns.tx_frames}, {"xdp_claimed", xdp.claimed_frames()},
                                    {"xdp_passed", xdp.passed_frames()}} << std::endl;
    } catch (const std::exception& e) {
        std::cerr << "ms-nic-echo: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
