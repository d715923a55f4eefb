#include "client/multistack.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "ctl/seqpacket.hpp"

namespace ms::client {
namespace {

// One reply from the daemon; on failure no descriptor it carried stays open.
long receive_reply(int fd, void* buffer, std::size_t size, std::vector<int>& fds, std::size_t max_fds) {
    const long n = ctl::receive_message(fd, buffer, size, fds, max_fds);
    if (n <= 0) ctl::close_all(fds);
    return n;
}

Failure system_failure(const char* what, int err) { return {Error::system, std::string(what) + ": " + std::strerror(err)}; }

Failure from_status(ctl::Status s) {
    switch (s) {
        case ctl::Status::address_in_use: return {Error::address_in_use, "the 3-tuple is claimed already"};
        case ctl::Status::bad_socket: return {Error::bad_socket, "not a bound TCP or UDP socket"};
        case ctl::Status::not_attached: return {Error::not_attached, "attach a port first"};
        case ctl::Status::already_attached: return {Error::already_attached, "this connection has a port"};
        case ctl::Status::not_found: return {Error::not_found, "no such claim"};
        case ctl::Status::switch_full: return {Error::switch_full, "the switch has no free port"};
        case ctl::Status::busy:
            return {Error::busy, "a capture of that port runs already, or its socket table is being written"};
        case ctl::Status::no_route: return {Error::no_route, "no route through the switch's interface"};
        case ctl::Status::unreachable: return {Error::unreachable, "the kernel could not resolve the next hop"};
        case ctl::Status::permission_denied: return {Error::permission_denied, "that port belongs to another user"};
        case ctl::Status::limit_reached: return {Error::limit_reached, "a limit of the daemon (see its log)"};
        case ctl::Status::no_resources: return {Error::limit_reached, "the daemon is out of resources; try again later"};
        case ctl::Status::tuple_shared: return {Error::address_in_use, std::string(ctl::to_string(s))};
        case ctl::Status::foreign_namespace:
        case ctl::Status::bound_to_device:
        case ctl::Status::address_not_local:
        case ctl::Status::reusable_socket:
        case ctl::Status::socket_in_use: return {Error::bad_socket, std::string(ctl::to_string(s))};
        default: return {Error::protocol, std::string("the daemon answered ") + std::string(ctl::to_string(s))};
    }
}

// A kernel socket bound to (addr, port): the proof of ownership (docs/DESIGN.md §3).
base::Result<int, Failure> bind_socket(std::uint8_t protocol, const wire::IpAddr& addr, std::uint16_t port, Sharing sharing) {
    const bool v4 = addr.family == wire::IpFamily::v4;
    const int type = protocol == IPPROTO_TCP ? SOCK_STREAM : SOCK_DGRAM;
    const int fd = ::socket(v4 ? AF_INET : AF_INET6, type | SOCK_CLOEXEC, protocol);
    if (fd < 0) return system_failure("socket", errno);
    const int one = 1;
    if (sharing == Sharing::reuse_port) (void)::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    sockaddr_storage ss{};
    socklen_t len;
    if (v4) {
        auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        std::memcpy(&sin->sin_addr, addr.bytes.data(), 4);
        len = sizeof *sin;
    } else {
        auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        std::memcpy(&sin6->sin6_addr, addr.bytes.data(), 16);
        (void)::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        len = sizeof *sin6;
    }
    if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
        const int err = errno;
        ::close(fd);
        if (err == EADDRINUSE) return Failure{Error::address_in_use, "the kernel reports the address in use"};
        if (err == EACCES) return Failure{Error::permission_denied, "binding a privileged port needs CAP_NET_BIND_SERVICE"};
        return system_failure("bind", err);
    }
    return fd;
}

}  // namespace

std::string Failure::message() const {
    static constexpr const char* names[] = {
        "switch not running", "permission denied", "address in use", "bad socket",     "not attached",
        "already attached",   "not found",         "switch full",    "busy",           "limit reached",
        "no route",           "unreachable",       "protocol error", "invalid option", "system error"};
    static_assert(std::size(names) == static_cast<std::size_t>(Error::system) + 1, "one name per Error");
    return std::string(names[static_cast<int>(error)]) + (detail.empty() ? "" : ": " + detail);
}

