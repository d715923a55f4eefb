// The control plane's transport (control_server.hpp): the socket and its file, sessions
// accepted, requests read and handed to dispatch(), replies sent through each session's
// Outbox, sessions paused, resumed and closed, and the tick timer. It trusts nothing a
// client sends: a failed read is answered or ends the session, never the daemon.
#include "daemon/control_server.hpp"

#include <fcntl.h>
#include <grp.h>
#include <malloc.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <iostream>

#include "ctl/seqpacket.hpp"
#include "daemon/timers.hpp"

namespace ms::daemon {
namespace {

// A session that leaves at least this much unread makes its close trim the heap.
constexpr std::size_t kTrimAfterBytes = 64 << 10;

// `what` failed at `path`, for the reason errno gives.
ServerOpenFailure failure(ServerOpenError error, const std::string& path, const char* what) {
    return {error, path + ": " + what + ": " + std::strerror(errno)};
}

void watch(int epoll_fd, int fd, std::uint32_t events = EPOLLIN) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    if (::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        (void)::epoll_ctl(epoll_fd, EPOLL_CTL_MOD, fd, &ev);
    }
}

// The name the socket is bound to before it replaces `path` (open_socket()).
std::string staging_path(const std::string& path) { return path + ".new"; }

// Creates the socket file with its final mode (no window in which it is wider).
base::Result<base::Done, ServerOpenFailure> bind_socket_file(int fd, const std::string& path) {
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    if (path.size() >= sizeof sun.sun_path) {
        return ServerOpenFailure{ServerOpenError::path_too_long, path + ": socket path too long"};
    }
    std::memcpy(sun.sun_path, path.c_str(), path.size() + 1);
    ::unlink(path.c_str());  // a stale file: the interface lock proved no daemon owns it
    const mode_t old_mask = ::umask(0117);  // rw for owner and group
    const int bound = ::bind(fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun);
    ::umask(old_mask);
    if (bound != 0) return failure(ServerOpenError::socket, path, "bind");
    return base::Done{};
}

// Gives the socket file to `group` without following a link an attacker may have put in
// its place, and checks that it is still the socket just bound.
base::Result<base::Done, ServerOpenFailure> give_socket_file(const std::string& path, std::optional<gid_t> group) {
    if (group && ::lchown(path.c_str(), 0, *group) != 0) return failure(ServerOpenError::socket_file, path, "chown");
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) {
        return failure(ServerOpenError::socket_file, path, "the socket file was replaced");
    }
    return base::Done{};
}

}  // namespace

base::Result<std::unique_ptr<ControlServer>, ServerOpenFailure> ControlServer::open(ServerContext ctx, std::string path,
                                                                                    std::optional<gid_t> group) {
    const auto fitted = fit_limits(ctx.limits, own_capacity(ctx.data_path.claim_capacity()));
    if (!fitted) return ServerOpenFailure{ServerOpenError::limits_do_not_fit, fitted.error().message};
    ctx.limits = *fitted;
    auto reaper = Reaper::start();
    if (!reaper) return ServerOpenFailure{ServerOpenError::reaper, "the Reaper's thread would not start"};
    std::unique_ptr<ControlServer> server(new ControlServer(std::move(ctx), std::move(path), std::move(reaper).value()));
    if (auto listening = server->open_socket(group); !listening) return listening.error();
    if (auto looping = server->open_event_loop(); !looping) return looping.error();
    return server;
}

ControlServer::ControlServer(ServerContext ctx, std::string path, Reaper reaper)
    : ctx_(std::move(ctx)),
      path_(std::move(path)),
      started_s_(static_cast<std::uint64_t>(::time(nullptr))),
      reaper_(std::move(reaper)),
      users_(ctx_.limits) {}

base::Result<base::Done, ServerOpenFailure> ControlServer::open_socket(std::optional<gid_t> group) {
    listen_fd_ = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (listen_fd_ < 0) return failure(ServerOpenError::socket, path_, "socket");
    // Bound under another name and renamed over the path, so that the path never
    // lacks a socket file while a previous daemon's applications look for one
    // (docs/DESIGN.md §6, "Restarts and upgrades").
    const std::string staged = staging_path(path_);
    if (staged.size() >= sizeof(sockaddr_un::sun_path)) {
        return ServerOpenFailure{ServerOpenError::path_too_long, path_ + ": socket path too long"};
    }
    if (auto bound = bind_socket_file(listen_fd_, staged); !bound) return bound;
    if (auto given = give_socket_file(staged, group); !given) {
        ::unlink(staged.c_str());
        return given;
    }
    if (::rename(staged.c_str(), path_.c_str()) != 0) {
        ::unlink(staged.c_str());
        return failure(ServerOpenError::socket_file, path_, "rename");
    }
    bound_ = true;
    if (::listen(listen_fd_, 64) != 0) return failure(ServerOpenError::socket, path_, "listen");
    return base::Done{};
}

