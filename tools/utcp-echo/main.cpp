// utcp-echo: a TCP echo server and client on UTCP's event API, through multistackd.
//
//   utcp-echo --socket PATH --listen ADDR:PORT
//       echoes every connection's bytes back; when the peer half-closes, finishes the
//       echo and closes too. Runs until SIGINT/SIGTERM, then prints its counters as JSON
//       (with "tcp": the closed connections' segments, retransmits, RTOs, recoveries,
//       loss probes and segments deemed lost, summed).
//   utcp-echo --socket PATH --connect ADDR:PORT [--bytes N] [--connections K] [--rounds R]
//             [--half-close]
//       opens K connections, sends N bytes of a known pseudo-random stream on each, and
//       checks that exactly the same bytes come back (and their SHA-256); then the next
//       round of K, R times. With --half-close it shuts its sending side down after the
//       last byte, so the echo comes back over a half-closed connection. Exits 0 only if
//       every byte matched.
//   --fast-open (both): TCP Fast Open (RFC 7413). The server takes data in SYNs with a
//       valid cookie; the client's first data goes in its SYN once a round has learnt
//       the server's cookie. Both report what Fast Open did in their JSON.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <sodium.h>

#include <algorithm>
#include <csignal>
#include <iostream>
#include <vector>

#include "bbr/bbr.hpp"
#include "cc/scalable.hpp"
#include "loop/event_loop.hpp"

namespace {

using ms::loop::EventLoop;
using ms::utcp::Connection;

EventLoop* g_loop = nullptr;
void on_signal(int) {
    if (g_loop) g_loop->stop();
}

// What the path did to the connections (path MTU discovery), tallied as they close.
struct PathTally {
    std::uint64_t mss_lowered_by_icmp = 0, mss_lowered_by_timeouts = 0, mss_probes_acked = 0, mss_probes_lost = 0;
    std::uint16_t smallest_send_mss = 0;  // the smallest MSS a connection had at its close; 0: none closed
    std::uint16_t largest_send_mss = 0;

    void add(const Connection& c) {
        const ms::utcp::ConnStats st = c.stats();
        mss_lowered_by_icmp += st.mss_lowered_by_icmp;
        mss_lowered_by_timeouts += st.mss_lowered_by_timeouts;
        mss_probes_acked += st.mss_probes_acked;
        mss_probes_lost += st.mss_probes_lost;
        smallest_send_mss = smallest_send_mss ? std::min(smallest_send_mss, c.send_mss()) : c.send_mss();
        largest_send_mss = std::max(largest_send_mss, c.send_mss());
    }
};

// The echo server: no per-connection state; bytes move from the receive buffer
// straight into the send buffer.
class EchoServer final : public ms::utcp::Handler {
public:
    void on_accepted(Connection&) override { ++accepted; }
    void on_readable(Connection& c) override { pump(c); }
    void on_writable(Connection& c) override { pump(c); }
    void on_peer_closed(Connection& c) override { pump(c); }
    void on_error(Connection&, ms::utcp::ConnError e) override { ++errors[ms::utcp::to_string(e)]; }
    void on_closed(Connection& c) override {
        ++closed;
        path.add(c);
        const ms::utcp::ConnStats st = c.stats();
        tcp["segments_out"] = tcp.value("segments_out", 0ull) + st.segments_out;
        tcp["retransmits"] = tcp.value("retransmits", 0ull) + st.retransmits;
        tcp["timeouts"] = tcp.value("timeouts", 0ull) + st.timeouts;
        tcp["recoveries"] = tcp.value("recoveries", 0ull) + st.fast_retransmits;
        tcp["loss_probes"] = tcp.value("loss_probes", 0ull) + st.loss_probes;
        tcp["lost_segments"] = tcp.value("lost_segments", 0ull) + st.lost_segments;
    }