AppPort::AppPort(std::uint32_t id, ring::Region region, std::vector<ring::EventFd> to_switch,
                 std::vector<ring::EventFd> to_app)
    : id_(id), region_(std::move(region)), to_switch_(std::move(to_switch)), to_app_(std::move(to_app)) {
    for (std::uint32_t pair = 0; pair < to_switch_.size(); ++pair) {
        tx_.emplace_back(region_, pair, &to_switch_[pair]);
        rx_.emplace_back(region_, pair);
    }
}

namespace {

// Both directions of a pair share the to_app eventfd; a wakeup for the other one is
// harmless, the caller looks again. Returns true if `also` (when >= 0) became readable
// or hung up. `timeout_us` -1: no limit.
bool sleep_on(ring::AppRing& r, const ring::EventFd& event, std::int64_t timeout_us, int also) {
    if (r.prepare_to_sleep()) return false;
    pollfd fds[2] = {{event.fd(), POLLIN, 0}, {also, POLLIN | POLLRDHUP, 0}};
    const timespec limit{.tv_sec = timeout_us / 1'000'000, .tv_nsec = (timeout_us % 1'000'000) * 1000};
    const int n = ::ppoll(fds, also >= 0 ? 2 : 1, timeout_us < 0 ? nullptr : &limit, nullptr);
    event.drain();
    r.wake();
    return n > 0 && also >= 0 && (fds[1].revents & (POLLIN | POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

}  // namespace

bool AppPort::wait_us(std::uint32_t pair, std::int64_t timeout_us, int also_fd) {
    return sleep_on(rx_.at(pair), to_app_.at(pair), timeout_us, also_fd);
}

void AppPort::wait_for_room(std::uint32_t pair, int timeout_ms) {
    (void)sleep_on(tx_.at(pair), to_app_.at(pair), timeout_ms < 0 ? -1 : std::int64_t{timeout_ms} * 1000, -1);
}

base::Result<ControlSession, Failure> ControlSession::open(const std::string& socket_path) {
    const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0) return system_failure("socket", errno);
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    if (socket_path.size() >= sizeof sun.sun_path) {
        ::close(fd);
        return Failure{Error::system, "socket path too long: " + socket_path};
    }
    std::memcpy(sun.sun_path, socket_path.c_str(), socket_path.size() + 1);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun) != 0) {
        const int err = errno;
        ::close(fd);
        if (err == ENOENT || err == ECONNREFUSED) return Failure{Error::switch_not_running, socket_path};
        if (err == EACCES || err == EPERM) return Failure{Error::permission_denied, socket_path};
        return system_failure("connect", err);
    }
    return ControlSession(fd);
}

