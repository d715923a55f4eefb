#include "daemon/control_server.hpp"

#include <grp.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <stdexcept>

#include "client/multistack.hpp"
#include "client/seqpacket.hpp"
#include "daemon/claim_proof.hpp"

namespace ms::daemon {
namespace {

static_assert(sw::kDropReasonCount <= ctl::kDropSlots);
static_assert(ring::kRingFaultCount <= ctl::kFaultSlots);

[[noreturn]] void fail(const std::string& path, const char* what) {
    throw std::runtime_error(path + ": " + what + ": " + std::strerror(errno));
}

void add_to_epoll(int epoll_fd, int fd) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    (void)::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev);
}

template <class Msg>
void send(int fd, Msg& msg, std::span<const int> fds = {}) {
    (void)ctl::send_message(fd, &msg, sizeof msg, fds);
}

template <std::size_t N>
void copy_counts(std::uint64_t (&out)[N], const auto& in) {
    for (std::size_t i = 0; i < in.size() && i < N; ++i) out[i] = in[i];
}

std::string describe(const sw::ClaimKey& k) {
    return std::string(k.protocol == 6 ? "tcp " : "udp ") + k.addr.to_string() + ":" + std::to_string(k.port);
}

}  // namespace

ControlServer::ControlServer(ServerContext ctx, std::string path, std::optional<gid_t> group)
    : ctx_(ctx), path_(std::move(path)) {
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    if (path_.size() >= sizeof sun.sun_path) throw std::runtime_error(path_ + ": socket path too long");
    std::memcpy(sun.sun_path, path_.c_str(), path_.size() + 1);
    listen_fd_ = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (listen_fd_ < 0) fail(path_, "socket");
    ::unlink(path_.c_str());  // a stale file: the interface lock proved no daemon owns it
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&sun), sizeof sun) != 0) fail(path_, "bind");
    if (::chmod(path_.c_str(), 0660) != 0) fail(path_, "chmod");
    if (group && ::chown(path_.c_str(), 0, *group) != 0) fail(path_, "chown");
    if (::listen(listen_fd_, 64) != 0) fail(path_, "listen");
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) fail(path_, "epoll_create1");
    add_to_epoll(epoll_fd_, listen_fd_);
    tick_timer_fd_ = ::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (tick_timer_fd_ < 0) fail(path_, "timerfd_create");
    add_to_epoll(epoll_fd_, tick_timer_fd_);
}

ControlServer::~ControlServer() {
    while (!sessions_.empty()) close_session(sessions_.begin()->first);
    ::close(tick_timer_fd_);
    ::close(epoll_fd_);
    ::close(listen_fd_);
    ::unlink(path_.c_str());
}

void ControlServer::run(int signal_fd) {
    add_to_epoll(epoll_fd_, signal_fd);
    for (;;) {
        epoll_event events[32];
        const int n = ::epoll_wait(epoll_fd_, events, 32, -1);
        if (n < 0 && errno == EINTR) continue;
        for (int i = 0; i < n; ++i) {
            const int fd = events[i].data.fd;
            if (fd == signal_fd) {
                signalfd_siginfo info{};
                (void)!::read(signal_fd, &info, sizeof info);
                std::cerr << "multistackd: signal " << info.ssi_signo << ", shutting down\n";
                return;
            }
            if (fd == tick_timer_fd_) {
                std::uint64_t ticks;
                (void)!::read(tick_timer_fd_, &ticks, sizeof ticks);
                tick();
            } else if (fd == listen_fd_) {
                accept_client();
            } else if (auto it = sessions_.find(fd); it != sessions_.end()) {
                serve(it->second);
            }
        }
    }
}

void ControlServer::accept_client() {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) return;
    ucred cred{};
    socklen_t len = sizeof cred;
    (void)::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len);
    sessions_[fd] = Session{fd, cred.pid, cred.uid, std::nullopt, {}, std::nullopt, std::nullopt};
    add_to_epoll(epoll_fd_, fd);
}