    std::uint64_t accepted = 0, closed = 0, echoed = 0;
    nlohmann::json tcp = nlohmann::json::object();  // the closed connections' counters, summed
    PathTally path;
    std::map<std::string, std::uint64_t> errors;

private:
    void pump(Connection& c) {
        while (c.readable() > 0 && c.send_room() > 0) {
            const ms::utcp::SplitBytes data = c.peek();
            const ms::wire::Bytes part = data.first.empty() ? data.second : data.first;
            const std::size_t n = c.send(part);
            c.consume(n);
            echoed += n;
            if (n == 0) break;
        }
        if (c.peer_closed() && c.readable() == 0) c.close();
    }
};

// The client's stream: byte k of connection i is a keyed function of (i, k), so the
// receiver can check every byte without keeping a copy.
std::uint8_t stream_byte(std::uint64_t flow, std::uint64_t offset) {
    std::uint64_t z = (flow << 40) + (offset >> 3) + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return static_cast<std::uint8_t>(z >> (8 * (offset & 7)));
}

struct Flow {
    std::uint64_t index = 0;
    std::uint64_t sent = 0, received = 0;
    bool mismatch = false, finished = false;
    std::string error;
    crypto_hash_sha256_state sent_hash{}, received_hash{};
};

struct ClientPlan {
    ms::wire::IpAddr addr;
    std::uint16_t port = 0;
    std::uint64_t bytes = 0;
    std::size_t connections = 1;  // per round
    std::size_t rounds = 1;
    bool half_close = false;
    bool fast_open = false;
};

class EchoClient final : public ms::utcp::Handler {
public:
    EchoClient(EventLoop& loop, const ClientPlan& plan) : loop_(loop), plan_(plan), flows_(plan.connections * plan.rounds) {
        for (std::size_t i = 0; i < flows_.size(); ++i) {
            flows_[i].index = i;
            crypto_hash_sha256_init(&flows_[i].sent_hash);
            crypto_hash_sha256_init(&flows_[i].received_hash);
        }
    }
    [[nodiscard]] const std::vector<Flow>& flows() const { return flows_; }
    [[nodiscard]] const std::map<std::string, std::uint64_t>& fast_open() const { return fast_open_; }
    PathTally path;

    // Opens the next round's connections; false (with a message) if one could not be made.
    bool start_round() {
        const std::size_t first = round_++ * plan_.connections;
        for (std::size_t i = first; i < first + plan_.connections; ++i) {
            auto c = loop_.connect(plan_.addr, plan_.port, *this);
            if (!c) {
                std::cerr << "utcp-echo: connect " << plan_.addr.to_string() << ":" << plan_.port << ": "
                          << c.error().message() << "\n";
                return false;
            }
            c.value()->context = &flows_[i];
            if (plan_.fast_open) send_more(*c.value());  // queued before the SYN goes: it carries the first bytes
        }
        return true;
    }

    void on_connected(Connection& c) override { send_more(c); }
    void on_writable(Connection& c) override { send_more(c); }
    void on_readable(Connection& c) override { receive(c); }
    void on_peer_closed(Connection& c) override {
        receive(c);
        c.close();
    }
    void on_error(Connection& c, ms::utcp::ConnError e) override { of(c).error = ms::utcp::to_string(e); }
    void on_closed(Connection& c) override {
        of(c).finished = true;
        path.add(c);
        ++fast_open_[ms::utcp::to_string(c.fast_open())];
        if (++finished_ < round_ * plan_.connections) return;
        if (round_ == plan_.rounds || !start_round()) loop_.stop();
    }

private:
    Flow& of(Connection& c) { return *static_cast<Flow*>(c.context); }

    void send_more(Connection& c) {
        Flow& f = of(c);
        std::uint8_t chunk[16384];
        while (f.sent < plan_.bytes && c.send_room() > 0) {
            const std::size_t n = std::min<std::uint64_t>({sizeof chunk, plan_.bytes - f.sent, c.send_room()});
            for (std::size_t k = 0; k < n; ++k) chunk[k] = stream_byte(f.index, f.sent + k);
            const std::size_t taken = c.send({chunk, n});
            crypto_hash_sha256_update(&f.sent_hash, chunk, taken);
            f.sent += taken;
            if (taken == 0) break;
        }
        // Not before the handshake: a shutdown in SYN_SENT gives the connection up.
        if (f.sent == plan_.bytes && plan_.half_close && c.state() != ms::utcp::State::syn_sent) c.shutdown_write();
    }

