// ms-switch-bench: one point of the paper's Figure 4, in process. It runs the switch
// (tx or rx) through the rig of src/pktgen, or the memcpy upper bound, and prints
// one JSON object.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <iostream>

#include "memcpy_peer.hpp"
#include "pktgen/rig.hpp"

int main(int argc, char** argv) {
    CLI::App app{"ms-switch-bench: in-process switch throughput (Figure 4 of the MultiStack paper)"};
    ms::pktgen::RigConfig c;
    c.slots_per_ring = 256;
    std::string mode = "tx";
    bool json = false;
    bool rebuild = false;
    app.add_option("--mode", mode, "tx: ports to NIC; rx: NIC to ports; memcpy: ring-to-ring copy, no switch logic")
        ->check(CLI::IsMember({"tx", "rx", "memcpy"}))
        ->capture_default_str();
    app.add_option("--ports", c.ports, "active ports")->check(CLI::Range(1, 4096))->capture_default_str();
    app.add_option("--size", c.frame_size, "frame size in bytes, CRC excluded")
        ->check(CLI::Range(60, 1514))
        ->capture_default_str();
    app.add_option("--workers", c.workers, "switch worker threads")->check(CLI::Range(1, 64))->capture_default_str();
    app.add_option("--seconds", c.seconds, "measurement time")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--slots", c.slots_per_ring, "slots per port ring")->check(CLI::Range(2, 16384))->capture_default_str();
    app.add_flag("--rebuild", rebuild, "build every frame anew (sequence number and checksum) instead of resending");
    bool huge_pages = false;
    app.add_flag("--huge-pages", huge_pages, "MADV_HUGEPAGE on the port regions (SwitchConfig::huge_pages)");
    app.add_flag("--json", json, "print JSON (the default output is one line of text)");
    CLI11_PARSE(app, argc, argv);
    c.rebuild = rebuild;
    c.huge_pages = huge_pages;

    nlohmann::json out{
        {"mode", mode}, {"ports", c.ports}, {"size", c.frame_size}, {"workers", c.workers}, {"huge_pages", c.huge_pages}};
    try {
        double mpps = 0;
        if (mode == "memcpy") {
            const auto r = ms::bench::run_memcpy_peer(c.frame_size, c.seconds, c.warmup_seconds);
            mpps = static_cast<double>(r.frames) / r.seconds / 1e6;
            out["frames"] = r.frames;
            out["seconds"] = r.seconds;
        } else {
            c.mode = mode == "tx" ? ms::pktgen::RigMode::tx : ms::pktgen::RigMode::rx;
            const auto run = ms::pktgen::run_rig(c);
            if (!run) throw std::runtime_error(run.error().detail);
            const ms::pktgen::RigResult& r = *run;
            mpps = r.mpps();
            out["frames"] = r.received;
            out["seconds"] = r.seconds;
            out["switch_drops"] = r.switch_drops;
        }
        out["mpps"] = mpps;
        out["gbps"] = mpps * c.frame_size * 8 / 1e3;
    } catch (const std::exception& e) {
        std::cerr << "ms-switch-bench: " << e.what() << "\n";
        return 1;
    }
    if (json) {
        std::cout << out.dump() << "\n";
    } else {
        std::cout << mode << " ports=" << c.ports << " size=" << c.frame_size << " workers=" << c.workers << ": "
                  << out["mpps"].get<double>() << " Mpps, " << out["gbps"].get<double>() << " Gbit/s\n";
    }
    return 0;
}
