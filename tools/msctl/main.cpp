// msctl: the operator's view of a running multistackd (docs/DESIGN.md §6): the switch, its
// ports and their owners, the claims, and every counter, per port and per drop reason,
// as text or JSON; and the TCP sockets that applications publish (sockets.hpp).
#include <CLI/CLI.hpp>
#include <dirent.h>
#include <nlohmann/json.hpp>
#include <pcap/pcap.h>

#include <algorithm>
#include <csignal>
#include <ctime>
#include <iostream>
#include <map>

#include "client/multistack.hpp"
#include "sockets.hpp"
#include "sw/counters.hpp"

namespace {

using nlohmann::json;
constexpr const char* kRunDir = "/run/multistack";

// The one socket in /run/multistack, if there is exactly one.
std::string default_socket() {
    std::vector<std::string> found;
    if (DIR* d = ::opendir(kRunDir)) {
        while (const dirent* e = ::readdir(d)) {
            const std::string name = e->d_name;
            if (name.size() > 5 && name.ends_with(".sock")) found.push_back(std::string(kRunDir) + "/" + name);
        }
        ::closedir(d);
    }
    if (found.size() == 1) return found[0];
    throw std::runtime_error(found.empty() ? "no multistackd is running (nothing in /run/multistack)"
                                           : "several multistackd are running: say which with --socket or --iface");
}

json drops_json(const std::uint64_t* drops) {
    json j = json::object();
    for (std::size_t i = 0; i < ms::sw::kDropReasonCount; ++i) {
        if (drops[i]) j[std::string(ms::sw::to_string(static_cast<ms::sw::DropReason>(i)))] = drops[i];
    }
    return j;
}

json faults_json(const std::uint64_t* faults) {
    json j = json::object();
    for (std::size_t i = 1; i < ms::ring::kRingFaultCount; ++i) {
        if (faults[i]) j[std::string(ms::ring::to_string(static_cast<ms::ring::RingFault>(i)))] = faults[i];
    }
    return j;
}

std::string tuple_text(const ms::ctl::Tuple& t) {
    const ms::client::Claim c = ms::ctl::from_tuple(t);
    return std::string(c.protocol == 6 ? "tcp " : "udp ") + ms::wire::endpoint_to_string(c.addr, c.port);
}

template <class T>
T unwrap(ms::base::Result<T, ms::client::Failure> r) {
    if (!r) throw std::runtime_error(r.error().message());
    return std::move(r.value());
}

json queues_json(const ms::ctl::StatusReply& s) {
    json j = json::array();
    for (std::size_t q = 0; q < std::min<std::size_t>(s.queues, ms::ctl::kQueueSlots); ++q) {
        j.push_back({{"queue", q},
                     {"worker", s.queue_workers[q]},
                     {"rx_frames", s.queue_rx_frames[q]},
                     {"tx_frames", s.queue_tx_frames[q]}});
    }
    return j;
}

// "2026-12-07T00:05:00Z".
std::string utc_time(std::uint64_t seconds) {
    const auto t = static_cast<std::time_t>(seconds);
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return text;
}

json status_json(const ms::ctl::StatusReply& s) {
    return {{"interface", s.ifname},
            {"ifindex", s.ifindex},
            {"pid", s.pid},
            {"xdp_mode", s.xdp_native ? "native" : "generic"},
            {"af_xdp_mode", s.zero_copy ? "zero-copy" : "copy"},
            {"queues", s.queues},
            {"workers", s.workers},
            {"ports", s.ports},
            {"claims", s.claims},
            {"segmentation_offload", s.segmentation_offload != 0},
            {"nic",
             {{"rx_frames", s.nic_rx_frames},
              {"tx_frames", s.nic_tx_frames},
              {"tx_offloaded", s.nic_tx_offloaded},
              {"drops", drops_json(s.nic_drops)},
              {"queues", queues_json(s)}}},
            {"handoff_drops", drops_json(s.handoff_drops)},
            {"xdp", {{"to_switch", s.xdp_claimed}, {"to_kernel", s.xdp_passed}}},
            {"control",
             {{"sessions", s.sessions},
              {"open_descriptors", s.open_descriptors},
              {"bad_requests", s.bad_requests},
              {"slow_clients", s.slow_clients},
              {"claims_refused", s.claims_refused},
              {"claims_revoked", s.claims_revoked},
              {"limits_reached", s.limits_reached},
              {"descriptors_exhausted", s.descriptors_exhausted}}},
            {"handoffs",
             {{"waiting", s.handoffs_waiting},
              {"taken", s.handoffs_taken},
              {"reclaimed", s.handoffs_reclaimed},
              {"dropped", s.handoffs_dropped}}},
            {"lifetime",
             {{"started", utc_time(s.started_s)},
              {"first_started", utc_time(s.first_start_s)},
              {"restarts", s.restarts},
              {"upgrades", s.upgrades},
              {"outage_limit_ms", s.outage_limit_ms},
              {"held_frames", s.held_frames},
              {"adopted_claims_waiting", s.adopted_waiting}}}};
}

json port_json(const ms::ctl::PortEntry& p) {
    return {{"port", p.port_id},
            {"shown", p.shown != 0},
            {"pid", p.pid},
            {"uid", p.uid},
            {"ring_pairs", p.ring_pairs},
            {"claims", p.claims},
            {"failed", p.failed != 0},
            {"rx_frames", p.rx_frames},
            {"rx_bytes", p.rx_bytes},
            {"tx_frames", p.tx_frames},
            {"tx_bytes", p.tx_bytes},
            {"tx_super_segments", p.tx_super},
            {"tx_segmented", p.tx_segmented},
            {"drops", drops_json(p.drops)},
            {"ring_faults", faults_json(p.faults)}};
}

void print_status(const json& s) {
    std::cout << "interface " << s["interface"].get<std::string>() << " (ifindex " << s["ifindex"] << "), multistackd pid "
              << s["pid"] << "\n"
              << "XDP " << s["xdp_mode"].get<std::string>() << " mode, AF_XDP " << s["af_xdp_mode"].get<std::string>()
              << " mode, " << s["queues"] << " queue(s), " << s["workers"] << " worker(s), segmentation offload "
              << (s["segmentation_offload"].get<bool>() ? "on" : "off") << "\n"
              << s["ports"] << " port(s), " << s["claims"] << " claim(s)\n"
              << "NIC: rx " << s["nic"]["rx_frames"] << " tx " << s["nic"]["tx_frames"] << " (super-segments offloaded "
              << s["nic"]["tx_offloaded"] << ") drops " << s["nic"]["drops"].dump() << "\n"
              << "NIC queues: " << s["nic"]["queues"].dump() << "\n"
              << "XDP: to switch " << s["xdp"]["to_switch"] << ", to kernel " << s["xdp"]["to_kernel"] << "\n"
              << "control: " << s["control"].dump() << "\n"
              << "connection hand-offs: " << s["handoffs"]["waiting"] << " waiting, " << s["handoffs"]["taken"] << " taken, "
              << s["handoffs"]["reclaimed"] << " taken back, " << s["handoffs"]["dropped"] << " dropped\n";
    const json& life = s["lifetime"];
    std::cout << "started " << life["started"].get<std::string>() << "; on this interface since "
              << life["first_started"].get<std::string>() << ": " << life["restarts"] << " restart(s), " << life["upgrades"]
              << " upgrade(s); claims outlive the daemon by " << life["outage_limit_ms"] << " ms (frames held meanwhile "
              << life["held_frames"] << ", claims left to prove again " << life["adopted_claims_waiting"] << ")\n";
}

void print_ports(const json& ports, bool with_drops) {
    std::printf("%-5s %-8s %-6s %-6s %-7s %12s %12s %s\n", "port", "pid", "uid", "rings", "claims", "rx", "tx", "state");
    for (const json& p : ports) {
        if (!p["shown"].get<bool>()) {  // another user's port: only root sees its details
            std::printf("%-5d %-8s %-6s %-6u %-7s %12s %12s %s\n", p["port"].get<int>(), "-", "-",
                        p["ring_pairs"].get<unsigned>(), "-", "-", "-", p["failed"].get<bool>() ? "FAILED" : "ok");
            continue;
        }
        std::printf("%-5d %-8d %-6u %-6u %-7u %12llu %12llu %s\n", p["port"].get<int>(), p["pid"].get<int>(),
                    p["uid"].get<unsigned>(), p["ring_pairs"].get<unsigned>(), p["claims"].get<unsigned>(),
                    static_cast<unsigned long long>(p["rx_frames"].get<std::uint64_t>()),
                    static_cast<unsigned long long>(p["tx_frames"].get<std::uint64_t>()),
                    p["failed"].get<bool>() ? "FAILED" : "ok");
        if (!with_drops) continue;
        for (auto& [reason, n] : p["drops"].items())
            std::printf("      drop %-20s %llu\n", reason.c_str(), static_cast<unsigned long long>(n.get<std::uint64_t>()));
        for (auto& [fault, n] : p["ring_faults"].items())
            std::printf("      fault %-19s %llu\n", fault.c_str(), static_cast<unsigned long long>(n.get<std::uint64_t>()));
    }
}

// Every claim's holders; a shared claim (docs/DESIGN.md §4.2) lists each member with its
// share of the group's new connections.
json claims_json(const std::vector<ms::ctl::ClaimEntry>& entries) {
    std::map<std::string, std::uint64_t> group_total;
    for (const auto& c : entries) group_total[tuple_text(c.tuple)] += c.new_connections;
    json out = json::array();
    for (const auto& c : entries) {
        json e = {{"port", c.port_id}, {"claim", tuple_text(c.tuple)}, {"shared", c.shared != 0}};
        if (c.shared) {
            const std::uint64_t total = group_total[tuple_text(c.tuple)];
            e.update({{"members", c.members},
                      {"founder", c.founder != 0},
                      {"role", c.role == ms::ctl::ClaimRole::serving   ? "serving"
                               : c.role == ms::ctl::ClaimRole::standby ? "standby"
                                                                       : "draining"},
                      {"new_connections", c.new_connections},
                      {"share", total ? static_cast<double>(c.new_connections) / static_cast<double>(total) : 0.0},
                      {"group_flows", c.group_flows}});
        }
        out.push_back(e);
    }
    return out;
}

void print_claims(const json& claims) {
    for (const json& c : claims) {
        std::cout << "port " << c["port"] << "  " << c["claim"].get<std::string>();
        if (c["shared"].get<bool>()) {
            std::printf("  member of %u, %s%s, %llu new connections (%.1f%%), group flows %llu", c["members"].get<unsigned>(),
                        c["role"].get<std::string>().c_str(), c["founder"].get<bool>() ? ", founder" : "",
                        static_cast<unsigned long long>(c["new_connections"].get<std::uint64_t>()),
                        100.0 * c["share"].get<double>(),
                        static_cast<unsigned long long>(c["group_flows"].get<std::uint64_t>()));
        }
        std::cout << "\n";
    }
}

void print_shares(const json& claims) {
    bool header = false;
    for (const json& c : claims) {
        if (!c["shared"].get<bool>()) continue;
        if (!header) std::cout << "shared claims: each member's share of new connections\n";
        header = true;
        std::printf("  %-28s port %-5u %-8s %12llu  %5.1f%%\n", c["claim"].get<std::string>().c_str(),
                    c["port"].get<unsigned>(), c["role"].get<std::string>().c_str(),
                    static_cast<unsigned long long>(c["new_connections"].get<std::uint64_t>()),
                    100.0 * c["share"].get<double>());
    }
}

volatile std::sig_atomic_t g_interrupted = 0;

// Writes a port's frames to a pcap file that tcpdump and Wireshark read.
int capture(ms::client::ControlSession& conn, std::uint32_t port, const std::string& file, std::uint32_t count,
            double seconds) {
    pcap_t* dead = pcap_open_dead(DLT_EN10MB, 65535);
    pcap_dumper_t* out = pcap_dump_open(dead, file.c_str());
    if (!out) {
        const std::string why = pcap_geterr(dead);
        pcap_close(dead);
        throw std::runtime_error(file + ": " + why);
    }
    std::signal(SIGINT, [](int) { g_interrupted = 1; });
    ms::ctl::CaptureRequest req;
    req.port_id = port;
    req.max_frames = count;
    req.milliseconds = static_cast<std::uint32_t>(seconds * 1000);
    std::uint64_t written = 0;
    auto end = conn.capture(req, [&](const ms::ctl::CaptureFrame& f) {
        pcap_pkthdr h{};
        h.ts.tv_sec = static_cast<time_t>(f.timestamp_ns / 1'000'000'000);
        h.ts.tv_usec = static_cast<suseconds_t>(f.timestamp_ns % 1'000'000'000 / 1000);
        h.caplen = h.len = std::min<std::uint32_t>(f.len, sizeof f.data);
        pcap_dump(reinterpret_cast<u_char*>(out), &h, f.data);
        ++written;
        return g_interrupted == 0;
    });
    pcap_dump_close(out);
    pcap_close(dead);
    if (!end) throw std::runtime_error(end.error().message());
    std::cerr << "msctl: wrote " << written << " frames of port " << port << " to " << file;
    if (end.value().lost) std::cerr << " (" << end.value().lost << " lost: the capture could not keep up)";
    std::cerr << "\n";
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"msctl: inspect a running multistackd"};
    std::string socket;
    std::string iface;
    bool as_json = false;
    app.add_option("--socket", socket, "control socket of the daemon");
    app.add_option("--iface", iface, "interface of the daemon (its socket is /run/multistack/IFACE.sock)");
    app.add_flag("--json", as_json, "print JSON");
    app.require_subcommand(1);
    auto* status = app.add_subcommand("status", "the interface, XDP and AF_XDP modes, queues and totals");
    auto* ports = app.add_subcommand("ports", "ports with their owner pid and uid, claims and counters");
    auto* claims = app.add_subcommand(
        "claims", "every claim and the port that holds it; a shared claim lists each member and its share");
    auto* stats = app.add_subcommand("stats", "per-port counters with drops by reason and ring faults");
    auto* sockets = app.add_subcommand("sockets", "TCP listeners and connections of UTCP applications, like ss -ti");
    std::optional<std::uint32_t> sockets_port;
    sockets->add_option("--port", sockets_port, "only this port (msctl ports)");
    for (auto* sub : {status, ports, claims, stats, sockets}) sub->add_flag("--json", as_json, "print JSON");
    auto* resolve = app.add_subcommand("resolve", "the MAC of the next hop towards an address, as the daemon resolves it");
    std::string resolve_addr;
    resolve->add_option("ADDR", resolve_addr, "IPv4 or IPv6 destination")->required();
    auto* cap = app.add_subcommand("capture", "write one port's traffic, both ways, to a pcap file");
    std::uint32_t cap_port = 0;
    std::string cap_file;
    std::uint32_t cap_count = 0;
    double cap_seconds = 0;
    cap->add_option("PORT", cap_port, "port number (msctl ports)")->required();
    cap->add_option("FILE", cap_file, "pcap file to write")->required();
    cap->add_option("--count", cap_count, "stop after N frames");
    cap->add_option("--seconds", cap_seconds, "stop after S seconds")->check(CLI::NonNegativeNumber);
    CLI11_PARSE(app, argc, argv);

    try {
        const std::string path = !socket.empty()  ? socket
                                 : !iface.empty() ? std::string(kRunDir) + "/" + iface + ".sock"
                                                  : default_socket();
        auto conn = unwrap(ms::client::ControlSession::open(path));
        if (cap->parsed()) return capture(conn, cap_port, cap_file, cap_count, cap_seconds);
        if (resolve->parsed()) {
            ms::wire::IpAddr dst;
            if (!ms::wire::parse_ip(resolve_addr, dst)) throw std::runtime_error("not an address: " + resolve_addr);
            std::cout << unwrap(conn.resolve(dst)).to_string() << "\n";
            return 0;
        }
        if (sockets->parsed()) {
            const json s = ms::msctl::sockets_json(conn, sockets_port);
            if (as_json) std::cout << s.dump(2) << "\n";
            else ms::msctl::print_sockets(s);
        } else if (status->parsed()) {
            const json s = status_json(unwrap(conn.status()));
            if (as_json) std::cout << s.dump(2) << "\n";
            else print_status(s);
        } else if (claims->parsed()) {
            const json out = claims_json(unwrap(conn.claims()));
            if (as_json) std::cout << out.dump(2) << "\n";
            else print_claims(out);
        } else {
            json out = json::array();
            for (const auto& p : unwrap(conn.ports())) out.push_back(port_json(p));
            if (as_json) {  // the shares are in `claims --json`
                std::cout << out.dump(2) << "\n";
            } else {
                print_ports(out, stats->parsed());
                if (stats->parsed()) print_shares(claims_json(unwrap(conn.claims())));
            }
        }
    } catch (const std::exception& e) {
        std::cerr << "msctl: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
