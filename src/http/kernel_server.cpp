// ms-httpd on kernel sockets: one epoll loop, non-blocking sockets, edge-free (level
// triggered) readiness. The same Session core as the UTCP transport, so that the two
// differ only in the stack underneath: the paper's "same server on the socket library".
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <unordered_map>
#include <vector>

#include "http/server.hpp"

namespace ms::http {
namespace {

std::uint64_t monotonic_ms() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000 + static_cast<std::uint64_t>(ts.tv_nsec) / 1'000'000;
}

struct Client {
    int fd;
    Session session;
    bool want_write = false;
};

class KernelServer final : public Server {
public:
    KernelServer(FileCache& files, const ServerConfig& config) : files_(files), config_(config) {}
    ~KernelServer() override {
        for (auto& [fd, c] : clients_) ::close(fd);
        for (const int fd : listen_fds_) ::close(fd);
        if (epoll_fd_ >= 0) ::close(epoll_fd_);
    }

    bool listen(std::string& error) {
        epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
        for (const wire::IpAddr& a : config_.addresses) {
            const int fd = listen_on(a, error);
            if (fd < 0) return false;
            listen_fds_.push_back(fd);
            epoll_event ev{.events = EPOLLIN, .data = {.fd = fd}};
            ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
        }
        return true;
    }

    std::string run() override {
        std::vector<epoll_event> events(256);
        std::uint64_t next_sweep = monotonic_ms() + config_.sweep_ms;
        while (!stop_.load(std::memory_order_relaxed)) {
            const int n = ::epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()),
                                       static_cast<int>(config_.sweep_ms));
            const std::uint64_t now = monotonic_ms();
            for (int k = 0; k < n; ++k) {
                const int fd = events[k].data.fd;
                if (std::find(listen_fds_.begin(), listen_fds_.end(), fd) != listen_fds_.end()) {
                    accept_all(fd, now);
                } else {
                    serve(fd, events[k].events, now);
                }
            }
            if (now >= next_sweep) {
                sweep(now);
                next_sweep = now + config_.sweep_ms;
            }
            reload_if_asked(files_);
        }
        return {};
    }

private:
    // A listening socket on `a` (IPv6: only IPv6, so that an IPv4 listener beside it
    // keeps its port); -1 with `error` set if it cannot be made.
    int listen_on(const wire::IpAddr& a, std::string& error) {
        const bool v6 = a.family == wire::IpFamily::v6;
        const int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        const int one = 1;
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (config_.share_port) ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
        sockaddr_storage ss{};
        socklen_t len = 0;
        if (v6) {
            ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
            auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
            sin6->sin6_family = AF_INET6;
            sin6->sin6_port = htons(config_.port);
            std::memcpy(&sin6->sin6_addr, a.bytes.data(), 16);
            len = sizeof *sin6;
        } else {
            auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
            sin->sin_family = AF_INET;
            sin->sin_port = htons(config_.port);
            std::memcpy(&sin->sin_addr, a.bytes.data(), 4);
            len = sizeof *sin;
        }
        if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd, 4096) != 0) {
            error = "listen on tcp " + wire::endpoint_to_string(a, config_.port) + ": " + std::strerror(errno);
            if (fd >= 0) ::close(fd);
            return -1;
        }
        // RFC 7413 on the kernel's stack: a queue of 256 pending Fast Open connections, as
        // UTCP's default; the host's net.ipv4.tcp_fastopen must allow servers.
        const int fast_open_queue = 256;
        if (config_.fast_open && ::setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN, &fast_open_queue, sizeof fast_open_queue) != 0) {
            error = std::string("TCP_FASTOPEN: ") + std::strerror(errno);
            ::close(fd);
            return -1;
        }
        return fd;
    }

    void accept_all(int listen_fd, std::uint64_t now) {
        for (;;) {
            const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) return;
            const int one = 1;
            ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            clients_.try_emplace(fd, Client{fd, Session(files_, config_.timeouts, now)});
            epoll_event ev{.events = EPOLLIN | EPOLLRDHUP, .data = {.fd = fd}};
            ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
            ++stats_.connections;
        }
    }

    void serve(int fd, std::uint32_t events, std::uint64_t now) {
        auto it = clients_.find(fd);
        if (it == clients_.end()) return;
        Client& c = it->second;
        if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) receive(c, now);
        if (!send(c, now)) return drop(fd);
        if (c.session.done()) drop(fd);
    }

    void receive(Client& c, std::uint64_t now) {
        char buf[16384];
        for (;;) {
            const ssize_t n = ::read(c.fd, buf, sizeof buf);
            if (n > 0) {
                const std::uint64_t before = c.session.requests();
                c.session.feed({buf, static_cast<std::size_t>(n)}, now);
                stats_.requests += c.session.requests() - before;
                continue;
            }
            if (n == 0 || (errno != EAGAIN && errno != EINTR)) c.session.peer_closed();
            return;
        }
    }

    // Writes what the session has; false if the connection failed.
    bool send(Client& c, std::uint64_t now) {
        while (c.session.has_output()) {
            const std::string_view p = c.session.pending();
            const ssize_t n = ::send(c.fd, p.data(), p.size(), MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN) break;
                return false;
            }
            c.session.consumed(static_cast<std::size_t>(n));
            c.session.touch(now);
        }
        const bool want_write = c.session.has_output();
        if (want_write != c.want_write) {
            c.want_write = want_write;
            epoll_event ev{.events = EPOLLIN | EPOLLRDHUP | (want_write ? EPOLLOUT : 0u), .data = {.fd = c.fd}};
            ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev);
        }
        return true;
    }

    void drop(int fd) {
        ::close(fd);  // also leaves the epoll set
        clients_.erase(fd);
    }

    void sweep(std::uint64_t now) {
        std::vector<int> late;
        for (auto& [fd, c] : clients_) {
            if (c.session.deadline_ms() <= now) late.push_back(fd);
        }
        for (int fd : late) {
            ++stats_.timed_out;
            drop(fd);
        }
    }

    FileCache& files_;
    ServerConfig config_;
    std::vector<int> listen_fds_;  // one per address
    int epoll_fd_ = -1;
    std::unordered_map<int, Client> clients_;
};

}  // namespace

std::unique_ptr<Server> make_kernel_server(const ServerConfig& config, FileCache& files, std::string& error) {
    auto server = std::make_unique<KernelServer>(files, config);
    if (!server->listen(error)) return nullptr;
    return server;
}

}  // namespace ms::http