ControlSession::ControlSession(ControlSession&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      seq_(other.seq_),
      descriptor_floor_(other.descriptor_floor_),
      outage_limit_ms_(other.outage_limit_ms_),
      port_(std::move(other.port_)),
      proofs_(std::exchange(other.proofs_, {})) {}

ControlSession& ControlSession::operator=(ControlSession&& other) noexcept {
    if (this != &other) {
        if (fd_ >= 0) ::close(fd_);
        close_proofs();
        fd_ = std::exchange(other.fd_, -1);
        seq_ = other.seq_;
        descriptor_floor_ = other.descriptor_floor_;
        outage_limit_ms_ = other.outage_limit_ms_;
        port_ = std::move(other.port_);
        proofs_ = std::exchange(other.proofs_, {});
    }
    return *this;
}

ControlSession::~ControlSession() {
    port_.reset();
    close_proofs();
    if (fd_ >= 0) ::close(fd_);
}

void ControlSession::close_proofs() {
    for (const KeptProof& kept : proofs_) ::close(kept.proof_fd);
    proofs_.clear();
}

void ControlSession::keep_proof(const Claim& claim, int bound_fd, ctl::ClaimRole role) {
    const int copy = ::fcntl(bound_fd, F_DUPFD_CLOEXEC, descriptor_floor_);
    if (copy >= 0) proofs_.push_back({claim, copy, role, false});  // without a copy, a restart ends the claim
}

bool ControlSession::stopped_for_good(const std::string& socket_path) {
    struct stat st {};
    return ::stat(socket_path.c_str(), &st) != 0 && errno == ENOENT;
}

void ReattachSchedule::failed(std::uint64_t now_ms) {
    constexpr std::uint64_t kFastBackoffMs = 4;
    constexpr std::uint64_t kFastPhaseMs = 2000;
    constexpr std::uint64_t kLongestBackoffMs = 100;
    ++tries_;
    next_ms_ = now_ms + backoff_ms_;
    backoff_ms_ = std::min(backoff_ms_ * 2, now_ms - since_ms_ < kFastPhaseMs ? kFastBackoffMs : kLongestBackoffMs);
}

base::Result<ControlSession, Failure> ControlSession::reattach(const std::string& socket_path, std::uint64_t data_bytes,
                                                               std::vector<std::pair<Claim, Failure>>& refused) {
    auto next = open(socket_path);
    if (!next) return next.error();
    next->set_descriptor_floor(descriptor_floor_);
    if (port_) {
        auto port = next->attach(port_->ring_pairs(), port_->tx().size(), data_bytes);
        if (!port) return port.error();
    }
    refused = prove_again(next.value());
    return next;
}

base::Result<std::size_t, Failure> ControlSession::restore_flows(std::span<const ctl::RestoredFlow> flows) {
    std::size_t recorded = 0;
    while (!flows.empty()) {
        ctl::RestoreFlowsRequest req;
        req.count = static_cast<std::uint32_t>(std::min<std::size_t>(flows.size(), ctl::RestoreFlowsRequest::kMaxFlows));
        std::copy_n(flows.begin(), req.count, req.flows);
        flows = flows.subspan(req.count);
        ctl::RestoreFlowsReply rep;
        if (auto r = call(&req, sizeof req, &rep, sizeof rep); !r) return r.error();
        recorded += rep.recorded;
    }
    return recorded;
}

std::vector<std::pair<Claim, Failure>> ControlSession::prove_again(ControlSession& next) {
    std::vector<std::pair<Claim, Failure>> refused;
    for (KeptProof& kept : proofs_) {
        ctl::ClaimRequest req;
        req.role = kept.role;
        ctl::ClaimReply rep;
        const int fds[] = {kept.proof_fd};
        auto proved = next.call(&req, sizeof req, &rep, sizeof rep, fds);
        if (proved && kept.draining) proved = next.drain(kept.claim);
        if (!proved) {
            refused.emplace_back(kept.claim, proved.error());
            ::close(kept.proof_fd);
            continue;
        }
        next.proofs_.push_back(kept);
    }
    proofs_.clear();
    return refused;
}

base::Result<Done, Failure> ControlSession::call(const void* request, std::size_t request_size, void* reply,
                                                 std::size_t reply_size, std::span<const int> send_fds,
                                                 std::vector<int>* received_fds) {
    auto* h = static_cast<ctl::Header*>(const_cast<void*>(request));
    h->seq = ++seq_;
    if (int rc = ctl::send_message(fd_, request, request_size, send_fds); rc < 0) return system_failure("send", -rc);
    std::vector<int> fds;
    const long n = receive_reply(fd_, reply, reply_size, fds, received_fds ? ctl::kMaxFds : 0);
    if (n == 0) return Failure{Error::switch_not_running, "the daemon closed the connection"};
    if (n < 0) return system_failure("receive", static_cast<int>(-n));
    const auto* r = static_cast<const ctl::Header*>(reply);
    if (static_cast<std::size_t>(n) < sizeof(ctl::Header) || r->magic != ctl::kMagic || r->seq != seq_) {
        ctl::close_all(fds);
        return Failure{Error::protocol, "unexpected reply"};
    }
    if (r->status != ctl::Status::ok) {
        ctl::close_all(fds);
        return from_status(r->status);
    }
    if (static_cast<std::size_t>(n) != reply_size) {
        ctl::close_all(fds);
        return Failure{Error::protocol, "reply of the wrong size"};
    }
    if (received_fds) *received_fds = std::move(fds);
    return Done{};
}

base::Result<AppPort*, Failure> ControlSession::attach(std::uint32_t ring_pairs, std::uint32_t slots_per_ring,
                                                       std::uint64_t data_bytes) {
    if (port_) return Failure{Error::already_attached, ""};
    ctl::AttachRequest req;
    req.ring_pairs = ring_pairs;
    req.slots_per_ring = slots_per_ring;
    req.data_bytes = data_bytes;
    ctl::AttachReply rep;
    std::vector<int> fds;
    if (auto r = call(&req, sizeof req, &rep, sizeof rep, {}, &fds); !r) return r.error();
    if (rep.ring_pairs == 0 || fds.size() != 1 + 2 * std::size_t{rep.ring_pairs}) {
        ctl::close_all(fds);
        return Failure{Error::protocol, "attach reply without its descriptors"};
    }
    std::vector<ring::EventFd> to_switch;
    std::vector<ring::EventFd> to_app;
    for (std::uint32_t p = 0; p < rep.ring_pairs; ++p) {
        to_switch.emplace_back(fds[1 + 2 * p]);
        to_app.emplace_back(fds[2 + 2 * p]);
    }
    auto region = ring::Region::map(fds[0]);
    if (!region) return Failure{Error::protocol, region.error().detail};
    port_ = std::make_unique<AppPort>(rep.port_id, std::move(region).value(), std::move(to_switch), std::move(to_app));
    outage_limit_ms_ = rep.outage_limit_ms;
    return port_.get();
}

base::Result<Claim, Failure> ControlSession::claim(std::uint8_t protocol, const wire::IpAddr& addr, std::uint16_t port,
                                                   Sharing sharing) {
    if (protocol != IPPROTO_TCP && protocol != IPPROTO_UDP) return Failure{Error::bad_socket, "protocol must be TCP or UDP"};
    auto fd = bind_socket(protocol, addr, port, sharing);
    if (!fd) return fd.error();
    auto claimed = claim_socket(fd.value());
    ::close(fd.value());  // the daemon holds its own reference for the claim's life
    return claimed;
}

base::Result<Claim, Failure> ControlSession::claim_socket(int bound_fd, ctl::ClaimRole role) {
    ctl::ClaimRequest req;
    req.role = role;
    ctl::ClaimReply rep;
    const int fds[] = {bound_fd};
    if (auto r = call(&req, sizeof req, &rep, sizeof rep, fds); !r) return r.error();
    const Claim claimed = ctl::from_tuple(rep.claimed);
    keep_proof(claimed, bound_fd, role);
    return claimed;
}

base::Result<Done, Failure> ControlSession::release(const Claim& claim) {
    ctl::ReleaseRequest req;
    req.tuple = ctl::to_tuple(claim);
    ctl::Header rep;
    auto released = call(&req, sizeof req, &rep, sizeof rep);
    const auto kept = std::find_if(proofs_.begin(), proofs_.end(), [&](const KeptProof& k) { return k.claim == claim; });
    if (kept != proofs_.end()) {
        ::close(kept->proof_fd);
        proofs_.erase(kept);
    }
    return released;
}

base::Result<Done, Failure> ControlSession::drain(const Claim& claim) {
    ctl::DrainRequest req;
    req.tuple = ctl::to_tuple(claim);
    ctl::Header rep;
    auto drained = call(&req, sizeof req, &rep, sizeof rep);
    if (drained) {
        for (KeptProof& kept : proofs_) kept.draining |= kept.claim == claim;
    }
    return drained;
}

base::Result<std::uint64_t, Failure> ControlSession::hand_off(const ctl::HandOffRequest& req, int image_fd, int library_end) {
    ctl::HandOffReply rep;
    const int fds[] = {image_fd, library_end};
    if (auto r = call(&req, sizeof req, &rep, sizeof rep, fds); !r) return r.error();
    return rep.parcel;
}

base::Result<ControlSession::TakenConnection, Failure> ControlSession::take_over(int held_fd) {
    ctl::TakeOverRequest req;
    const int sent[] = {held_fd};
    auto taken = receive_connection(&req, sizeof req, sent);
    if (taken) keep_copy_of_proof(taken->claim);
    return taken;
}

void ControlSession::keep_copy_of_proof(const Claim& claim) {
    if (std::any_of(proofs_.begin(), proofs_.end(), [&](const KeptProof& k) { return k.claim == claim; })) return;
    ctl::ProofCopyRequest req;
    req.tuple = ctl::to_tuple(claim);
    ctl::Header rep;
    std::vector<int> fds;
    auto copied = call(&req, sizeof req, &rep, sizeof rep, {}, &fds);
    if (copied && fds.size() == 1) {
        // Proved again as a claim whose listener has closed: the port keeps its connections
        // and gets no new ones.
        keep_proof(claim, fds[0], ctl::ClaimRole::serving);
        if (!proofs_.empty() && proofs_.back().claim == claim) proofs_.back().draining = true;
    }
    ctl::close_all(fds);
}

base::Result<ControlSession::TakenConnection, Failure> ControlSession::reclaim(std::uint64_t parcel) {
    ctl::ReclaimRequest req;
    req.parcel = parcel;
    return receive_connection(&req, sizeof req, {});
}

base::Result<ControlSession::TakenConnection, Failure> ControlSession::receive_connection(const void* request,
                                                                                          std::size_t size,
                                                                                          std::span<const int> sent) {
    ctl::TakeOverReply rep;
    std::vector<int> fds;
    if (auto r = call(request, size, &rep, sizeof rep, sent, &fds); !r) return r.error();
    if (fds.size() != 2) {
        ctl::close_all(fds);
        return Failure{Error::protocol, "take-over reply without its descriptors"};
    }
    return TakenConnection{fds[0], fds[1], rep.image_bytes, ctl::from_tuple(rep.claim)};
}

base::Result<ctl::InfoReply, Failure> ControlSession::info() {
    ctl::Header req{.op = ctl::Op::info};
    ctl::InfoReply rep;
    if (auto r = call(&req, sizeof req, &rep, sizeof rep); !r) return r.error();
    return rep;
}

base::Result<wire::MacAddr, Failure> ControlSession::resolve(const wire::IpAddr& dst) {
    ctl::ResolveRequest req;
    req.family = static_cast<std::uint8_t>(dst.family);
    std::memcpy(req.addr, dst.bytes.data(), 16);
    ctl::ResolveReply rep;
    if (auto r = call(&req, sizeof req, &rep, sizeof rep); !r) return r.error();
    wire::MacAddr mac;
    std::memcpy(mac.octets.data(), rep.mac, 6);
    return mac;
}

base::Result<ctl::StatusReply, Failure> ControlSession::status() {
    ctl::Header req{.op = ctl::Op::status};
    ctl::StatusReply rep;
    if (auto r = call(&req, sizeof req, &rep, sizeof rep); !r) return r.error();
    return rep;
}

base::Result<ctl::SocketsReply, Failure> ControlSession::sockets(std::uint32_t port_id, std::uint32_t first, bool refresh) {
    ctl::SocketsRequest req{.port_id = port_id, .first = first, .refresh = refresh ? std::uint8_t{1} : std::uint8_t{0}};
    ctl::SocketsReply rep;
    if (auto r = call(&req, sizeof req, &rep, sizeof rep); !r) return r.error();
    return rep;
}

template <class Entry>
base::Result<std::vector<Entry>, Failure> ControlSession::list(ctl::Op op) {
    ctl::Header req{.op = op, .seq = ++seq_};
    if (int rc = ctl::send_message(fd_, &req, sizeof req); rc < 0) return system_failure("send", -rc);
    std::vector<Entry> out;
    for (;;) {
        Entry e;
        std::vector<int> fds;
        const long n = receive_reply(fd_, &e, sizeof e, fds, 0);
        if (n <= 0) return Failure{Error::switch_not_running, "the daemon closed the connection"};
        if (e.h.magic != ctl::kMagic || e.h.seq != seq_) return Failure{Error::protocol, "unexpected reply"};
        if (e.h.op == ctl::Op::list_end) return out;
        if (e.h.status != ctl::Status::ok) return from_status(e.h.status);
        if (static_cast<std::size_t>(n) != sizeof e) return Failure{Error::protocol, "list entry of the wrong size"};
        out.push_back(e);
    }
}

base::Result<ctl::CaptureEnd, Failure> ControlSession::capture(
    const ctl::CaptureRequest& request, const std::function<bool(const ctl::CaptureFrame&)>& on_frame) {
    ctl::CaptureRequest req = request;
    req.h.seq = ++seq_;
    if (int rc = ctl::send_message(fd_, &req, sizeof req); rc < 0) return system_failure("send", -rc);
    auto frame = std::make_unique<ctl::CaptureFrame>();
    for (;;) {
        std::vector<int> fds;
        const long n = receive_reply(fd_, frame.get(), sizeof *frame, fds, 0);
        if (n <= 0) return Failure{Error::switch_not_running, "the daemon closed the connection"};
        const ctl::Header& h = frame->h;
        if (h.magic != ctl::kMagic || h.seq != seq_) return Failure{Error::protocol, "unexpected reply"};
        if (h.status != ctl::Status::ok) return from_status(h.status);
        if (h.op == ctl::Op::capture_end && static_cast<std::size_t>(n) == sizeof(ctl::CaptureEnd)) {
            ctl::CaptureEnd end;
            std::memcpy(static_cast<void*>(&end), static_cast<const void*>(frame.get()), sizeof end);
            return end;
        }
        if (h.op != ctl::Op::capture_frame || static_cast<std::size_t>(n) != sizeof *frame) {
            return Failure{Error::protocol, "unexpected capture message"};
        }
        if (!on_frame(*frame)) return ctl::CaptureEnd{};
    }
}

base::Result<std::vector<ctl::PortEntry>, Failure> ControlSession::ports() {
    return list<ctl::PortEntry>(ctl::Op::list_ports);
}
base::Result<std::vector<ctl::ClaimEntry>, Failure> ControlSession::claims() {
    return list<ctl::ClaimEntry>(ctl::Op::list_claims);
}

}  // namespace ms::client

