#include "sockets.hpp"

#include <chrono>
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

namespace ms::msctl {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr auto kFreshWait = std::chrono::milliseconds(500);  // for an application to publish after a refresh
constexpr auto kRetryPause = std::chrono::milliseconds(5);
constexpr int kBusyRetries = 50;

std::string endpoint(const std::uint8_t (&addr)[16], std::uint8_t family, std::uint16_t port) {
    const wire::IpAddr a = family == 4 ? wire::IpAddr::load_v4(addr) : wire::IpAddr::load_v6(addr);
    const std::string text = family == 6 ? "[" + a.to_string() + "]" : a.to_string();
    return text + ":" + (port ? std::to_string(port) : std::string("*"));
}

json options_json(std::uint8_t bits) {
    json out = json::array();
    const std::pair<std::uint8_t, const char*> names[] = {{ring::sockopt::sack, "sack"},
                                                          {ring::sockopt::timestamps, "ts"},
                                                          {ring::sockopt::ecn, "ecn"},
                                                          {ring::sockopt::window_scale, "wscale"},
                                                          {ring::sockopt::fast_open, "tfo"}};
    for (const auto& [bit, name] : names) {
        if (bits & bit) out.push_back(name);
    }
    return out;
}

// " bbr:bw_cruise bw=95.1Mbit/s min_rtt=20.1ms pace=94.2Mbit/s": a model-based
// algorithm's view of the path; "" for the others.
std::string model_text(const json& s) {
    const std::string phase = s["phase"].get<std::string>();
    const auto rate = s["pacing_rate"].get<std::uint64_t>();
    if (phase.empty() && rate == 0) return "";
    char text[160];
    std::snprintf(text, sizeof text, " %s%s%s bw=%.1fMbit/s min_rtt=%.1fms pace=%.1fMbit/s",
                  s["congestion"].get<std::string>().c_str(), phase.empty() ? "" : ":", phase.c_str(),
                  static_cast<double>(s["bandwidth"].get<std::uint64_t>()) * 8 / 1e6,
                  static_cast<double>(s["min_rtt_us"].get<std::uint32_t>()) / 1000, static_cast<double>(rate) * 8 / 1e6);
    return text;
}

json record_json(const ring::SocketRecord& r) {
    return {{"state", ring::kTcpStateNames[r.state]},
            {"local", endpoint(r.local, r.family, r.local_port)},
            {"peer", endpoint(r.remote, r.family, r.remote_port)},
            {"congestion", std::string(r.congestion)},
            {"options", options_json(r.options)},
            {"fast_open", ring::kFastOpenNames[r.fast_open]},
            {"mss", r.mss},
            {"cwnd", r.cwnd},
            {"ssthresh", r.ssthresh},
            {"srtt_us", r.srtt_us},
            {"rto_us", r.rto_us},
            {"snd_wnd", r.snd_wnd},
            {"rcv_wnd", r.rcv_wnd},
            {"unacked", r.unacked},
            {"retransmits", r.retransmits},
            {"timeouts", r.timeouts},
            {"recoveries", r.recoveries},
            {"bytes_in", r.bytes_in},
            {"bytes_out", r.bytes_out},
            {"pacing_rate", r.pacing_rate},
            {"bandwidth", r.bandwidth},
            {"min_rtt_us", r.min_rtt_us},
            {"phase", std::string(r.phase)}};
}

// Why a port's table could not be read: its application held it mid-write throughout
// (a hostile or stuck application; every other port is still shown).
constexpr const char* kStaysBusy = "its application holds its socket table mid-write";

// One page, retried while the application is writing; nothing if it stays busy.
std::optional<ctl::SocketsReply> page(client::ControlSession& conn, std::uint32_t port, std::uint32_t first) {
    for (int attempt = 0;; ++attempt) {
        auto r = conn.sockets(port, first, false);
        if (r) return r.value();
        if (r.error().error != client::Error::busy) throw std::runtime_error(r.error().message());
        if (attempt == kBusyRetries) return std::nullopt;
        std::this_thread::sleep_for(kRetryPause);
    }
}

// The whole snapshot, read again if it changes between pages; nothing if a page stays
// busy or the table keeps changing.
std::optional<json> read_snapshot(client::ControlSession& conn, std::uint32_t port, json& entry) {
    for (int attempt = 0; attempt <= 5; ++attempt) {
        json sockets = json::array();
        const std::optional<ctl::SocketsReply> head = page(conn, port, 0);
        if (!head) return std::nullopt;
        const ctl::SocketsReply& first = *head;
        ctl::SocketsReply rep = first;
        std::uint32_t invalid = 0;
        bool changed = false;
        for (std::uint32_t at = 0;;) {
            for (std::uint32_t i = 0; i < rep.records; ++i) sockets.push_back(record_json(rep.record[i]));
            invalid += rep.invalid;
            at += rep.records + rep.invalid;
            if (rep.records + rep.invalid == 0 || at >= first.count) break;
            const std::optional<ctl::SocketsReply> next = page(conn, port, at);
            if (!next) return std::nullopt;
            rep = *next;
            if (rep.generation != first.generation) {
                changed = true;
                break;
            }
        }
        if (changed) continue;
        entry["total"] = first.total;
        entry["shown"] = sockets.size();
        entry["invalid"] = invalid;
        entry["age_ms"] = first.age_ms;
        return sockets;
    }
    return std::nullopt;
}

}  // namespace

