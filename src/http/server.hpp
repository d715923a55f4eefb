// Contract: ms-httpd's two transports over the same Session core (docs/DESIGN.md §8): one on
// UTCP's event API through multistackd, one on kernel sockets with epoll. Both serve
// until stop(), reload the file cache when asked (SIGHUP sets the flag), and cut
// connections whose idle or header deadline passed (Session::deadline_ms), checked
// every sweep_ms. Counters say what happened, for the tests and the benchmark.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "http/session.hpp"
#include "utcp/congestion.hpp"
#include "wire/bytes.hpp"

namespace ms::http {

struct ServerConfig {
    std::string socket;    // multistackd control socket (utcp)
    std::vector<wire::IpAddr> addresses;  // at most one IPv4 and one IPv6, all on `port`
    std::uint16_t port = 80;
    Timeouts timeouts;
    std::uint64_t sweep_ms = 250;
    std::string congestion{utcp::CongestionRegistry::kDefault};  // utcp: UTCP's, or one of the next
    std::vector<std::pair<std::string, utcp::CongestionRegistry::Factory>>
        congestion_algorithms;  // utcp: the application's own
    bool fast_open = false;  // RFC 7413: take requests in SYNs with a valid cookie (kernel: TCP_FASTOPEN)
    bool share_port = false;  // SO_REUSEPORT: several processes serve the port (ms-httpd --workers)
};

// "tcp ADDR:PORT ..." for messages.
[[nodiscard]] inline std::string describe_listen(const ServerConfig& config) {
    std::string out = "tcp";
    for (const wire::IpAddr& a : config.addresses) out += " " + wire::endpoint_to_string(a, config.port);
    return out;
}

struct ServerStats {
    std::uint64_t connections = 0, requests = 0, timed_out = 0, reloads = 0;
    // UTCP: super-segments sent, and those whose payload went by reference (send buffers
    // or the file cache in the port's data area); whether the file cache lies there.
    std::uint64_t super_segments = 0, super_segments_by_reference = 0;
    bool files_in_port_memory = false;
    std::uint64_t body_bytes_by_reference = 0;  // UTCP: file bytes queued with no copy (send_reference)
};

class Server {
public:
    virtual ~Server() = default;
    // Serves until stop(); returns an error message, or empty on a clean stop.
    virtual std::string run() = 0;
    void stop() { stop_.store(true, std::memory_order_relaxed); }
    void request_reload() { reload_.store(true, std::memory_order_relaxed); }
    [[nodiscard]] const ServerStats& stats() const { return stats_; }

protected:
    // The file cache is reloaded here, between turns of the loop.
    void reload_if_asked(FileCache& files);
    std::atomic<bool> stop_{false};
    std::atomic<bool> reload_{false};
    ServerStats stats_;
};

// Each fails with a clear message: the switch is not running, the port is taken, ...
std::unique_ptr<Server> make_utcp_server(const ServerConfig& config, FileCache& files, std::string& error);
std::unique_ptr<Server> make_kernel_server(const ServerConfig& config, FileCache& files, std::string& error);

}  // namespace ms::http