namespace ms::ctl {

std::string_view to_string(Status s) {
    switch (s) {
        case Status::ok: return "ok";
        case Status::bad_request: return "bad request";
        case Status::version_mismatch: return "protocol version mismatch";
        case Status::not_attached: return "not attached";
        case Status::already_attached: return "already attached";
        case Status::address_in_use: return "address in use";
        case Status::bad_socket: return "bad socket";
        case Status::not_found: return "not found";
        case Status::switch_full: return "switch full";
        case Status::internal: return "internal error";
        case Status::busy: return "busy";
        case Status::no_route: return "no route";
        case Status::unreachable: return "unreachable";
        case Status::permission_denied: return "permission denied";
        case Status::limit_reached: return "limit reached";
        case Status::foreign_namespace: return "the socket is in another network namespace";
        case Status::bound_to_device: return "the socket is bound to another device";
        case Status::address_not_local: return "the address is not the interface's own";
        case Status::reusable_socket: return "the socket has SO_REUSEADDR or SO_REUSEPORT";
        case Status::socket_in_use: return "the socket is connected or listening";
        case Status::no_resources: return "the daemon is out of resources";
        case Status::tuple_shared: return "another kernel socket holds the same address and port";
    }
    return "unknown status";
}

}  // namespace ms::ctl