void ControlServer::serve(Session& s) {
    alignas(8) std::uint8_t buf[ctl::kMaxMessage];
    std::vector<int> fds;
    const long n = ctl::receive_message(s.fd, buf, sizeof buf, fds, 1);
    if (n <= 0) {  // hang-up, or the peer died: its claims and port go now
        close_session(s.fd);
        return;
    }
    ctl::Header h;
    if (static_cast<std::size_t>(n) < sizeof h) {
        ++bad_requests_;
        ctl::close_all(fds);
        return;
    }
    std::memcpy(&h, buf, sizeof h);
    auto fits = [&](std::size_t size) { return static_cast<std::size_t>(n) == size; };
    if (h.magic != ctl::kMagic || h.version != ctl::kVersion) {
        ++bad_requests_;
        reply_status(s, h, ctl::Status::version_mismatch);
    } else if (h.op == ctl::Op::attach && fits(sizeof(ctl::AttachRequest))) {
        ctl::AttachRequest req;
        std::memcpy(&req, buf, sizeof req);
        on_attach(s, req);
    } else if (h.op == ctl::Op::claim && fits(sizeof(ctl::ClaimRequest))) {
        on_claim(s, h, fds);
    } else if (h.op == ctl::Op::release && fits(sizeof(ctl::ReleaseRequest))) {
        ctl::ReleaseRequest req;
        std::memcpy(&req, buf, sizeof req);
        on_release(s, req);
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
        std::memcpy(&req, buf, sizeof req);
        on_resolve(s, req);
    } else if (h.op == ctl::Op::capture && fits(sizeof(ctl::CaptureRequest))) {
        ctl::CaptureRequest req;
        std::memcpy(&req, buf, sizeof req);
        on_capture(s, req);
    } else {
        ++bad_requests_;
        reply_status(s, h, ctl::Status::bad_request);
    }
    ctl::close_all(fds);  // descriptors a handler did not take
}

void ControlServer::reply_status(Session& s, const ctl::Header& req, ctl::Status status) {
    ctl::Header rep = req;
    rep.magic = ctl::kMagic;
    rep.version = ctl::kVersion;
    rep.status = status;
    send(s.fd, rep);
}

void ControlServer::on_attach(Session& s, const ctl::AttachRequest& req) {
    if (s.port) return reply_status(s, req.h, ctl::Status::already_attached);
    if (req.ring_pairs == 0 || req.ring_pairs > ctx_.sw.config().max_ring_pairs || req.slots_per_ring < 2 ||
        req.slots_per_ring > ctx_.max_slots_per_ring) {
        return reply_status(s, req.h, ctl::Status::bad_request);
    }
    sw::PortId id;
    try {
        id = ctx_.sw.attach_port({req.ring_pairs, req.slots_per_ring});
    } catch (const std::length_error&) {
        return reply_status(s, req.h, ctl::Status::switch_full);
    } catch (const std::exception& e) {
        std::cerr << "multistackd: attach failed: " << e.what() << "\n";
        return reply_status(s, req.h, ctl::Status::internal);
    }
    s.port = id;
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
    send(s.fd, rep, fds);
    std::cerr << "multistackd: port " << id << " attached by pid " << s.pid << " uid " << s.uid << " ("
              << req.ring_pairs << " ring pairs of " << req.slots_per_ring << " slots)\n";
}

