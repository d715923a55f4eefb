// ms-httpd on UTCP: each connection's Session lives in Connection::context; bytes go
// from the receive buffer into the session in place (peek/consume), and responses into
// the send buffer as far as it has room, the rest when UTCP says it is writable. The
// file cache lives in the port's data area while the server runs, and file bodies are
// sent by reference to it: no copy in user space, and the switch reads them in place.
#include <algorithm>
#include <iostream>
#include <unordered_set>
#include <utility>

#include "http/server.hpp"
#include "loop/event_loop.hpp"

namespace ms::http {
namespace {

using utcp::Connection;

class UtcpServer final : public Server, private utcp::Handler {
public:
    UtcpServer(std::unique_ptr<loop::EventLoop> loop, FileCache& files, const ServerConfig& config)
        : loop_(std::move(loop)), files_(files), config_(config) {
        utcp::BufferPool& pool = loop_->stack().buffers();
        files_.store_in([&pool](std::size_t bytes) { return pool.take_block(bytes); });
    }
    ~UtcpServer() override {
        // Sessions and the cache pin blocks of the port's memory, which goes with loop_.
        for (Connection* c : open_) {
            delete static_cast<Session*>(c->context);
            c->context = nullptr;
        }
        files_.store_in(nullptr);
    }
    UtcpServer(const UtcpServer&) = delete;
    UtcpServer& operator=(const UtcpServer&) = delete;

    bool listen(std::string& error) {
        utcp::ConnOptions options = loop_->stack().config().defaults;  // --cc, --fast-open
        options.send_buffer = 128 * 1024;  // a 32 KB response and more fit at once
        options.recv_buffer = 32 * 1024;   // requests are small
        options.nodelay = true;            // a response is complete when written
        auto l = loop_->listen(config_.port, *this, &options,
                               config_.share_port ? client::Sharing::reuse_port : client::Sharing::exclusive);
        if (!l) {
            error = "listen on " + describe_listen(config_) + ": " + l.error().message();
            return false;
        }
        l.value()->backlog = l.value()->syn_queue = 4096;
        return true;
    }

    std::string run() override {
        std::uint64_t next_sweep = loop::EventLoop::clock_ms() + config_.sweep_ms;
        std::uint64_t attachments = loop_->attachments();
        while (!stop_.load(std::memory_order_relaxed) && !loop_->stopping()) {
            loop_->run_once(static_cast<int>(config_.sweep_ms));
            // The loop attached again to a new port (multistackd restarted): the files
            // move into its data area, so that they leave by reference again.
            if (loop_->attachments() != std::exchange(attachments, loop_->attachments())) request_reload();
            const std::uint64_t now = loop::EventLoop::clock_ms();
            if (now >= next_sweep) {
                sweep(now);
                next_sweep = now + config_.sweep_ms;
            }
            reload_if_asked(files_);
        }
        const utcp::StackStats& st = loop_->stack().stats();
        stats_.super_segments = st.super_segments_out;
        stats_.super_segments_by_reference = st.super_segments_by_reference;
        stats_.files_in_port_memory = loop_->stack().buffer_pool().in_shared_area(files_.snapshot()->block.get());
        return loop_->daemon_gone() ? "multistackd went away" : "";
    }

private:
    static Session& session(Connection& c) { return *static_cast<Session*>(c.context); }

    void on_accepted(Connection& c) override {
        c.context = new Session(files_, config_.timeouts, loop::EventLoop::clock_ms());
        open_.insert(&c);
        ++stats_.connections;
    }
    void on_readable(Connection& c) override {
        Session& s = session(c);
        const std::uint64_t now = loop::EventLoop::clock_ms();
        while (c.readable() > 0) {
            const utcp::SplitBytes data = c.peek();
            const wire::Bytes part = data.first.empty() ? data.second : data.first;
            const std::uint64_t before = s.requests();
            s.feed({reinterpret_cast<const char*>(part.data()), part.size()}, now);
            stats_.requests += s.requests() - before;
            c.consume(part.size());
        }
        send(c);
    }
    void on_writable(Connection& c) override { send(c); }
    void on_peer_closed(Connection& c) override {
        on_readable(c);
        session(c).peer_closed();
        send(c);
    }
    void on_closed(Connection& c) override {
        open_.erase(&c);
        delete static_cast<Session*>(c.context);
        c.context = nullptr;
    }

    void send(Connection& c) {
        Session& s = session(c);
        while (s.has_output()) {
            const std::string_view p = s.pending();
            const wire::Bytes bytes{reinterpret_cast<const std::uint8_t*>(p.data()), p.size()};
            const auto* pin = s.pending_pin();
            const std::size_t n = pin ? c.send_reference(bytes, *pin) : c.send(bytes);
            if (n == 0) break;
            if (pin) stats_.body_bytes_by_reference += n;
            s.consumed(n);
        }
        if (s.done()) c.close();
    }

    // Idle connections and slow headers (slowloris) are cut with a RST.
    void sweep(std::uint64_t now) {
        std::vector<Connection*> late;
        for (Connection* c : open_) {
            if (c->context && session(*c).deadline_ms() <= now && !c->user_closed()) late.push_back(c);
        }
        for (Connection* c : late) {
            ++stats_.timed_out;
            c->abort();
        }
    }

    std::unique_ptr<loop::EventLoop> loop_;
    FileCache& files_;
    ServerConfig config_;
    std::unordered_set<Connection*> open_;
};

}  // namespace

std::unique_ptr<Server> make_utcp_server(const ServerConfig& config, FileCache& files, std::string& error) {
    loop::LoopOptions options;
    options.addresses = config.addresses;
    options.defaults.congestion = config.congestion;
    options.defaults.fast_open = config.fast_open;
    options.congestion_algorithms = config.congestion_algorithms;
    // Room for the send buffers and the file cache twice (a reload's new copy beside the
    // one that responses in flight still use), up to the largest data area.
    options.data_area_bytes = std::min(options.data_area_bytes + 2 * files.snapshot()->bytes, ring::kMaxDataBytes);
    auto loop = loop::EventLoop::open(config.socket, options);
    if (!loop) {
        error = "multistackd at " + config.socket + ": " + loop.error().message();
        return nullptr;
    }
    auto server = std::make_unique<UtcpServer>(std::move(loop.value()), files, config);
    if (!server->listen(error)) return nullptr;
    return server;
}

void Server::reload_if_asked(FileCache& files) {
    if (!reload_.exchange(false, std::memory_order_relaxed)) return;
    if (const auto reloaded = files.reload(); reloaded) {
        ++stats_.reloads;
        std::cerr << "ms-httpd: reloaded " << files.snapshot()->files.size() << " files from " << files.root() << "\n";
    } else {
        std::cerr << "ms-httpd: reload failed, still serving the old files: " << reloaded.error().detail << "\n";
    }
}

}  // namespace ms::http