    void receive(Connection& c) {
        Flow& f = of(c);
        std::uint8_t chunk[16384];
        while (std::size_t n = c.recv(chunk)) {
            for (std::size_t k = 0; k < n && !f.mismatch; ++k) f.mismatch = chunk[k] != stream_byte(f.index, f.received + k);
            crypto_hash_sha256_update(&f.received_hash, chunk, n);
            f.received += n;
        }
        if (f.received >= plan_.bytes && !plan_.half_close) c.close();
    }

    EventLoop& loop_;
    ClientPlan plan_;
    std::size_t round_ = 0;
    std::map<std::string, std::uint64_t> fast_open_;  // connections by what Fast Open did
    std::vector<Flow> flows_;
    std::size_t finished_ = 0;
};

std::string hex(const crypto_hash_sha256_state& st) {
    crypto_hash_sha256_state copy = st;
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&copy, digest);
    char text[2 * sizeof digest + 1];
    sodium_bin2hex(text, sizeof text, digest, sizeof digest);
    return text;
}

// The path's word on the connections: ICMP the stack took or ignored, and the MSS.
nlohmann::json path_report(const ms::utcp::StackStats& st, const PathTally& tally) {
    return {{"icmp_in", st.icmp_in},
            {"icmp_ignored", st.icmp_ignored},
            {"icmp_no_connection", st.icmp_no_connection},
            {"icmp_out_of_window", st.icmp_out_of_window},
            {"mss_lowered_by_icmp", tally.mss_lowered_by_icmp},
            {"mss_lowered_by_timeouts", tally.mss_lowered_by_timeouts},
            {"mss_probes_acked", tally.mss_probes_acked},
            {"mss_probes_lost", tally.mss_probes_lost},
            {"smallest_send_mss", tally.smallest_send_mss},
            {"largest_send_mss", tally.largest_send_mss}};
}

int run_server(EventLoop& loop, std::uint16_t port) {
    EchoServer server;
    auto listener = loop.listen(port, server);
    if (!listener) {
        std::cerr << "utcp-echo: listen on port " << port << ": " << listener.error().message() << "\n";
        return 1;
    }
    std::cout << "utcp-echo: echoing tcp";
    for (const ms::wire::IpAddr& a : loop.addresses())
        std::cout << " " << ms::wire::endpoint_to_string(a, listener.value()->port);
    std::cout << std::endl;
    loop.run();
    if (loop.daemon_gone()) std::cerr << "utcp-echo: multistackd went away\n";
    const auto& st = loop.stack().stats();
    nlohmann::json out{{"accepted", server.accepted},
                       {"closed", server.closed},
                       {"echoed_bytes", server.echoed},
                       {"errors", server.errors},
                       {"time_wait_reused", st.time_wait_reused},
                       {"syn_queue_full", st.syn_queue_full},
                       {"bad_checksum", st.bad_checksum},
                       {"malformed", st.malformed},
                       {"no_connection", st.no_connection},
                       {"tx_ring_full", st.tx_ring_full},
                       {"frames_out", st.frames_out},
                       {"super_segments_out", st.super_segments_out},
                       {"super_segments_by_reference", st.super_segments_by_reference},
                       {"tcp_segments_in", st.tcp_segments_in},
                       {"train_segments_in", st.train_segments_in},
                       {"syn_cookies_sent", st.syn_cookies_sent},
                       {"syn_cookies_accepted", st.syn_cookies_accepted},
                       {"syn_cookies_rejected", st.syn_cookies_rejected},
                       {"fast_open",
                        {{"accepted", st.fast_open_accepted},
                         {"cookies_sent", st.fast_open_cookies_sent},
                         {"invalid", st.fast_open_invalid},
                         {"queue_full", st.fast_open_queue_full}}},
                       {"tcp", server.tcp},
                       {"path", path_report(st, server.path)}};
    std::cout << out.dump() << std::endl;
    return loop.daemon_gone() ? 1 : 0;
}