void ControlServer::on_claim(Session& s, const ctl::Header& req, std::vector<int>& fds) {
    if (!s.port) return reply_status(s, req, ctl::Status::not_attached);
    if (fds.size() != 1) return reply_status(s, req, ctl::Status::bad_socket);
    std::string why;
    const auto key = prove_claim(fds[0], why);
    if (!key) {
        std::cerr << "multistackd: port " << *s.port << ": claim refused: " << why << "\n";
        return reply_status(s, req, ctl::Status::bad_socket);
    }
    if (ctx_.sw.registry().add(*key, *s.port) != sw::ClaimError::ok) {
        return reply_status(s, req, ctl::Status::address_in_use);
    }
    if (!ctx_.xdp.add_claim(*key)) {
        (void)ctx_.sw.registry().remove(*key, *s.port);
        std::cerr << "multistackd: the XDP claim map refused " << describe(*key) << ": " << std::strerror(errno) << "\n";
        return reply_status(s, req, ctl::Status::internal);
    }
    s.claims.push_back({*key, fds[0]});
    fds.clear();  // the session owns the socket now
    ctl::ClaimReply rep;
    rep.h.seq = req.seq;
    rep.claimed = client::to_tuple({key->protocol, key->addr, key->port});
    send(s.fd, rep);
    std::cerr << "multistackd: port " << *s.port << " claims " << describe(*key) << "\n";
}

void ControlServer::release_claim(Session& s, std::size_t index) {
    const HeldClaim c = s.claims[index];
    (void)ctx_.sw.registry().remove(c.key, *s.port);
    ctx_.xdp.remove_claim(c.key);
    ::close(c.socket_fd);  // the kernel frees the port now
    s.claims.erase(s.claims.begin() + static_cast<long>(index));
}

void ControlServer::on_release(Session& s, const ctl::ReleaseRequest& req) {
    const client::Claim wanted = client::from_tuple(req.tuple);
    for (std::size_t i = 0; i < s.claims.size(); ++i) {
        const sw::ClaimKey& k = s.claims[i].key;
        if (k.protocol == wanted.protocol && k.addr == wanted.addr && k.port == wanted.port) {
            std::cerr << "multistackd: port " << *s.port << " releases " << describe(k) << "\n";
            release_claim(s, i);
            return reply_status(s, req.h, ctl::Status::ok);
        }
    }
    reply_status(s, req.h, ctl::Status::not_found);
}

void ControlServer::close_session(int fd) {
    auto it = sessions_.find(fd);
    if (it == sessions_.end()) return;
    Session& s = it->second;
    if (s.capture) ctx_.sw.stop_capture(s.capture->port);
    while (!s.claims.empty()) release_claim(s, s.claims.size() - 1);
    if (s.port) {
        ctx_.sw.detach_port(*s.port);
        std::cerr << "multistackd: port " << *s.port << " detached (pid " << s.pid << ")\n";
    }
    (void)::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    ::close(fd);
    sessions_.erase(it);
}

void ControlServer::on_info(Session& s, const ctl::Header& req) {
    ctl::InfoReply rep;
    rep.h.seq = req.seq;
    std::memcpy(rep.mac, ctx_.iface.mac.octets.data(), 6);
    rep.mtu = static_cast<std::uint16_t>(ctx_.iface.mtu);
    rep.ifindex = ctx_.iface.ifindex;
    for (const nic::InterfaceAddress& a : ctx_.iface.addresses) {
        if (rep.address_count == ctl::InfoReply::kMaxAddresses) break;
        std::memcpy(rep.addresses[rep.address_count], a.addr.bytes.data(), 16);
        rep.address_families[rep.address_count] = static_cast<std::uint8_t>(a.addr.family);
        rep.prefix_lengths[rep.address_count] = a.prefix_length;
        ++rep.address_count;
    }
    if (ctx_.iface.gateway) {
        rep.gateway_family = 4;
        std::memcpy(rep.gateway, ctx_.iface.gateway->bytes.data(), 16);
    }
    send(s.fd, rep);
}

