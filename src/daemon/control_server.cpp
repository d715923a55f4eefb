#include "daemon/control_server.hpp"

#include <fcntl.h>
#include <grp.h>
#include <malloc.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <stdexcept>

#include "ctl/claim.hpp"
#include "ctl/seqpacket.hpp"
#include "daemon/claim_proof.hpp"

namespace ms::daemon {
namespace {

// A session that leaves at least this much unread makes its close trim the heap.
constexpr std::size_t kTrimAfterBytes = 64 << 10;

[[noreturn]] void fail(const std::string& path, const char* what) {
    throw std::runtime_error(path + ": " + what + ": " + std::strerror(errno));
}

void watch(int epoll_fd, int fd, std::uint32_t events = EPOLLIN) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    if (::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        (void)::epoll_ctl(epoll_fd, EPOLL_CTL_MOD, fd, &ev);
    }
}

std::string describe(const sw::ClaimKey& k) {
    return std::string(k.protocol == 6 ? "tcp " : "udp ") + k.addr.to_string() + ":" + std::to_string(k.port);
}

ctl::Status status_for(ProofError e) {
    switch (e) {
        case ProofError::foreign_namespace: return ctl::Status::foreign_namespace;
        case ProofError::bound_to_device: return ctl::Status::bound_to_device;
        case ProofError::address_not_local: return ctl::Status::address_not_local;
        case ProofError::reusable: return ctl::Status::reusable_socket;
        case ProofError::shared: return ctl::Status::tuple_shared;
        case ProofError::kernel_unreadable: return ctl::Status::internal;
        case ProofError::connected:
        case ProofError::listening: return ctl::Status::socket_in_use;
        case ProofError::not_inet:
        case ProofError::not_tcp_or_udp:
        case ProofError::unreadable:
        case ProofError::not_bound:
        case ProofError::changed: return ctl::Status::bad_socket;
    }
    return ctl::Status::bad_socket;
}

// Creates the socket file with its final mode (no window in which it is wider), and
// gives it to `group` without following a link an attacker may have put in its place.
void bind_socket_file(int fd, const std::string& path, std::optional<gid_t> group) {
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    if (path.size() >= sizeof sun.sun_path) throw std::runtime_error(path + ": socket path too long");
    std::memcpy(sun.sun_path, path.c_str(), path.size() + 1);
    ::unlink(path.c_str());  // a stale file: the interface lock proved no daemon owns it
    const mode_t old_mask = ::umask(0117);  // rw for owner and group
    const int bound = ::bind(fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun);
    ::umask(old_mask);
    if (bound != 0) fail(path, "bind");
    if (group && ::lchown(path.c_str(), 0, *group) != 0) fail(path, "chown");
    struct stat st{};
    if (::lstat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) fail(path, "the socket file was replaced");
}

int timer_fd(const std::string& path) {
    const int fd = ::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (fd < 0) fail(path, "timerfd_create");
    return fd;
}

void set_period(int timer, long nanoseconds) {
    itimerspec spec{};
    spec.it_interval.tv_sec = spec.it_value.tv_sec = nanoseconds / 1'000'000'000;
    spec.it_interval.tv_nsec = spec.it_value.tv_nsec = nanoseconds % 1'000'000'000;
    (void)::timerfd_settime(timer, 0, &spec, nullptr);
}

void drain_timer(int timer) {
    std::uint64_t ticks;
    (void)!::read(timer, &ticks, sizeof ticks);
}

}  // namespace

namespace {

// `ctx`'s limits fitted to what the daemon can hold (limits.hpp); throws if they do not fit.
ServerContext with_fitted_limits(ServerContext ctx) {
    auto fitted = fit_limits(ctx.limits, own_capacity(ctx.data_path.claim_capacity()));
    if (auto* why = std::get_if<std::string>(&fitted)) throw std::invalid_argument(*why);
    ctx.limits = std::get<Limits>(fitted);
    return ctx;
}

}  // namespace