base::Result<base::Done, ServerOpenFailure> ControlServer::open_event_loop() {
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) return failure(ServerOpenError::event_loop, path_, "epoll_create1");
    watch(epoll_fd_, listen_fd_);
    tick_timer_fd_ = open_timer();
    audit_timer_fd_ = open_timer();
    heartbeat_timer_fd_ = open_timer();
    if (tick_timer_fd_ < 0 || audit_timer_fd_ < 0 || heartbeat_timer_fd_ < 0) {
        return failure(ServerOpenError::event_loop, path_, "timerfd_create");
    }
    watch(epoll_fd_, tick_timer_fd_);
    watch(epoll_fd_, audit_timer_fd_);
    watch(epoll_fd_, heartbeat_timer_fd_);
    set_period(heartbeat_timer_fd_, long{DataPath::kHeartbeatMs} * 1'000'000);
    spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    return base::Done{};
}

ControlServer::~ControlServer() {
    // The socket file first: an application that sees its session end and no socket
    // file knows that the daemon stopped for good, and does not wait for it to come back.
    if (bound_) ::unlink(path_.c_str());
    bound_ = false;
    while (!sessions_.empty()) close_session(sessions_.begin()->first);
    for (const int fd : {spare_fd_, heartbeat_timer_fd_, audit_timer_fd_, tick_timer_fd_, epoll_fd_, listen_fd_}) {
        if (fd >= 0) ::close(fd);
    }
}

RunEnd ControlServer::run(int signal_fd) {
    watch(epoll_fd_, signal_fd);
    last_signal_ = 0;
    hand_over_fd_ = -1;
    while (run_once(-1, signal_fd)) {
    }
    return {last_signal_, hand_over_fd_};
}

bool ControlServer::run_once(int timeout_ms, int signal_fd) {
    epoll_event events[32];
    const int n = ::epoll_wait(epoll_fd_, events, 32, timeout_ms);
    for (int i = 0; i < n; ++i) {
        const int fd = events[i].data.fd;
        if (fd == signal_fd) {
            signalfd_siginfo info{};
            (void)!::read(signal_fd, &info, sizeof info);
            last_signal_ = static_cast<int>(info.ssi_signo);
            return false;
        }
        handle_event(fd, events[i].events);
        close_doomed_sessions();
        if (hand_over_fd_ >= 0) return false;  // the rest of the events are the next daemon's
    }
    return true;
}

void ControlServer::handle_event(int fd, std::uint32_t events) {
    if (fd == heartbeat_timer_fd_) {
        drain_timer(heartbeat_timer_fd_);
        if (const std::size_t released = ctx_.data_path.beat(); released > 0) {
            std::cerr << "multistackd: " << released
                      << " claim(s) left by the previous daemon were not proved again within its outage limit: "
                         "released\n";
        }
    } else if (fd == tick_timer_fd_) {
        drain_timer(tick_timer_fd_);
        tick();
    } else if (fd == audit_timer_fd_) {
        drain_timer(audit_timer_fd_);
        audit_proofs();
    } else if (fd == listen_fd_) {
        accept_client();
    } else if (auto it = sessions_.find(fd); it != sessions_.end()) {
        ClientSession& s = it->second;
        if (events & EPOLLOUT) {
            if (!s.out.flush()) s.doomed = true;
            charge_outbox(s);
            update_interest(s);
        }
        if (s.paused && (events & (EPOLLHUP | EPOLLERR))) s.doomed = true;  // epoll reports these even when paused
        if (!s.doomed && !s.paused && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) serve(s);
    }
}

void ControlServer::watch_readable(int fd) { watch(epoll_fd_, fd); }

void ControlServer::accept_client() {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE) refuse_for_lack_of_descriptors();
        return;
    }
    const Peer peer = identify_peer(fd);
    if (auto opened = users_.open_session(peer); !opened) {
        ++counters_.limits_reached;
        std::cerr << "multistackd: uid " << peer.uid << " (pid " << peer.pid << ") refused: " << to_string(opened.error())
                  << " limit reached\n";
        ::close(fd);
        return;
    }
    sessions_.try_emplace(fd, fd, peer, ctx_.limits.outbox_bytes);
    watch(epoll_fd_, fd);
}

void ControlServer::refuse_for_lack_of_descriptors() {
    // The pending connection would keep the listening socket readable, and epoll would
    // spin: give up the spare descriptor, take the connection and close it at once.
    ++counters_.descriptors_exhausted;
    ::close(spare_fd_);
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) ::close(fd);
    spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
}

