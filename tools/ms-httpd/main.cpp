// ms-httpd: an HTTP/1.1 static file server on UTCP through multistackd
// (--transport utcp) or on the kernel's sockets (--transport kernel), with the same
// server core (src/http). Files under --root are loaded into memory at start and again
// on SIGHUP. Runs until SIGINT or SIGTERM, then prints its counters as JSON. With
// --workers N it runs N processes that share the port (SO_REUSEPORT: on UTCP, a shared
// claim whose connections the switch spreads over them); the first process passes
// SIGINT, SIGTERM and SIGHUP on to them and ends when they have.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "bbr/bbr.hpp"
#include "cc/scalable.hpp"
#include "http/server.hpp"

namespace {

ms::http::Server* g_server = nullptr;
void on_stop(int) {
    if (g_server) g_server->stop();
}
void on_hup(int) {
    if (g_server) g_server->request_reload();
}

// The --listen endpoints into `config`: at most one per family, all on one port. Returns
// what is wrong, or "".
std::string parse_listen(const std::vector<std::string>& endpoints, ms::http::ServerConfig& config) {
    for (const std::string& e : endpoints) {
        ms::wire::IpAddr addr;
        std::uint16_t port = 0;
        if (!ms::wire::parse_endpoint(e, addr, port)) return "want ADDR:PORT (IPv6: [ADDR]:PORT), got " + e;
        if (!config.addresses.empty() && port != config.port) return "every address takes the same port, got " + e;
        for (const ms::wire::IpAddr& a : config.addresses) {
            if (a.family == addr.family) return "at most one IPv4 and one IPv6 address, got " + e;
        }
        config.addresses.push_back(addr);
        config.port = port;
    }
    return {};
}

// Serves until stopped: 0, or 1 after saying why it could not.
int serve(const ms::http::ServerConfig& config, const std::string& transport, const std::string& root) {
    try {
        auto opened = ms::http::FileCache::open(root);
        if (!opened) {
            std::cerr << "ms-httpd: " << opened.error().detail << "\n";
            return 1;
        }
        ms::http::FileCache& files = *opened;
        std::string error;
        auto server = transport == "utcp" ? ms::http::make_utcp_server(config, files, error)
                                          : ms::http::make_kernel_server(config, files, error);
        if (!server) {
            std::cerr << "ms-httpd: " << error << "\n";
            return 1;
        }
        g_server = server.get();
        std::signal(SIGINT, on_stop);
        std::signal(SIGTERM, on_stop);
        std::signal(SIGHUP, on_hup);
        std::signal(SIGPIPE, SIG_IGN);
        std::cout << "ms-httpd: serving " << files.snapshot()->files.size() << " files (" << files.snapshot()->bytes
                  << " bytes) from " << root << " on " << ms::http::describe_listen(config) << " over " << transport
                  << std::endl;
        const std::string why = server->run();
        g_server = nullptr;
        const auto& st = server->stats();
        std::cout << nlohmann::json{{"pid", ::getpid()},
                                    {"connections", st.connections},
                                    {"requests", st.requests},
                                    {"timed_out", st.timed_out},
                                    {"reloads", st.reloads},
                                    {"super_segments", st.super_segments},
                                    {"super_segments_by_reference", st.super_segments_by_reference},
                                    {"files_in_port_memory", st.files_in_port_memory},
                                    {"body_bytes_by_reference", st.body_bytes_by_reference}}
                         .dump()
                  << std::endl;
        if (!why.empty()) {
            std::cerr << "ms-httpd: " << why << "\n";
            return 1;
        }
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "ms-httpd: " << e.what() << "\n";
        return 1;
    }
}

std::vector<pid_t> g_workers;
void pass_on(int sig) {
    for (const pid_t w : g_workers) ::kill(w, sig);
}

// Runs `count` serving processes and waits for them all: 0 if every one ended well.
int supervise(std::uint32_t count, const ms::http::ServerConfig& config, const std::string& transport,
              const std::string& root) {
    std::signal(SIGINT, pass_on);
    std::signal(SIGTERM, pass_on);
    std::signal(SIGHUP, pass_on);
    for (std::uint32_t i = 0; i < count; ++i) {
        std::cout.flush();
        const pid_t pid = ::fork();
        if (pid < 0) {
            std::cerr << "ms-httpd: fork: " << std::strerror(errno) << "\n";
            pass_on(SIGTERM);
            break;
        }
        if (pid == 0) {
            g_workers.clear();
            for (const int sig : {SIGINT, SIGTERM, SIGHUP}) std::signal(sig, SIG_DFL);  // until serve() sets its own
            std::_Exit(serve(config, transport, root));
        }
        g_workers.push_back(pid);
    }
    std::cout << "ms-httpd: " << g_workers.size() << " workers share the port" << std::endl;
    int failed = g_workers.size() == count ? 0 : 1;
    for (std::size_t left = g_workers.size(); left > 0;) {
        int status = 0;
        const pid_t done = ::waitpid(-1, &status, 0);
        if (done < 0 && errno == EINTR) continue;
        if (done < 0) break;
        --left;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            std::cerr << "ms-httpd: worker " << done << " ended with status " << status << "\n";
            failed = 1;
        }
    }
    return failed;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"ms-httpd: HTTP/1.1 static file server on UTCP (through multistackd) or on kernel sockets"};
    std::string transport = "utcp", root;
    std::vector<std::string> listen;
    ms::http::ServerConfig config;
    double idle_s = 60, header_s = 10;
    app.add_option("--transport", transport, "utcp or kernel")
        ->check(CLI::IsMember({"utcp", "kernel"}))
        ->capture_default_str();
    app.add_option("--socket", config.socket, "multistackd control socket (utcp)");
    app.add_option("--listen", listen,
                   "ADDR:PORT to serve on, e.g. 198.18.0.1:80 or [2001:2::1]:80; twice for both families (one port)")
        ->required();
    app.add_option("--root", root, "directory of files to serve")->required();
    app.add_option("--idle-timeout", idle_s, "seconds a connection may stay idle")->capture_default_str();
    app.add_option("--header-timeout", header_s, "seconds a request's header may take (slowloris)")->capture_default_str();
    app.add_option("--cc", config.congestion,
                   "utcp: congestion control: cubic, newreno, bbr, or scalable (this program's own)")
        ->envname("MULTISTACK_CC")
        ->capture_default_str();
    app.add_flag("--fast-open", config.fast_open, "TCP Fast Open (RFC 7413): answer requests that come in the SYN");
    std::uint32_t workers = 1;
    app.add_option("--workers", workers,
                   "processes serving the port (SO_REUSEPORT; on UTCP the switch spreads connections over them)")
        ->check(CLI::Range(1u, 64u))
        ->capture_default_str();
    CLI11_PARSE(app, argc, argv);
    if (const std::string bad = parse_listen(listen, config); !bad.empty()) {
        std::cerr << "ms-httpd: --listen: " << bad << "\n";
        return 2;
    }
    if (transport == "utcp" && config.socket.empty()) {
        std::cerr << "ms-httpd: --transport utcp needs --socket PATH (multistackd's control socket)\n";
        return 2;
    }
    config.congestion_algorithms.push_back(ms::tools::scalable_algorithm());
    config.congestion_algorithms.push_back(ms::bbr::algorithm());
    config.timeouts = {static_cast<std::uint64_t>(idle_s * 1000), static_cast<std::uint64_t>(header_s * 1000)};
    if (workers == 1) return serve(config, transport, root);
    config.share_port = true;
    return supervise(workers, config, transport, root);
}