ControlServer::ControlServer(ServerContext ctx, std::string path, std::optional<gid_t> group)
    : ctx_(with_fitted_limits(std::move(ctx))), path_(std::move(path)), users_(ctx_.limits) {
    listen_fd_ = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (listen_fd_ < 0) fail(path_, "socket");
    bind_socket_file(listen_fd_, path_, group);
    if (::listen(listen_fd_, 64) != 0) fail(path_, "listen");
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) fail(path_, "epoll_create1");
    watch(epoll_fd_, listen_fd_);
    tick_timer_fd_ = timer_fd(path_);
    watch(epoll_fd_, tick_timer_fd_);
    audit_timer_fd_ = timer_fd(path_);
    watch(epoll_fd_, audit_timer_fd_);
    spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
}

ControlServer::~ControlServer() {
    while (!sessions_.empty()) close_session(sessions_.begin()->first);
    ::close(spare_fd_);
    ::close(audit_timer_fd_);
    ::close(tick_timer_fd_);
    ::close(epoll_fd_);
    ::close(listen_fd_);
    ::unlink(path_.c_str());
}

void ControlServer::run(int signal_fd) {
    watch(epoll_fd_, signal_fd);
    while (run_once(-1, signal_fd)) {
    }
}

bool ControlServer::run_once(int timeout_ms, int signal_fd) {
    epoll_event events[32];
    const int n = ::epoll_wait(epoll_fd_, events, 32, timeout_ms);
    for (int i = 0; i < n; ++i) {
        const int fd = events[i].data.fd;
        if (fd == signal_fd) {
            signalfd_siginfo info{};
            (void)!::read(signal_fd, &info, sizeof info);
            std::cerr << "multistackd: signal " << info.ssi_signo << ", shutting down\n";
            return false;
        }
        handle_event(fd, events[i].events);
        close_doomed_sessions();
    }
    return true;
}

void ControlServer::handle_event(int fd, std::uint32_t events) {
    if (fd == tick_timer_fd_) {
        drain_timer(tick_timer_fd_);
        tick();
    } else if (fd == audit_timer_fd_) {
        drain_timer(audit_timer_fd_);
        audit_proofs();
    } else if (fd == listen_fd_) {
        accept_client();
    } else if (auto it = sessions_.find(fd); it != sessions_.end()) {
        Session& s = it->second;
        if (events & EPOLLOUT) {
            if (s.out.flush() != SendOutcome::sent) s.doomed = true;
            charge_outbox(s);
            update_interest(s);
        }
        if (s.paused && (events & (EPOLLHUP | EPOLLERR))) s.doomed = true;  // epoll reports these even when paused
        if (!s.doomed && !s.paused && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) serve(s);
    }
}