void ControlServer::serve(ClientSession& s) {
    alignas(8) std::uint8_t buf[ctl::kMaxMessage];
    std::memset(buf, 0, sizeof(ctl::Header));  // a refused message may be shorter: echo no stale bytes
    std::vector<int> fds;
    if (reaper_.saturated(s.peer.uid)) return pause(s);
    const long n = ctl::receive_message(s.fd, buf, sizeof buf, fds, ctl::kMaxRequestFds);
    if (n <= 0) reaper_.discard_all(fds, s.peer.uid);
    if (n == -EAGAIN || n == -EINTR) return;
    if (n == -EMSGSIZE) {
        // Too long, too many descriptors, or descriptors the kernel could not pass us
        // (our table is full): the request is refused, the session goes on.
        ++counters_.bad_requests;
        ctl::Header h{};
        std::memcpy(&h, buf, sizeof h);
        return reply_status(s, h, ctl::Status::bad_request);
    }
    if (n <= 0) {  // hang-up, or the peer died: its claims and port go now
        s.doomed = true;
        return;
    }
    dispatch(s, buf, static_cast<std::size_t>(n), fds);
    reaper_.discard_all(fds, s.peer.uid);  // descriptors a handler did not take
    update_interest(s);
}

void ControlServer::charge_outbox(ClientSession& s) {
    const std::size_t now = s.out.queued_bytes();
    const bool within = users_.charge_outbox(s.peer, s.outbox_charged, now);
    s.outbox_charged = now;
    if (within || s.doomed) return;
    ++counters_.slow_clients;
    std::cerr << "multistackd: pid " << s.peer.pid << " uid " << s.peer.uid
              << " dropped: its user's unread replies passed the per-user budget\n";
    s.doomed = true;
}

void ControlServer::send_reply(ClientSession& s, const void* message, std::size_t size, std::span<const int> fds) {
    if (s.doomed) return;
    const auto sent = s.out.send(message, size, fds);
    charge_outbox(s);
    if (sent) return;
    if (sent.error() == SendError::overflow) {
        ++counters_.slow_clients;
        std::cerr << "multistackd: pid " << s.peer.pid << " uid " << s.peer.uid << " dropped: it does not read its replies\n";
    }
    s.doomed = true;
}

void ControlServer::update_interest(ClientSession& s) {
    if (s.doomed) return;
    const std::uint32_t want = (s.paused ? 0u : std::uint32_t{EPOLLIN}) | (s.out.pending() ? std::uint32_t{EPOLLOUT} : 0u);
    if (want == s.interest) return;
    // A session stays in the epoll set with no events asked while paused: epoll reports
    // its hang-up (EPOLLHUP, EPOLLERR) all the same, so that it goes at once.
    epoll_event ev{};
    ev.events = want;
    ev.data.fd = s.fd;
    (void)::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, s.fd, &ev);
    s.interest = want;
}

void ControlServer::pause(ClientSession& s) {
    s.paused = true;
    update_interest(s);
    arm_tick_timer();
}

void ControlServer::resume_paused_sessions() {
    for (auto& [fd, s] : sessions_) {
        if (!s.paused || reaper_.saturated(s.peer.uid)) continue;
        s.paused = false;
        update_interest(s);
    }
}

void ControlServer::reply_status(ClientSession& s, const ctl::Header& req, ctl::Status status) {
    ctl::Header rep = req;
    rep.magic = ctl::kMagic;
    rep.version = ctl::kVersion;
    rep.status = status;
    reply(s, rep);
}

void ControlServer::close_session(int fd) {
    auto it = sessions_.find(fd);
    if (it == sessions_.end()) return;
    ClientSession& s = it->second;
    if (s.capture) ctx_.sw.stop_capture(s.capture->ticket);
    while (!s.claims.empty()) release_claim(s, s.claims.size() - 1);
    detach_port(s);
    (void)users_.charge_outbox(s.peer, s.outbox_charged, 0);
    const bool large_outbox = s.outbox_charged >= kTrimAfterBytes;
    users_.close_session(s.peer);
    (void)::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    const uid_t uid = s.peer.uid;
    sessions_.erase(it);  // the outbox closes the descriptors it still held (the daemon's own)
    (void)::shutdown(fd, SHUT_RDWR);  // the client sees the hang-up now, even if the close waits
    reaper_.discard(fd, uid);         // messages still queued in it may carry descriptors
    arm_audit_timer();
    // Replies are many small blocks; give their pages back to the system, or the heap
    // keeps what a hostile client made it grow to.
    if (large_outbox) ::malloc_trim(0);
}

void ControlServer::close_doomed_sessions() {
    for (auto it = sessions_.begin(); it != sessions_.end();) {
        const int fd = it->first;
        const bool doomed = it->second.doomed;
        ++it;
        if (doomed) close_session(fd);
    }
}

void ControlServer::tick() {
    resume_paused_sessions();
    for (auto& [fd, s] : sessions_) {
        if (s.doomed) continue;
        if (s.capture) pump_capture(s);
        if (s.resolve) retry_resolve(s);
        update_interest(s);
    }
    close_doomed_sessions();
    arm_tick_timer();
}

void ControlServer::arm_tick_timer() {
    bool any = false;
    for (const auto& [fd, s] : sessions_) any = any || s.capture.has_value() || s.resolve.has_value() || s.paused;
    set_period(tick_timer_fd_, any ? 10'000'000 : 0);  // 10 ms
}

}  // namespace ms::daemon