void ControlServer::on_status(Session& s, const ctl::Header& req) {
    ctl::StatusReply rep;
    rep.h.seq = req.seq;
    std::strncpy(rep.ifname, ctx_.iface.name.c_str(), sizeof rep.ifname - 1);
    rep.ifindex = ctx_.iface.ifindex;
    rep.xdp_native = ctx_.xdp.mode() == nic::XdpMode::native;
    rep.zero_copy = ctx_.nic.zero_copy();
    rep.queues = static_cast<std::uint16_t>(ctx_.nic.queue_count());
    rep.workers = static_cast<std::uint16_t>(ctx_.sw.config().workers);
    rep.ports = static_cast<std::uint16_t>(ctx_.sw.port_ids().size());
    rep.claims = static_cast<std::uint32_t>(ctx_.sw.registry().snapshot()->entries().size());
    rep.pid = static_cast<std::uint32_t>(::getpid());
    const sw::StatsSnapshot nic = ctx_.sw.nic_stats();
    rep.nic_rx_frames = nic.rx_frames;
    rep.nic_tx_frames = nic.tx_frames;
    rep.xdp_claimed = ctx_.xdp.claimed_frames();
    rep.xdp_passed = ctx_.xdp.passed_frames();
    copy_counts(rep.nic_drops, nic.drops);
    copy_counts(rep.handoff_drops, ctx_.sw.handoff_stats().drops);
    send(s.fd, rep);
}

const ControlServer::Session* ControlServer::owner_of(sw::PortId port) const {
    for (const auto& [fd, s] : sessions_) {
        if (s.port == port) return &s;
    }
    return nullptr;
}

void ControlServer::on_list_ports(Session& s, const ctl::Header& req) {
    for (sw::PortId id : ctx_.sw.port_ids()) {
        ctl::PortEntry e;
        e.h.seq = req.seq;
        e.port_id = id;
        if (const Session* owner = owner_of(id)) {
            e.pid = owner->pid;
            e.uid = owner->uid;
            e.claims = static_cast<std::uint32_t>(owner->claims.size());
        }
        sw::Port& port = ctx_.sw.port(id);
        e.ring_pairs = static_cast<std::uint32_t>(port.rings.size());
        e.failed = port.is_failed();
        const sw::StatsSnapshot st = ctx_.sw.port_stats(id);
        e.rx_frames = st.rx_frames;
        e.rx_bytes = st.rx_bytes;
        e.tx_frames = st.tx_frames;
        e.tx_bytes = st.tx_bytes;
        copy_counts(e.drops, st.drops);
        copy_counts(e.faults, st.faults);
        send(s.fd, e);
    }
    reply_status(s, ctl::Header{.op = ctl::Op::list_end, .seq = req.seq}, ctl::Status::ok);
}

void ControlServer::on_list_claims(Session& s, const ctl::Header& req) {
    for (const auto& entry : ctx_.sw.registry().snapshot()->entries()) {
        ctl::ClaimEntry e;
        e.h.seq = req.seq;
        e.port_id = entry.port;
        e.tuple = client::to_tuple({entry.key.protocol, entry.key.addr, entry.key.port});
        send(s.fd, e);
    }
    reply_status(s, ctl::Header{.op = ctl::Op::list_end, .seq = req.seq}, ctl::Status::ok);
}

void ControlServer::on_capture(Session& s, const ctl::CaptureRequest& req) {
    if (s.capture) return reply_status(s, req.h, ctl::Status::busy);
    if (!ctx_.sw.has_port(static_cast<sw::PortId>(req.port_id))) return reply_status(s, req.h, ctl::Status::not_found);
    const auto port = static_cast<sw::PortId>(req.port_id);
    if (!ctx_.sw.start_capture(port)) return reply_status(s, req.h, ctl::Status::busy);
    Capture cap{port, req.h.seq, req.max_frames ? req.max_frames : UINT64_MAX, std::nullopt};
    if (req.milliseconds) cap.deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(req.milliseconds);
    s.capture = cap;
    arm_tick_timer();
    std::cerr << "multistackd: capture of port " << port << " started by pid " << s.pid << "\n";
}

void ControlServer::arm_tick_timer() {
    bool any = false;
    for (const auto& [fd, s] : sessions_) any = any || s.capture.has_value() || s.resolve.has_value();
    itimerspec spec{};
    if (any) spec.it_interval.tv_nsec = spec.it_value.tv_nsec = 10'000'000;  // 10 ms
    (void)::timerfd_settime(tick_timer_fd_, 0, &spec, nullptr);
}