void ControlServer::accept_client() {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE) refuse_for_lack_of_descriptors();
        return;
    }
    const Peer peer = identify_peer(fd);
    if (auto hit = users_.open_session(peer)) {
        ++counters_.limits_reached;
        std::cerr << "multistackd: uid " << peer.uid << " (pid " << peer.pid << ") refused: " << to_string(*hit)
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

void ControlServer::serve(Session& s) {
    alignas(8) std::uint8_t buf[ctl::kMaxMessage];
    std::memset(buf, 0, sizeof(ctl::Header));  // a refused message may be shorter: echo no stale bytes
    std::vector<int> fds;
    if (reaper_.saturated(s.peer.uid)) return pause(s);
    const long n = ctl::receive_message(s.fd, buf, sizeof buf, fds, 1);
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

void ControlServer::dispatch(Session& s, const std::uint8_t* buf, std::size_t n, std::vector<int>& fds) {
    ctl::Header h;
    if (n < sizeof h) {
        ++counters_.bad_requests;
        return;
    }
    std::memcpy(&h, buf, sizeof h);
    const auto fits = [&](std::size_t size) { return n == size; };
    const auto as = [&]<class Req>(Req& req) {
        std::memcpy(&req, buf, sizeof req);
        return req;
    };
    if (h.magic != ctl::kMagic || h.version != ctl::kVersion) {
        ++counters_.bad_requests;
        reply_status(s, h, ctl::Status::version_mismatch);
    } else if (h.op == ctl::Op::attach && fits(sizeof(ctl::AttachRequest))) {
        ctl::AttachRequest req;
        on_attach(s, as(req));
    } else if (h.op == ctl::Op::claim && fits(sizeof(ctl::ClaimRequest))) {
        on_claim(s, h, fds);
    } else if (h.op == ctl::Op::release && fits(sizeof(ctl::ReleaseRequest))) {
        ctl::ReleaseRequest req;
        on_release(s, as(req));
    } else if (h.op == ctl::Op::info && fits(sizeof h)) {
        on_info(s, h);
    } else if (h.op == ctl::Op::status && fits(sizeof h)) {
        on_status(s, h);
    } else if (h.op == ctl::Op::list_ports && fits(sizeof h)) {
        on_list_ports(s, h);
    } else if (h.op == ctl::Op::list_claims && fits(sizeof h)) {
        on_list_claims(s, h);
    } else if (h.op == ctl::Op::resolve && fits(sizeof(ctl::ResolveRequest))) {
        ctl::ResolveRequest req;
        on_resolve(s, as(req));
    } else if (h.op == ctl::Op::capture && fits(sizeof(ctl::CaptureRequest))) {
        ctl::CaptureRequest req;
        on_capture(s, as(req));
    } else if (h.op == ctl::Op::sockets && fits(sizeof(ctl::SocketsRequest))) {
        ctl::SocketsRequest req;
        on_sockets(s, as(req));
    } else {
        ++counters_.bad_requests;
        reply_status(s, h, ctl::Status::bad_request);
    }
}

void ControlServer::charge_outbox(Session& s) {
    const std::size_t now = s.out.queued_bytes();
    const bool within = users_.charge_outbox(s.peer, s.outbox_charged, now);
    s.outbox_charged = now;
    if (within || s.doomed) return;
    ++counters_.slow_clients;
    std::cerr << "multistackd: pid " << s.peer.pid << " uid " << s.peer.uid
              << " dropped: its user's unread replies passed the per-user budget\n";
    s.doomed = true;
}

void ControlServer::send_reply(Session& s, const void* message, std::size_t size, std::span<const int> fds) {
    if (s.doomed) return;
    const SendOutcome outcome = s.out.send(message, size, fds);
    charge_outbox(s);
    switch (outcome) {
        case SendOutcome::sent: return;
        case SendOutcome::overflow:
            ++counters_.slow_clients;
            std::cerr << "multistackd: pid " << s.peer.pid << " uid " << s.peer.uid
                      << " dropped: it does not read its replies\n";
            s.doomed = true;
            return;
        case SendOutcome::peer_gone: s.doomed = true; return;
    }
}

void ControlServer::update_interest(Session& s) {
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

void ControlServer::pause(Session& s) {
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

void ControlServer::reply_status(Session& s, const ctl::Header& req, ctl::Status status) {
    ctl::Header rep = req;
    rep.magic = ctl::kMagic;
    rep.version = ctl::kVersion;
    rep.status = status;
    reply(s, rep);
}

void ControlServer::count_limit(const Session& s, LimitHit hit) {
    ++counters_.limits_reached;
    std::cerr << "multistackd: pid " << s.peer.pid << " uid " << s.peer.uid << " refused: " << to_string(hit)
              << " limit reached\n";
}

void ControlServer::on_attach(Session& s, const ctl::AttachRequest& req) {
    if (s.port) return reply_status(s, req.h, ctl::Status::already_attached);
    ring::Layout layout;
    if (req.ring_pairs == 0 || req.ring_pairs > ctx_.sw.config().max_ring_pairs || req.slots_per_ring < 2 ||
        req.slots_per_ring > ctx_.max_slots_per_ring || !ring::Layout::compute(req.ring_pairs, req.slots_per_ring, req.data_bytes, layout)) {
        return reply_status(s, req.h, ctl::Status::bad_request);
    }
    const std::uint32_t port_fds = port_descriptors(req.ring_pairs);
    if (auto hit = users_.add_port(s.peer, layout.region_size, port_fds)) {
        count_limit(s, *hit);
        return reply_status(s, req.h, ctl::Status::limit_reached);
    }
    sw::PortId id;
    try {
        id = ctx_.sw.attach_port({req.ring_pairs, req.slots_per_ring, req.data_bytes});
    } catch (const std::length_error&) {
        users_.remove_port(s.peer, layout.region_size, port_fds);
        return reply_status(s, req.h, ctl::Status::switch_full);
    } catch (const std::exception& e) {
        users_.remove_port(s.peer, layout.region_size, port_fds);
        std::cerr << "multistackd: attach failed: " << e.what() << "\n";
        return reply_status(s, req.h, ctl::Status::no_resources);
    }
    s.port = id;
    s.port_bytes = layout.region_size;
    s.port_fds = port_fds;
    sw::Port& port = ctx_.sw.port(id);
    std::vector<int> fds{port.region.fd()};
    for (const auto& r : port.rings) {
        fds.push_back(r->to_switch.fd());
        fds.push_back(r->to_app.fd());
    }
    ctl::AttachReply rep;
    rep.h.seq = req.h.seq;
    rep.port_id = id;
    rep.ring_pairs = req.ring_pairs;
    reply(s, rep, fds);
    std::cerr << "multistackd: port " << id << " attached by pid " << s.peer.pid << " uid " << s.peer.uid << " ("
              << req.ring_pairs << " ring pairs of " << req.slots_per_ring << " slots)\n";
}

void ControlServer::on_claim(Session& s, const ctl::Header& req, std::vector<int>& fds) {
    if (!s.port) return reply_status(s, req, ctl::Status::not_attached);
    if (fds.size() != 1) return reply_status(s, req, ctl::Status::bad_socket);
    if (s.claims.size() >= ctx_.limits.claims_per_session) {
        count_limit(s, LimitHit::claims_per_session);
        return reply_status(s, req, ctl::Status::limit_reached);
    }
    if (auto hit = users_.add_claim(s.peer)) {
        count_limit(s, *hit);
        return reply_status(s, req, ctl::Status::limit_reached);
    }
    // The claim's charge to its user stands only if the claim is made.
    struct Charge {
        UserLedger& users;
        const Peer& peer;
        bool kept = false;
        ~Charge() { if (!kept) users.remove_claim(peer); }
    } charge{users_, s.peer};
    const ProofResult proof = prove_claim(fds[0], ctx_.proof_scope);
    if (!proof.ok()) {
        ++counters_.claims_refused;
        std::cerr << "multistackd: port " << *s.port << ": claim refused: " << to_string(proof.error()) << "\n";
        return reply_status(s, req, status_for(proof.error()));
    }
    const sw::ClaimKey& key = proof.key();
    const std::optional<sw::ClaimKey>& twin = proof.ipv4_twin();
    const ctl::Status held = hold(s, key);
    if (held == ctl::Status::address_in_use) {
        if (!take_over(s, proof.proven())) return reply_status(s, req, held);
    } else if (held != ctl::Status::ok) {
        return reply_status(s, req, held);
    } else if (twin) {
        if (const ctl::Status also = hold(s, *twin); also != ctl::Status::ok) {
            unhold(s, key);
            return reply_status(s, req, also);
        }
    }
    never_linger(fds[0]);
    charge.kept = true;
    s.claims.push_back({proof.proven(), fds[0]});
    fds.clear();  // the session owns the socket now
    arm_audit_timer();
    ctl::ClaimReply rep;
    rep.h.seq = req.seq;
    rep.claimed = ctl::to_tuple({key.protocol, key.addr, key.port});
    reply(s, rep);
    std::cerr << "multistackd: port " << *s.port << " claims " << describe(key)
              << (twin ? " and " + describe(*twin) + " (a dual-stack socket)" : "") << "\n";
}

ctl::Status ControlServer::hold(Session& s, const sw::ClaimKey& key) {
    if (!ctx_.sw.registry().add(key, *s.port)) return ctl::Status::address_in_use;
    if (!ctx_.data_path.mirror_claim(key)) {
        (void)ctx_.sw.registry().remove(key, *s.port);
        std::cerr << "multistackd: the XDP claim map refused " << describe(key) << ": " << std::strerror(errno) << "\n";
        return ctl::Status::no_resources;
    }
    return ctl::Status::ok;
}

void ControlServer::unhold(Session& s, const sw::ClaimKey& key) {
    (void)ctx_.sw.registry().remove(key, *s.port);
    ctx_.data_path.unmirror_claim(key);
}

// A claim held by another session with the same proof socket moves to `s`'s port (a
// forked worker serving the listener its parent opened); the XDP map is unchanged.
bool ControlServer::take_over(Session& s, const ProvenTuple& proven) {
    const sw::ClaimKey& key = proven.key;
    for (auto& [fd, holder] : sessions_) {
        if (&holder == &s || !holder.port) continue;
        auto held = std::find_if(holder.claims.begin(), holder.claims.end(), [&](const HeldClaim& c) {
            return c.proven.key == key && c.proven.cookie == proven.cookie;
        });
        if (held == holder.claims.end()) continue;
        for (const auto& k : {std::optional<sw::ClaimKey>(key), proven.ipv4_twin}) {
            if (!k) continue;
            (void)ctx_.sw.registry().remove(*k, *holder.port);
            (void)ctx_.sw.registry().add(*k, *s.port);  // it was just freed: the registry's writer is this thread
        }
        // The proof socket lives on in `proof_fd`: this copy's close frees nothing.
        reaper_.discard(held->socket_fd, holder.peer.uid);
        holder.claims.erase(held);
        users_.remove_claim(holder.peer);
        std::cerr << "multistackd: port " << *s.port << " takes " << describe(key) << " over from port " << *holder.port
                  << " (the same proof socket)\n";
        return true;
    }
    return false;
}

void ControlServer::release_claim(Session& s, std::size_t index) {
    const HeldClaim c = s.claims[index];
    unhold(s, c.proven.key);
    if (c.proven.ipv4_twin) unhold(s, *c.proven.ipv4_twin);
    // The owner may have connected its copy and set a long linger since; the Reaper turns
    // linger off. The kernel frees the port now.
    reaper_.discard(c.socket_fd, s.peer.uid);
    s.claims.erase(s.claims.begin() + static_cast<long>(index));
    users_.remove_claim(s.peer);
}

void ControlServer::on_release(Session& s, const ctl::ReleaseRequest& req) {
    const ctl::Claim wanted = ctl::from_tuple(req.tuple);
    for (std::size_t i = 0; i < s.claims.size(); ++i) {
        const sw::ClaimKey& k = s.claims[i].proven.key;
        if (k.protocol == wanted.protocol && k.addr == wanted.addr && k.port == wanted.port) {
            std::cerr << "multistackd: port " << *s.port << " releases " << describe(k) << "\n";
            release_claim(s, i);
            arm_audit_timer();
            return reply_status(s, req.h, ctl::Status::ok);
        }
    }
    reply_status(s, req.h, ctl::Status::not_found);
}

void ControlServer::close_session(int fd) {
    auto it = sessions_.find(fd);
    if (it == sessions_.end()) return;
    Session& s = it->second;
    if (s.capture) ctx_.sw.stop_capture(s.capture->ticket);
    while (!s.claims.empty()) release_claim(s, s.claims.size() - 1);
    if (s.port) {
        ctx_.sw.detach_port(*s.port);
        users_.remove_port(s.peer, s.port_bytes, s.port_fds);
        std::cerr << "multistackd: port " << *s.port << " detached (pid " << s.peer.pid << ")\n";
    }
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

void ControlServer::audit_proofs() {
    const auto kernel = KernelPortIndex::read();
    if (!kernel) {
        std::cerr << "multistackd: the audit cannot read the kernel's socket table (sock_diag): "
                  << std::strerror(errno) << "\n";
    }
    for (auto& [fd, s] : sessions_) {
        for (std::size_t i = s.claims.size(); i-- > 0;) {
            const HeldClaim& c = s.claims[i];
            const auto broken = proof_still_holds(c.socket_fd, c.proven, ctx_.proof_scope, kernel ? &*kernel : nullptr);
            if (!broken) continue;
            ++counters_.claims_revoked;
            std::cerr << "multistackd: port " << *s.port << ": claim of " << describe(c.proven.key)
                      << " revoked: " << to_string(*broken) << " since the claim\n";
            release_claim(s, i);
        }
    }
    arm_audit_timer();
}

void ControlServer::arm_audit_timer() {
    // Armed or disarmed only on a change, so that a stream of claims never postpones it.
    constexpr long kAuditPeriodNs = 500'000'000;
    const bool wanted = claim_count() > 0;
    if (wanted == audit_armed_) return;
    audit_armed_ = wanted;
    set_period(audit_timer_fd_, wanted ? kAuditPeriodNs : 0);
}

std::size_t ControlServer::claim_count() const {
    std::size_t n = 0;
    for (const auto& [fd, s] : sessions_) n += s.claims.size();
    return n;
}

void ControlServer::arm_tick_timer() {
    bool any = false;
    for (const auto& [fd, s] : sessions_) any = any || s.capture.has_value() || s.resolve.has_value() || s.paused;
    set_period(tick_timer_fd_, any ? 10'000'000 : 0);  // 10 ms
}

}  // namespace ms::daemon
