// ms-frame-sender: a root-only test helper that misbehaves on purpose, through
// libmultistack. It attaches, claims UDP ADDR:PORT, and then:
//   --mode isolation  sends one valid frame to PEER:9 and then one frame of each kind the
//                     switch must drop (spoofed source address, source port, protocol
//                     and MAC, bad IP checksum, bad IHL, total length beyond the frame,
//                     broadcast, multicast), and last a slot whose length is beyond the
//                     buffer, which fails the port. Prints what it sent as JSON, then
//                     holds the port until SIGTERM.
//   --mode hostile    for SECONDS, attaches again and again and writes random garbage
//                     into its ring indices, slots and lengths, publishing as it goes.
#include <CLI/CLI.hpp>
#include <netinet/in.h>
#include <nlohmann/json.hpp>

#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <iostream>
#include <random>

#include "client/multistack.hpp"
#include "pktgen/packet_builder.hpp"
#include "wire/checksum.hpp"

namespace {

using Frame = std::vector<std::uint8_t>;

void fix_ip_checksum(Frame& f) {
    ms::wire::store_be16(&f[24], 0);
    ms::wire::store_be16(&f[24], ms::wire::internet_checksum(ms::wire::Bytes(f).subspan(14, 20)));
}

Frame build(ms::pktgen::Proto proto, ms::wire::MacAddr src_mac, ms::wire::MacAddr dst_mac, ms::wire::IpAddr src,
            std::uint16_t sport, ms::wire::IpAddr dst) {
    const auto b = ms::pktgen::PacketBuilder::create({proto, src_mac, dst_mac, src, dst, sport, 9, 64}).value();
    Frame f(b.size());
    b.build(f, 0);
    return f;
}

void send_frame(ms::client::AppPort& port, const Frame& f, std::uint16_t slot_len) {
    auto& tx = port.tx();
    std::memcpy(tx.buffer(0).data(), f.data(), f.size());
    tx.set_length(0, slot_len);
    tx.publish(1);
}

int isolation(ms::client::ControlSession& conn, const ms::client::Claim& me, ms::wire::MacAddr peer_mac,
              ms::wire::IpAddr peer) {
    auto info = conn.info();
    if (!info) throw std::runtime_error(info.error().message());
    ms::wire::MacAddr nic;
    std::memcpy(nic.octets.data(), info->mac, 6);
    const auto udp = ms::pktgen::Proto::udp;
    std::vector<std::pair<std::string, Frame>> frames;
    frames.emplace_back("valid", build(udp, nic, peer_mac, me.addr, me.port, peer));
    ms::wire::IpAddr other = me.addr;
    other.bytes[3] ^= 0x40;
    frames.emplace_back("spoofed_source_ip", build(udp, nic, peer_mac, other, me.port, peer));
    frames.emplace_back("spoofed_source_port",
                        build(udp, nic, peer_mac, me.addr, static_cast<std::uint16_t>(me.port + 1), peer));
    frames.emplace_back("other_protocol", build(ms::pktgen::Proto::tcp, nic, peer_mac, me.addr, me.port, peer));
    frames.emplace_back("spoofed_source_mac",
                        build(udp, ms::wire::MacAddr{{0x02, 0xba, 0xd0, 0, 0, 1}}, peer_mac, me.addr, me.port, peer));
    Frame bad_sum = frames[0].second;
    bad_sum[22] ^= 1;
    frames.emplace_back("bad_ip_checksum", bad_sum);
    Frame bad_ihl = frames[0].second;
    bad_ihl[14] = 0x44;
    fix_ip_checksum(bad_ihl);
    frames.emplace_back("bad_ihl", bad_ihl);
    Frame too_long = frames[0].second;
    ms::wire::store_be16(&too_long[16], 200);
    fix_ip_checksum(too_long);
    frames.emplace_back("total_length_beyond_frame", too_long);
    frames.emplace_back("broadcast",
                        build(udp, nic, ms::wire::MacAddr{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}, me.addr, me.port, peer));
    frames.emplace_back("multicast", build(udp, nic, ms::wire::MacAddr{{0x01, 0x00, 0x5e, 0, 0, 1}}, me.addr, me.port, peer));

    nlohmann::json sent = nlohmann::json::array();
    for (const auto& [name, f] : frames) {
        send_frame(*conn.port(), f, static_cast<std::uint16_t>(f.size()));
        sent.push_back(name);
    }
    send_frame(*conn.port(), frames[0].second, ms::ring::kMaxFrameSize + 1);  // a slot length beyond the largest frame
    sent.push_back("oversized_slot_length");
    std::cout << nlohmann::json{{"sent", sent}} << std::endl;
    return 0;
}

// Writes random values into the fields the application owns, and into those it does not.
void scribble(ms::ring::Region& region, std::mt19937& rng_engine) {
    auto rng = [&rng_engine] { return static_cast<std::uint32_t>(rng_engine()); };
    const std::uint32_t rings = region.layout().ring_count();
    for (int i = 0; i < 64; ++i) {
        const std::uint32_t ring = rng() % rings;
        ms::ring::RingControl& c = region.control(ring);
        auto slots = region.slots(ring);
        const auto n = static_cast<std::uint32_t>(slots.size());
        switch (rng() % 6) {
            case 0: ms::ring::store_release(c.head, rng() % (2 * n)); break;
            case 1: ms::ring::store_release(c.cur, rng()); break;
            case 2: ms::ring::store_release(c.tail, rng() % n); break;
            case 3: slots[rng() % n].len = static_cast<std::uint16_t>(rng()); break;
            case 4: slots[rng() % n].offset = rng(); break;
            default: ms::ring::store_release(c.head, (c.head + 1) % n); break;  // plausible publishes
        }
    }
}

int hostile(const std::string& socket, const ms::client::Claim& me, double seconds) {
    std::mt19937 rng(12345);
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    std::uint64_t rounds = 0;
    while (std::chrono::steady_clock::now() < end) {
        auto conn = ms::client::ControlSession::open(socket);
        if (!conn) throw std::runtime_error(conn.error().message());
        auto port = conn->attach(2, 64);
        if (!port) throw std::runtime_error(port.error().message());
        (void)conn->claim(me.protocol, me.addr, me.port);
        // Scribble for a while, kicking the switch so that it looks, then hang up.
        const auto round_end = std::chrono::steady_clock::now() + std::chrono::milliseconds(50);
        while (std::chrono::steady_clock::now() < round_end) {
            scribble(port.value()->region(), rng);
            port.value()->kick(static_cast<std::uint32_t>(rng() % 2));
        }
        ++rounds;
    }
    std::cout << nlohmann::json{{"rounds", rounds}} << std::endl;
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"ms-frame-sender: sends invalid frames through a MultiStack port (test helper)"};
    std::string socket, mode = "isolation", claim_text, peer_text, peer_mac_text;
    double seconds = 10;
    app.add_option("--socket", socket, "multistackd control socket")->required();
    app.add_option("--mode", mode, "isolation or hostile")->check(CLI::IsMember({"isolation", "hostile"}));
    app.add_option("--claim", claim_text, "UDP ADDR:PORT to claim")->required();
    app.add_option("--peer", peer_text, "peer IPv4 address (isolation)");
    app.add_option("--peer-mac", peer_mac_text, "peer MAC address (isolation)");
    app.add_option("--seconds", seconds, "how long to scribble (hostile)");
    CLI11_PARSE(app, argc, argv);