json sockets_json(client::ControlSession& conn, std::optional<std::uint32_t> only_port) {
    auto ports = conn.ports();
    if (!ports) throw std::runtime_error(ports.error().message());
    // Ask every port for a fresh snapshot first, so that the waits overlap.
    struct Asked {
        ctl::PortEntry entry;
        std::uint32_t generation;
    };
    std::vector<Asked> asked;
    for (const ctl::PortEntry& p : ports.value()) {
        if (only_port ? p.port_id != *only_port : !p.shown) continue;
        auto before = conn.sockets(p.port_id, 0, false);
        if (!before && before.error().error != client::Error::busy) {
            throw std::runtime_error("port " + std::to_string(p.port_id) + ": " + before.error().message());
        }
        auto refreshed = conn.sockets(p.port_id, 0, true);
        if (!refreshed) throw std::runtime_error("port " + std::to_string(p.port_id) + ": " + refreshed.error().message());
        asked.push_back({p, before ? before.value().generation : 0});
    }
    if (only_port && asked.empty()) throw std::runtime_error("no port " + std::to_string(*only_port));
    json out = json::array();
    const auto deadline = Clock::now() + kFreshWait;
    for (const Asked& a : asked) {
        // A port whose application publishes nothing (not UTCP, or stuck) shows what it has.
        bool fresh = false;
        for (std::optional<ctl::SocketsReply> p; (p = page(conn, a.entry.port_id, 0));
             std::this_thread::sleep_for(kRetryPause)) {
            fresh = p->generation != a.generation;
            if (fresh || Clock::now() >= deadline) break;
        }
        json entry = {{"port", a.entry.port_id}, {"pid", a.entry.pid}, {"fresh", fresh}};
        if (auto sockets = read_snapshot(conn, a.entry.port_id, entry)) {
            entry["sockets"] = std::move(*sockets);
        } else {
            entry["unreadable"] = kStaysBusy;
        }
        out.push_back(entry);
    }
    return out;
}

void print_sockets(const json& ports) {
    for (const json& p : ports) {
        if (p.contains("unreadable")) {
            std::printf("port %u (pid %d): socket table unreadable: %s\n", p["port"].get<unsigned>(), p["pid"].get<int>(),
                        p["unreadable"].get<std::string>().c_str());
            continue;
        }
        std::printf(
            "port %u (pid %d): %zu of %llu sockets%s%s\n", p["port"].get<unsigned>(), p["pid"].get<int>(),
            p["shown"].get<std::size_t>(), static_cast<unsigned long long>(p["total"].get<std::uint64_t>()),
            p["fresh"].get<bool>() ? "" : " (no fresh snapshot: not a UTCP application, or it is not running its loop)",
            p["invalid"].get<std::uint32_t>() ? " (some records were invalid and left out)" : "");
        if (p["sockets"].empty()) continue;
        std::printf("  %-12s %-22s %-22s %-9s %8s %8s %8s %9s %7s %s\n", "state", "local", "peer", "cc", "cwnd", "ssthresh",
                    "srtt_us", "rto_us", "retrans", "options");
        for (const json& s : p["sockets"]) {
            const auto ssthresh = s["ssthresh"].get<std::uint32_t>();
            std::string opts;
            if (s["state"] == "LISTEN") {  // no peer, no window, no timers
                for (const json& o : s["options"]) opts += (opts.empty() ? "" : ",") + o.get<std::string>();
                std::printf("  %-12s %-22s %-22s %-9s %8s %8s %8s %9s %7s %s\n", "LISTEN",
                            s["local"].get<std::string>().c_str(), "*", s["congestion"].get<std::string>().c_str(), "-", "-",
                            "-", "-", "-", opts.c_str());
                continue;
            }
            for (const json& o : s["options"]) opts += (opts.empty() ? "" : ",") + o.get<std::string>();
            if (s["fast_open"] != "none") opts += (opts.empty() ? "" : " ") + ("tfo:" + s["fast_open"].get<std::string>());
            opts += model_text(s);
            std::printf("  %-12s %-22s %-22s %-9s %8u %8s %8u %9u %7llu %s\n", s["state"].get<std::string>().c_str(),
                        s["local"].get<std::string>().c_str(), s["peer"].get<std::string>().c_str(),
                        s["congestion"].get<std::string>().c_str(), s["cwnd"].get<std::uint32_t>(),
                        ssthresh == UINT32_MAX ? "-" : std::to_string(ssthresh).c_str(), s["srtt_us"].get<std::uint32_t>(),
                        s["rto_us"].get<std::uint32_t>(),
                        static_cast<unsigned long long>(s["retransmits"].get<std::uint64_t>()), opts.c_str());
        }
    }
}

}  // namespace ms::msctl
