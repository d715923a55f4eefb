// ms-pktgen: generates and counts frames on switch ports, as netmap's pkt-gen does.
// In this release it drives an in-process switch (see rig.hpp); attaching to a running
// multistackd comes with the daemon.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <iostream>

#include "rig.hpp"

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
        ->check(CLI::IsMember({"tx", "rx"}))->capture_default_str();
    app.add_option("--proto", proto, "transport of the generated flows")->check(CLI::IsMember({"udp", "tcp"}))->capture_default_str();
    app.add_option("--ports", c.ports, "number of ports, each with its own flow")->check(CLI::Range(1, 4096))->capture_default_str();
    app.add_option("--size", c.frame_size, "frame size in bytes, CRC excluded")->check(CLI::Range(60, 1514))->capture_default_str();
    app.add_option("--workers", c.workers, "switch worker threads")->check(CLI::Range(1, 64))->capture_default_str();
    app.add_option("--seconds", c.seconds, "how long to generate")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_flag("--prebuilt", prebuilt, "build each buffer once and resend it, instead of building every frame");
    app.add_flag("--json", json, "print one JSON object");
    CLI11_PARSE(app, argc, argv);
    c.mode = mode == "tx" ? RigMode::tx : RigMode::rx;
    c.proto = proto == "tcp" ? Proto::tcp : Proto::udp;
    c.rebuild = !prebuilt;

    try {
        const RigResult r = run_rig(c);
        if (json) {
            std::cout << nlohmann::json{{"mode", mode}, {"proto", proto}, {"ports", c.ports}, {"size", c.frame_size},
                                        {"workers", c.workers}, {"sent", r.sent}, {"received", r.received},
                                        {"switch_drops", r.switch_drops}, {"sequence_errors", r.sequence_errors},
                                        {"seconds", r.seconds}, {"mpps", r.mpps()}, {"gbps", r.gbps(c.frame_size)}}
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
