// ms-pktgen: generates and counts frames on switch ports, as netmap's pkt-gen does:
// on a port of a running multistackd (--socket, see attached.hpp), or through an
// in-process switch with an in-memory NIC (see rig.hpp).
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <iostream>

#include "pktgen/attached.hpp"
#include "pktgen/rig.hpp"

namespace {

int attached(const std::string& mode, const ms::pktgen::AttachedConfig& in, const std::string& local, const std::string& peer,
             const std::string& peer_mac, bool json) {
    ms::pktgen::AttachedConfig c = in;
    c.transmit = mode == "tx";
    if (!ms::wire::parse_ip(local, c.local)) throw std::runtime_error("--local wants an address");
    if (c.transmit && (!ms::wire::parse_ip(peer, c.peer) || !ms::wire::parse_mac(peer_mac, c.peer_mac))) {
        throw std::runtime_error("tx on a port needs --peer and --peer-mac");
    }
    const auto run = ms::pktgen::run_attached(c);
    if (!run) throw std::runtime_error(run.error().detail);
    const ms::pktgen::AttachedResult& r = *run;
    const double mpps = static_cast<double>(r.frames) / r.seconds / 1e6;
    if (json) {
        std::cout << nlohmann::json{{"mode", mode},     {"size", c.frame_size}, {"frames", r.frames},
                                    {"bytes", r.bytes}, {"seconds", r.seconds}, {"mpps", mpps}}
                  << "\n";
    } else {
        std::cout << (c.transmit ? "sent " : "received ") << r.frames << " frames in " << r.seconds << " s: " << mpps
                  << " Mpps\n";
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    using namespace ms::pktgen;
    CLI::App app{"ms-pktgen: generate UDP/TCP frames through an in-process MultiStack switch and count them"};
    RigConfig c;
    c.rebuild = true;
    std::string mode = "tx";
    std::string proto = "udp";
    bool json = false;
    bool prebuilt = false;
    app.add_option("--mode", mode, "tx: ports send to the NIC; rx: the NIC sends to the ports")
        ->check(CLI::IsMember({"tx", "rx"}))
        ->capture_default_str();
    app.add_option("--proto", proto, "transport of the generated flows")
        ->check(CLI::IsMember({"udp", "tcp"}))
        ->capture_default_str();
    app.add_option("--ports", c.ports, "number of ports, each with its own flow")
        ->check(CLI::Range(1, 4096))
        ->capture_default_str();
    app.add_option("--size", c.frame_size, "frame size in bytes, CRC excluded")
        ->check(CLI::Range(60, 1514))
        ->capture_default_str();
    app.add_option("--workers", c.workers, "switch worker threads")->check(CLI::Range(1, 64))->capture_default_str();
    app.add_option("--seconds", c.seconds, "how long to generate")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_flag("--prebuilt", prebuilt, "build each buffer once and resend it, instead of building every frame");
    app.add_flag("--json", json, "print one JSON object");
    AttachedConfig ac;
    std::string local, peer, peer_mac;
    auto* socket = app.add_option("--socket", ac.socket, "run on a port of the multistackd at this control socket");
    app.add_option("--local", local, "with --socket: local address to claim")->needs(socket);
    app.add_option("--local-port", ac.local_port, "with --socket: UDP port to claim")->needs(socket)->capture_default_str();
    app.add_option("--peer", peer, "with --socket, tx: destination address")->needs(socket);
    app.add_option("--peer-port", ac.peer_port, "with --socket, tx: destination port")->needs(socket)->capture_default_str();
    app.add_option("--peer-mac", peer_mac, "with --socket, tx: destination MAC")->needs(socket);
    CLI11_PARSE(app, argc, argv);
    if (!ac.socket.empty()) {
        try {
            ac.frame_size = c.frame_size;
            ac.seconds = c.seconds;
            return attached(mode, ac, local, peer, peer_mac, json);
        } catch (const std::exception& e) {
            std::cerr << "ms-pktgen: " << e.what() << "\n";
            return 1;
        }
    }
    c.mode = mode == "tx" ? RigMode::tx : RigMode::rx;
    c.proto = proto == "tcp" ? Proto::tcp : Proto::udp;
    c.rebuild = !prebuilt;

    try {
        const auto run = run_rig(c);
        if (!run) throw std::runtime_error(run.error().detail);
        const RigResult& r = *run;
        if (json) {
            std::cout << nlohmann::json{{"mode", mode},
                                        {"proto", proto},
                                        {"ports", c.ports},
                                        {"size", c.frame_size},
                                        {"workers", c.workers},
                                        {"sent", r.sent},
                                        {"received", r.received},
                                        {"switch_drops", r.switch_drops},
                                        {"sequence_errors", r.sequence_errors},
                                        {"seconds", r.seconds},
                                        {"mpps", r.mpps()},
                                        {"gbps", r.gbps(c.frame_size)}}
                      << "\n";
        } else {
            std::cout << "sent " << r.sent << " received " << r.received << " dropped by switch " << r.switch_drops
                      << " out of order " << r.sequence_errors << " in " << r.seconds << " s: " << r.mpps() << " Mpps, "
                      << r.gbps(c.frame_size) << " Gbit/s\n";
        }
    } catch (const std::exception& e) {
        std::cerr << "ms-pktgen: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