    ms::client::Claim me{IPPROTO_UDP, {}, 0};
    if (!ms::wire::parse_endpoint(claim_text, me.addr, me.port)) {
        std::cerr << "ms-frame-sender: --claim wants ADDR:PORT\n";
        return 2;
    }
    try {
        if (mode == "hostile") return hostile(socket, me, seconds);
        ms::wire::IpAddr peer;
        ms::wire::MacAddr peer_mac;
        if (!ms::wire::parse_ip(peer_text, peer) || !ms::wire::parse_mac(peer_mac_text, peer_mac)) {
            std::cerr << "ms-frame-sender: isolation needs --peer and --peer-mac\n";
            return 2;
        }
        auto conn = ms::client::ControlSession::open(socket);
        if (!conn) throw std::runtime_error(conn.error().message());
        if (auto port = conn->attach(); !port) throw std::runtime_error(port.error().message());
        if (auto c = conn->claim(me.protocol, me.addr, me.port); !c) throw std::runtime_error(c.error().message());
        const int rc = isolation(conn.value(), me, peer_mac, peer);
        // Hold the port, and so its counters, until the test is done with them.
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        pthread_sigmask(SIG_BLOCK, &set, nullptr);
        int sig;
        sigwait(&set, &sig);
        return rc;
    } catch (const std::exception& e) {
        std::cerr << "ms-frame-sender: " << e.what() << "\n";
        return 1;
    }
}