int run_client(EventLoop& loop, const ClientPlan& plan) {
    EchoClient client(loop, plan);
    const std::uint64_t start = EventLoop::clock_ms();
    if (!client.start_round()) return 1;
    loop.run();
    if (loop.daemon_gone()) std::cerr << "utcp-echo: multistackd went away\n";
    const double seconds = static_cast<double>(EventLoop::clock_ms() - start) / 1000.0;
    bool ok = true;
    nlohmann::json failures = nlohmann::json::array();
    for (const Flow& f : client.flows()) {
        const bool good = f.finished && f.error.empty() && !f.mismatch && f.received == plan.bytes && f.sent == plan.bytes;
        if (!good)
            failures.push_back({{"flow", f.index},
                                {"sent", f.sent},
                                {"received", f.received},
                                {"mismatch", f.mismatch},
                                {"error", f.error},
                                {"finished", f.finished}});
        ok = ok && good;
    }
    nlohmann::json out{{"ok", ok},
                       {"connections", client.flows().size()},
                       {"plan_.bytesper_connection", plan.bytes},
                       {"seconds", seconds},
                       {"failures", failures},
                       {"fast_open", client.fast_open()},
                       {"frames_out", loop.stack().stats().frames_out},
                       {"super_segments_out", loop.stack().stats().super_segments_out},
                       {"super_segments_by_reference", loop.stack().stats().super_segments_by_reference},
                       {"tcp_segments_in", loop.stack().stats().tcp_segments_in},
                       {"train_segments_in", loop.stack().stats().train_segments_in},
                       {"path", path_report(loop.stack().stats(), client.path)}};
    if (client.flows().size() == 1) {
        out["sent_sha256"] = hex(client.flows()[0].sent_hash);
        out["received_sha256"] = hex(client.flows()[0].received_hash);
    }
    std::cout << out.dump() << std::endl;
    return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"utcp-echo: TCP echo server or checking client on UTCP, through multistackd"};
    std::string socket;
    std::string listen;
    std::string connect;
    ClientPlan plan{.bytes = 1 << 20};
    std::string congestion{ms::utcp::CongestionRegistry::kDefault};
    app.add_option("--socket", socket, "multistackd control socket")->required();
    app.add_option("--cc", congestion,
                   "congestion control: cubic, newreno, bbr (BBRv3, paced), or scalable (this program's own)")
        ->envname("MULTISTACK_CC")
        ->capture_default_str();
    auto* l = app.add_option("--listen", listen, "serve: ADDR:PORT to claim and echo on");
    auto* c = app.add_option("--connect", connect, "client: ADDR:PORT of an echo server");
    l->excludes(c);
    app.add_option("--bytes", plan.bytes, "client: bytes to send on each connection")->capture_default_str();
    app.add_option("--connections", plan.connections, "client: concurrent connections")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_option("--rounds", plan.rounds, "client: rounds of connections, one after the other")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_flag("--half-close", plan.half_close, "client: shut down sending after the last byte");
    app.add_flag("--fast-open", plan.fast_open, "TCP Fast Open (RFC 7413): take, or send, data in the SYN");
    bool no_super_segments = false;
    app.add_flag("--no-super-segments", no_super_segments,
                 "send one frame per TCP segment instead of super-segments of up to 64 KB");
    CLI11_PARSE(app, argc, argv);
    if (listen.empty() == connect.empty()) {
        std::cerr << "utcp-echo: give --listen ADDR:PORT or --connect ADDR:PORT\n";
        return 2;
    }
    ms::wire::IpAddr addr;
    std::uint16_t port = 0;
    const std::string& endpoint = listen.empty() ? connect : listen;
    if (!ms::wire::parse_endpoint(endpoint, addr, port)) {
        std::cerr << "utcp-echo: want ADDR:PORT (IPv6: [ADDR]:PORT), got " << endpoint << "\n";
        return 2;
    }
    if (sodium_init() < 0) return 2;

    ms::loop::LoopOptions options;
    if (!listen.empty()) options.addresses = {addr};
    options.defaults.congestion = congestion;
    options.defaults.fast_open = plan.fast_open;
    options.super_segments = !no_super_segments;
    options.congestion_algorithms.push_back(ms::tools::scalable_algorithm());
    options.congestion_algorithms.push_back(ms::bbr::algorithm());
    auto loop = EventLoop::open(socket, options);
    if (!loop) {
        std::cerr << "utcp-echo: " << loop.error().message() << "\n";
        return 1;
    }
    g_loop = loop.value().get();
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    plan.addr = addr;
    plan.port = port;
    const int rc = listen.empty() ? run_client(*loop.value(), plan) : run_server(*loop.value(), port);
    g_loop = nullptr;
    return rc;
}