void ControlServer::tick() {
    for (auto& [fd, s] : sessions_) {
        if (s.capture) pump_capture(s);
        if (s.resolve) {
            const Resolve r = *s.resolve;
            if (try_resolve(s, r.seq, r.next_hop)) {
                s.resolve.reset();
            } else if (std::chrono::steady_clock::now() >= r.deadline) {
                reply_status(s, ctl::Header{.op = ctl::Op::resolve, .seq = r.seq}, ctl::Status::unreachable);
                s.resolve.reset();
            }
        }
    }
    arm_tick_timer();
}

void ControlServer::pump_capture(Session& s) {
    auto frame = std::make_unique<ctl::CaptureFrame>();
    {
        Capture& cap = *s.capture;
        timespec now{};
        ::clock_gettime(CLOCK_REALTIME, &now);
        ctx_.sw.drain_capture(cap.port, [&](wire::Bytes f, sw::TapDirection d) {
            if (cap.remaining == 0) return;
            frame->h.seq = cap.seq;
            frame->timestamp_ns = static_cast<std::uint64_t>(now.tv_sec) * 1'000'000'000ull + static_cast<std::uint64_t>(now.tv_nsec);
            frame->len = static_cast<std::uint16_t>(f.size());
            frame->from_application = d == sw::TapDirection::from_application;
            std::memcpy(frame->data, f.data(), f.size());
            // A client that cannot keep up loses frames; it never stalls the daemon.
            if (::send(s.fd, frame.get(), sizeof *frame, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
                ++cap.lost;
                return;
            }
            ++cap.sent;
            if (cap.remaining != UINT64_MAX) --cap.remaining;
        });
        if (cap.remaining == 0 || (cap.deadline && std::chrono::steady_clock::now() >= *cap.deadline)) end_capture(s);
    }
}

void ControlServer::on_resolve(Session& s, const ctl::ResolveRequest& req) {
    if (s.resolve || (req.family != 4 && req.family != 6)) return reply_status(s, req.h, ctl::Status::bad_request);
    wire::IpAddr dst{req.family == 4 ? wire::IpFamily::v4 : wire::IpFamily::v6, {}};
    std::memcpy(dst.bytes.data(), req.addr, dst.size());
    const auto hop = ctx_.netlink.next_hop(dst, ctx_.iface.ifindex);
    if (!hop) return reply_status(s, req.h, ctl::Status::no_route);
    if (try_resolve(s, req.h.seq, *hop)) return;
    // The kernel is resolving it; look again on every tick, for up to a second.
    s.resolve = Resolve{req.h.seq, *hop, std::chrono::steady_clock::now() + std::chrono::seconds(1)};
    arm_tick_timer();
}

bool ControlServer::try_resolve(Session& s, std::uint32_t seq, const wire::IpAddr& next_hop) {
    wire::MacAddr mac;
    switch (ctx_.netlink.neighbour(next_hop, ctx_.iface.ifindex, mac)) {
        case nic::NeighbourState::pending: return false;
        case nic::NeighbourState::failed:
            reply_status(s, ctl::Header{.op = ctl::Op::resolve, .seq = seq}, ctl::Status::unreachable);
            return true;
        case nic::NeighbourState::reachable: break;
    }
    ctl::ResolveReply rep;
    rep.h.seq = seq;
    std::memcpy(rep.mac, mac.octets.data(), 6);
    rep.next_hop_family = static_cast<std::uint8_t>(next_hop.family);
    std::memcpy(rep.next_hop, next_hop.bytes.data(), 16);
    send(s.fd, rep);
    return true;
}

void ControlServer::end_capture(Session& s) {
    Capture& cap = *s.capture;
    ctl::CaptureEnd end;
    end.h.seq = cap.seq;
    end.frames = cap.sent;
    end.lost = cap.lost + ctx_.sw.capture_overflows(cap.port);
    ctx_.sw.stop_capture(cap.port);
    send(s.fd, end);
    std::cerr << "multistackd: capture of port " << cap.port << " ended: " << cap.sent << " frames\n";
    s.capture.reset();
}

}  // namespace ms::daemon
