// ms-attack: a hostile MultiStack client for the security suite (tests/netns/security.sh;
// DESIGN §3-§6 and §11, issue 9). It is written from the ABI alone: ring/abi.hpp for the
// shared memory and client/protocol.hpp for the control messages (switch/counters.hpp only
// for the order of the per-reason counter arrays that PortEntry carries). It never goes
// through libmultistack: it makes its own socket(), connect(), sendmsg()/recvmsg() with
// SCM_RIGHTS, maps the port's memfd and stores ring indices itself, so that it can do what
// a well-behaved library never would. It is meant to run as an unprivileged user.
//
// One subcommand per attack. Each prints one JSON line with what it observed and exits
//   0   the daemon refused or dropped what it had to (the attack failed);
//   1   the attack worked, or the daemon misbehaved (a reply late or missing, a hang-up);
//   2   bad arguments;
//   3   the tool could not set the attack up (the message says why);
//   77  the attack cannot be tried here (the JSON says why).
// With --hold, an attack keeps its sessions (so its ports and claims) after printing,
// until SIGTERM or SIGINT, so that the caller can inspect the daemon meanwhile. Progress
// lines go to stderr; the tests wait for them.
//
// The attacks (issue 9's findings, and siblings): oversize (tx slot lengths; maximum
// frames through the inbox between workers), netns-proof, bind-to-device, freebind (and
// spoofed sources), capture-other, slow-reader, linger, linger-junk (lingering sockets
// sent where the daemon only closes them), in-use, fd-leak, memory, port-limit,
// claim-limit, flood, wildcard, reuseaddr, vlan, super (issue 11's super-segments); and probe, a plain client that checks
// that someone else is still served.
#include <CLI/CLI.hpp>
#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <iostream>
#include <memory>
#include <numeric>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "client/protocol.hpp"
#include "ring/abi.hpp"
#include "switch/counters.hpp"  // the order of PortEntry's drops[] and faults[] only
#include "wire/build.hpp"
#include "wire/transport.hpp"

#ifndef SO_BINDTOIFINDEX
#define SO_BINDTOIFINDEX 62
#endif

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
namespace ctl = ms::ctl;
namespace ring = ms::ring;
namespace sw = ms::sw;
namespace wire = ms::wire;

constexpr int kExitDefended = 0;
constexpr int kExitBroken = 1;
constexpr int kExitUsage = 2;
constexpr int kExitSetup = 3;
constexpr int kExitSkipped = 77;
constexpr int kSetupMs = 3000;  // replies to the tool's own set-up requests
constexpr int kReplyMs = 1000;  // the control plane must answer within this while under attack

// The tool could not set its attack up (exit 3).
struct SetupError : std::runtime_error {
    using std::runtime_error::runtime_error;
};
// The daemon misbehaved: no reply in time, a hang-up, a reply that is not ours (exit 1).
struct Misbehaved : std::runtime_error {
    using std::runtime_error::runtime_error;
};

std::string errno_text(int err) { return std::strerror(err); }
[[noreturn]] void fail_errno(const std::string& what) { throw SetupError(what + ": " + errno_text(errno)); }

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

// Evaluates `done` every `step_ms` until it holds or `timeout_ms` have passed.
template <class Pred>
bool wait_until(Pred done, int timeout_ms, int step_ms = 20) {
    const auto end = Clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
        if (done()) return true;
        if (Clock::now() >= end) return false;
        ::usleep(static_cast<useconds_t>(step_ms) * 1000);
    }
}

std::string status_name(ctl::Status s) {
    static constexpr const char* names[] = {
        "ok", "bad_request", "version_mismatch", "not_attached", "already_attached", "address_in_use", "bad_socket",
        "not_found", "switch_full", "internal", "busy", "no_route", "unreachable", "permission_denied",
        "limit_reached", "foreign_namespace", "bound_to_device", "address_not_local", "reusable_socket",
        "socket_in_use", "no_resources"};
    static_assert(static_cast<std::size_t>(ctl::Status::no_resources) == std::size(names) - 1, "one name per Status");
    const auto i = static_cast<std::size_t>(static_cast<std::uint32_t>(s));
    return i < std::size(names) ? names[i] : "status_" + std::to_string(static_cast<int>(s));
}

std::string op_name(ctl::Op op) {
    static constexpr const char* names[] = {"attach", "claim", "release", "info", "status", "list_ports",
                                            "list_claims", "list_end", "capture", "capture_frame",
                                            "capture_end", "resolve"};
    const auto i = static_cast<std::size_t>(op) - 1;
    return i < std::size(names) ? names[i] : "op " + std::to_string(static_cast<int>(op));
}

// ---------------------------------------------------------------- descriptors, signals

class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    Fd& operator=(Fd&& other) noexcept {
        if (this != &other) reset(std::exchange(other.fd_, -1));
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }
    [[nodiscard]] int get() const { return fd_; }
    explicit operator bool() const { return fd_ >= 0; }
    void reset(int fd = -1) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = fd;
    }

private:
    int fd_ = -1;
};

Fd make_eventfd() {
    Fd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!fd) fail_errno("eventfd");
    return fd;
}

void kick(int eventfd) {
    const std::uint64_t one = 1;
    (void)!::write(eventfd, &one, sizeof one);
}

void drain(int eventfd) {
    std::uint64_t v;
    (void)!::read(eventfd, &v, sizeof v);
}

void set_nonblocking(int fd) {
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) fail_errno("fcntl O_NONBLOCK");
}

// SIGTERM and SIGINT (stop) and SIGUSR1 (go on), read from a signalfd so that loops can
// watch them and --hold can wait for them. They are blocked only once armed (before the
// tool says it is ready for them); until then SIGTERM ends the tool as usual, so that a
// tool stuck in an attack can still be stopped.
class Signals {
public:
    void arm() {
        if (fd_) return;
        sigset_t set;
        sigemptyset(&set);
        for (int s : {SIGTERM, SIGINT, SIGUSR1}) sigaddset(&set, s);
        if (::sigprocmask(SIG_BLOCK, &set, nullptr) != 0) fail_errno("sigprocmask");
        fd_ = Fd(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
        if (!fd_) fail_errno("signalfd");
    }
    [[nodiscard]] int fd() const { return fd_.get(); }
    // True once SIGTERM or SIGINT has arrived; does not wait.
    bool stopping() {
        arm();
        take();
        return stop_;
    }
    // Waits up to timeout_ms (-1: for ever) for SIGUSR1; true if it came.
    bool wait_usr1(int timeout_ms) { return wait_for(usr1_, timeout_ms); }
    bool wait_stop(int timeout_ms) { return wait_for(stop_, timeout_ms); }

private:
    void take() {
        signalfd_siginfo si{};
        while (::read(fd_.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
            (si.ssi_signo == SIGUSR1 ? usr1_ : stop_) = true;
        }
    }
    bool wait_for(const bool& flag, int timeout_ms) {
        arm();
        const auto end = Clock::now() + std::chrono::milliseconds(timeout_ms);
        for (;;) {
            take();
            if (flag || stop_) return flag;
            int left = -1;
            if (timeout_ms >= 0) {
                left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now()).count());
                if (left <= 0) return false;
            }
            pollfd p{fd_.get(), POLLIN, 0};
            (void)::poll(&p, 1, left);
        }
    }

    Fd fd_;
    bool stop_ = false;
    bool usr1_ = false;
};

// ---------------------------------------------------------------- the control socket

struct Message {
    long size = 0;  // 0: the daemon hung up
    bool truncated = false;
    std::vector<Fd> fds;
    alignas(8) std::array<std::uint8_t, ctl::kMaxMessage> bytes{};

    [[nodiscard]] ctl::Header header() const { return as<ctl::Header>(); }
    // The message as T; bytes it lacks read as zero.
    template <class T>
    [[nodiscard]] T as() const {
        static_assert(std::is_trivially_copyable_v<T>);
        T t{};
        std::memset(static_cast<void*>(&t), 0, sizeof t);
        std::memcpy(static_cast<void*>(&t), bytes.data(), std::min(sizeof t, static_cast<std::size_t>(std::max(size, 0L))));
        return t;
    }
};

template <class Req>
ctl::Header& header_of(Req& req) {
    if constexpr (std::is_same_v<Req, ctl::Header>) {
        return req;
    } else {
        return req.h;
    }
}

class Session {
public:
    static Session open(const std::string& path) {
        Fd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
        if (!fd) fail_errno("socket(AF_UNIX, SOCK_SEQPACKET)");
        sockaddr_un sun{};
        sun.sun_family = AF_UNIX;
        if (path.size() >= sizeof sun.sun_path) throw SetupError("socket path too long: " + path);
        std::memcpy(sun.sun_path, path.c_str(), path.size() + 1);
        if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sun), sizeof sun) != 0) fail_errno("connect " + path);
        return Session(std::move(fd));
    }

    [[nodiscard]] int fd() const { return fd_.get(); }
    [[nodiscard]] std::uint32_t next_seq() { return ++seq_; }
    void hang_up() { fd_.reset(); }

    // Sends one message with `fds` as SCM_RIGHTS; returns 0 or the errno.
    [[nodiscard]] int send(const void* data, std::size_t size, std::span<const int> fds = {}, int flags = 0) const {
        iovec iov{const_cast<void*>(data), size};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        std::vector<std::uint8_t> control;
        if (!fds.empty()) {
            control.assign(CMSG_SPACE(fds.size_bytes()), 0);
            msg.msg_control = control.data();
            msg.msg_controllen = control.size();
            cmsghdr* c = CMSG_FIRSTHDR(&msg);
            if (!c) return EINVAL;
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(fds.size_bytes());
            std::memcpy(CMSG_DATA(c), fds.data(), fds.size_bytes());
        }
        return ::sendmsg(fd_.get(), &msg, flags | MSG_NOSIGNAL) < 0 ? errno : 0;
    }

    // The next message within timeout_ms, with the descriptors it carried; nullopt if none came.
    [[nodiscard]] std::optional<Message> receive(int timeout_ms) const {
        pollfd p{fd_.get(), POLLIN, 0};
        const int ready = ::poll(&p, 1, timeout_ms);
        if (ready < 0) fail_errno("poll");
        if (ready == 0) return std::nullopt;
        Message m;
        iovec iov{m.bytes.data(), m.bytes.size()};
        alignas(cmsghdr) std::uint8_t control[CMSG_SPACE(sizeof(int) * 64)] = {};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        const ssize_t got = ::recvmsg(fd_.get(), &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        if (got < 0 && errno == EAGAIN) return std::nullopt;
        if (got < 0 && errno != ECONNRESET) fail_errno("recvmsg");
        m.size = got < 0 ? 0 : got;
        m.truncated = (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0;
        for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
            const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (std::size_t i = 0; i < count; ++i) {
                int fd;
                std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                m.fds.emplace_back(fd);
            }
        }
        return m;
    }

    // Sends a request (its seq set here) and returns its one reply. A reply that is
    // missing after timeout_ms, not ours, or a hang-up is the daemon's fault.
    template <class Req>
    Message call(Req& req, int timeout_ms, std::span<const int> fds = {}) {
        ctl::Header& h = header_of(req);
        h.seq = next_seq();
        const std::string what = op_name(h.op);
        if (int err = send(&req, sizeof req, fds)) throw Misbehaved(what + ": send: " + errno_text(err));
        auto reply = receive(timeout_ms);
        if (!reply) throw Misbehaved(what + ": no reply within " + std::to_string(timeout_ms) + " ms");
        if (reply->size == 0) throw Misbehaved(what + ": the daemon hung up");
        const ctl::Header rh = reply->header();
        if (static_cast<std::size_t>(reply->size) < sizeof rh || rh.magic != ctl::kMagic || rh.seq != h.seq) {
            throw Misbehaved(what + ": a reply that is not ours");
        }
        return std::move(*reply);
    }

private:
    explicit Session(Fd fd) : fd_(std::move(fd)) {}

    Fd fd_;
    std::uint32_t seq_ = 0;
};

template <class Entry>
std::vector<Entry> list(Session& s, ctl::Op op, int timeout_ms = kSetupMs) {
    ctl::Header req{.op = op, .seq = s.next_seq()};
    if (int err = s.send(&req, sizeof req)) throw Misbehaved(op_name(op) + ": send: " + errno_text(err));
    std::vector<Entry> out;
    for (;;) {
        auto m = s.receive(timeout_ms);
        if (!m) throw Misbehaved(op_name(op) + ": the list did not end within " + std::to_string(timeout_ms) + " ms");
        if (m->size == 0) throw Misbehaved(op_name(op) + ": the daemon hung up");
        const ctl::Header h = m->header();
        if (h.magic != ctl::kMagic || h.seq != req.seq) throw Misbehaved(op_name(op) + ": a reply that is not ours");
        if (h.op == ctl::Op::list_end) return out;
        if (h.status != ctl::Status::ok) throw Misbehaved(op_name(op) + ": " + status_name(h.status));
        if (static_cast<std::size_t>(m->size) != sizeof(Entry)) throw Misbehaved(op_name(op) + ": an entry of the wrong size");
        out.push_back(m->as<Entry>());
    }
}

ctl::StatusReply daemon_status(Session& s, int timeout_ms = kSetupMs) {
    ctl::Header req{.op = ctl::Op::status};
    const Message m = s.call(req, timeout_ms);
    if (m.header().status != ctl::Status::ok || static_cast<std::size_t>(m.size) != sizeof(ctl::StatusReply)) {
        throw Misbehaved("status: " + status_name(m.header().status) + ", " + std::to_string(m.size) + " bytes");
    }
    return m.as<ctl::StatusReply>();
}

wire::MacAddr nic_mac(Session& s) {
    ctl::Header req{.op = ctl::Op::info};
    const Message m = s.call(req, kSetupMs);
    if (m.header().status != ctl::Status::ok) throw Misbehaved("info: " + status_name(m.header().status));
    return wire::MacAddr::load(m.as<ctl::InfoReply>().mac);
}

// The descriptors of an attached port, as the attach reply carries them.
struct PortFds {
    std::uint32_t id = 0;
    std::uint32_t pairs = 0;
    Fd memfd;
    std::vector<Fd> to_switch;
    std::vector<Fd> to_app;
};

// Asks for a port; returns the daemon's status and, when ok, the port's descriptors.
ctl::Status attach(Session& s, std::uint32_t pairs, std::uint32_t slots, PortFds* out, int timeout_ms = kSetupMs) {
    ctl::AttachRequest req;
    req.ring_pairs = pairs;
    req.slots_per_ring = slots;
    Message m = s.call(req, timeout_ms);
    const ctl::Status st = m.header().status;
    if (st != ctl::Status::ok) return st;
    const auto rep = m.as<ctl::AttachReply>();
    if (static_cast<std::size_t>(m.size) != sizeof rep || rep.ring_pairs != pairs || m.fds.size() != 1 + 2 * std::size_t{pairs}) {
        throw Misbehaved("attach: a reply with " + std::to_string(m.fds.size()) + " descriptors for " +
                         std::to_string(pairs) + " ring pairs");
    }
    if (out) {
        out->id = rep.port_id;
        out->pairs = pairs;
        out->memfd = std::move(m.fds[0]);
        for (std::uint32_t p = 0; p < pairs; ++p) {
            out->to_switch.push_back(std::move(m.fds[1 + 2 * p]));
            out->to_app.push_back(std::move(m.fds[2 + 2 * p]));
        }
    }
    return st;
}

ctl::Status claim(Session& s, int proof, ctl::Tuple* claimed = nullptr, int timeout_ms = kSetupMs) {
    ctl::ClaimRequest req;
    const int fds[] = {proof};
    const Message m = s.call(req, timeout_ms, fds);
    if (m.header().status == ctl::Status::ok && claimed) *claimed = m.as<ctl::ClaimReply>().claimed;
    return m.header().status;
}

void must_claim(Session& s, int proof, ctl::Tuple* claimed = nullptr) {
    if (const ctl::Status st = claim(s, proof, claimed); st != ctl::Status::ok) {
        throw SetupError("a legitimate claim was refused: " + status_name(st));
    }
}

ctl::Status release(Session& s, const ctl::Tuple& t, int timeout_ms = kSetupMs) {
    ctl::ReleaseRequest req;
    req.tuple = t;
    return s.call(req, timeout_ms).header().status;
}

bool same_tuple(const ctl::Tuple& a, const ctl::Tuple& b) {
    return a.protocol == b.protocol && a.family == b.family && a.port == b.port && std::memcmp(a.addr, b.addr, 16) == 0;
}

// ---------------------------------------------------------------- the port's shared memory

std::uint32_t load(std::uint32_t& field) { return std::atomic_ref<std::uint32_t>(field).load(std::memory_order_acquire); }
void store(std::uint32_t& field, std::uint32_t v) { std::atomic_ref<std::uint32_t>(field).store(v, std::memory_order_release); }

// The port's region, mapped from its memfd. The geometry comes from the header the
// daemon wrote, checked against the file's size before anything is addressed.
class Region {
public:
    explicit Region(int memfd) {
        struct stat st{};
        if (::fstat(memfd, &st) != 0) fail_errno("fstat memfd");
        size_ = static_cast<std::size_t>(st.st_size);
        if (size_ < sizeof(ring::RegionHeader)) throw SetupError("the port region is smaller than its header");
        void* p = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
        if (p == MAP_FAILED) fail_errno("mmap the port region");
        base_ = static_cast<std::uint8_t*>(p);
        std::memcpy(&h_, base_, sizeof h_);
        if (!header_fits()) {
            ::munmap(base_, size_);
            throw SetupError("the port region's header does not describe the region");
        }
    }
    ~Region() { ::munmap(base_, size_); }
    Region(const Region&) = delete;
    Region& operator=(const Region&) = delete;

    [[nodiscard]] std::uint32_t slots_per_ring() const { return h_.slots_per_ring; }
    [[nodiscard]] std::size_t size() const { return size_; }
    [[nodiscard]] ring::RingControl& control(std::uint32_t ring) const {
        return *reinterpret_cast<ring::RingControl*>(base_ + h_.rings_offset + ring * h_.ring_stride);
    }
    [[nodiscard]] ring::Slot& slot(std::uint32_t ring, std::uint32_t i) const {
        auto* slots = reinterpret_cast<ring::Slot*>(base_ + h_.rings_offset + ring * h_.ring_stride + sizeof(ring::RingControl));
        return slots[i];
    }
    [[nodiscard]] std::uint64_t home_buffer(std::uint32_t ring, std::uint32_t i) const {
        return h_.buffers_offset + (std::uint64_t{ring} * h_.slots_per_ring + i) * ring::kBufferSize;
    }
    // `len` bytes at `offset`, which must lie inside the region.
    [[nodiscard]] std::uint8_t* bytes(std::uint64_t offset, std::size_t len) const {
        if (offset > size_ || len > size_ - offset) throw Misbehaved("a slot points outside the port region");
        return base_ + offset;
    }

private:
    [[nodiscard]] bool header_fits() const {
        const std::uint64_t rings = 2 * std::uint64_t{h_.ring_pairs};
        return h_.magic == ring::kRegionMagic && h_.abi_version == ring::kAbiVersion &&
                        h_.buffer_size == ring::kBufferSize && h_.region_size == size_ && h_.ring_pairs > 0 &&
                        h_.slots_per_ring >= 2 && h_.ring_stride >= sizeof(ring::RingControl) + h_.slots_per_ring * sizeof(ring::Slot) &&
                        h_.rings_offset + rings * h_.ring_stride <= h_.buffers_offset &&
                        h_.buffers_offset + rings * h_.slots_per_ring * ring::kBufferSize <= size_;
    }

    std::uint8_t* base_ = nullptr;
    std::size_t size_ = 0;
    ring::RegionHeader h_{};
};

// Moves a ring's head (and cur with it) `count` slots on; returns the new head.
std::uint32_t advance_head(ring::RingControl& ctl, std::uint32_t head, std::uint32_t count, std::uint32_t n) {
    head = ring::ring_advance(head, count, n);
    store(ctl.cur, head);
    store(ctl.head, head);
    return head;
}

// The application's side of a tx ring: [head, tail) is free for us; we fill from head and
// publish by moving cur, then head (the switch reads head, then cur).
class TxRing {
public:
    TxRing(const Region& r, std::uint32_t pair, int kick_fd)
        : r_(&r), ring_(ring::tx_ring(pair)), ctl_(&r.control(ring_)), n_(r.slots_per_ring()), head_(load(ctl_->head)), kick_fd_(kick_fd) {}

    [[nodiscard]] std::uint32_t space() const { return ring::ring_distance(head_, load(ctl_->tail), n_); }
    // Copies `frame` into the home buffer of the k-th free slot and points the slot at
    // it, with `len` as its length: a lie when the attack wants one.
    void stage(std::uint32_t k, wire::Bytes frame, std::uint16_t len) const {
        const std::uint32_t i = ring::ring_advance(head_, k, n_);
        const std::uint64_t off = r_->home_buffer(ring_, i);
        wire::copy_bytes(r_->bytes(off, ring::kBufferSize), frame.first(std::min<std::size_t>(frame.size(), ring::kBufferSize)));
        ring::Slot& s = r_->slot(ring_, i);
        s.offset = static_cast<std::uint32_t>(off);
        s.len = len;
        s.flags = 0;
        s.gso_size = 0;
    }
    // Writes a super-segment as a slot chain from the k-th free slot: `head` bytes in the
    // first slot (flags kSlotSegment|kSlotMore, gso_size), the rest in whole buffers;
    // returns the slots used. `first_flags` replaces the first slot's flags when nonzero.
    std::uint32_t stage_chain(std::uint32_t k, wire::Bytes super, std::uint16_t gso, std::size_t head = 200,
                              std::uint16_t first_flags = 0) const {
        std::uint32_t used = 0;
        for (std::size_t at = 0; at < super.size(); ++used) {
            const std::size_t n = std::min(super.size() - at, used == 0 ? head : std::size_t{ring::kBufferSize});
            stage(k + used, super.subspan(at, n), static_cast<std::uint16_t>(n));
            at += n;
            ring::Slot& s = slot(k + used);
            s.flags = at < super.size() ? ring::kSlotMore : 0;
            if (used == 0) {
                s.flags = first_flags ? first_flags : static_cast<std::uint16_t>(s.flags | ring::kSlotSegment);
                s.gso_size = gso;
            }
        }
        return used;
    }
    [[nodiscard]] ring::Slot& slot(std::uint32_t k) const { return r_->slot(ring_, ring::ring_advance(head_, k, n_)); }
    // Publishes `count` staged slots; kicks the switch if it sleeps, or always with `force`.
    void publish(std::uint32_t count, bool force = false) {
        head_ = advance_head(*ctl_, head_, count, n_);
        std::atomic_thread_fence(std::memory_order_seq_cst);
        if (force || load(ctl_->kick_switch) != 0) kick(kick_fd_);
    }
    // Sleeps until the switch returns slots (it kicks `wake_fd`) or timeout_ms pass.
    void wait_for_room(int wake_fd, int timeout_ms) {
        store(ctl_->kick_app, 1);
        std::atomic_thread_fence(std::memory_order_seq_cst);
        if (space() == 0) {
            pollfd p{wake_fd, POLLIN, 0};
            if (::poll(&p, 1, timeout_ms) > 0) drain(wake_fd);
        }
        store(ctl_->kick_app, 0);
    }

private:
    const Region* r_;
    std::uint32_t ring_;
    ring::RingControl* ctl_;
    std::uint32_t n_;
    std::uint32_t head_;
    int kick_fd_;
};

// The application's side of an rx ring: [head, tail) holds frames for us.
class RxRing {
public:
    RxRing(const Region& r, std::uint32_t pair)
        : r_(&r), ring_(ring::rx_ring(pair)), ctl_(&r.control(ring_)), n_(r.slots_per_ring()), head_(load(ctl_->head)) {}

    [[nodiscard]] std::uint32_t available() const { return ring::ring_distance(head_, load(ctl_->tail), n_); }
    [[nodiscard]] wire::Bytes frame(std::uint32_t k) const {
        const ring::Slot s = r_->slot(ring_, ring::ring_advance(head_, k, n_));
        return {r_->bytes(s.offset, s.len), s.len};
    }
    void release(std::uint32_t count) { head_ = advance_head(*ctl_, head_, count, n_); }
    // Asks the switch to kick us whenever it delivers.
    void want_kicks() { store(ctl_->kick_app, 1); }

private:
    const Region* r_;
    std::uint32_t ring_;
    ring::RingControl* ctl_;
    std::uint32_t n_;
    std::uint32_t head_;
};

// A port as the attacker holds it: its session, descriptors, mapping and rings.
struct Port {
    Session session;
    PortFds fds;
    std::unique_ptr<Region> region;
    std::vector<TxRing> tx;
    std::vector<RxRing> rx;
};

struct Ctx;
std::unique_ptr<Port> attach_port(const Ctx& c, std::uint32_t pairs, std::uint32_t slots);

ctl::PortEntry own_entry(Port& p) {
    for (const auto& e : list<ctl::PortEntry>(p.session, ctl::Op::list_ports)) {
        if (e.port_id == p.fds.id) return e;
    }
    throw Misbehaved("list_ports does not list our own port " + std::to_string(p.fds.id));
}

std::uint64_t drops(const ctl::PortEntry& e, sw::DropReason r) { return e.drops[static_cast<std::size_t>(r)]; }
std::uint64_t faults(const ctl::PortEntry& e, ring::RingFault f) { return e.faults[static_cast<std::size_t>(f)]; }
std::uint64_t total_drops(const ctl::PortEntry& e) {
    std::uint64_t n = 0;
    for (std::uint64_t d : e.drops) n += d;
    return n;
}

// ---------------------------------------------------------------- proof sockets and frames

sockaddr_in to_sockaddr(const wire::IpAddr& a, std::uint16_t port) {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    std::memcpy(&sin.sin_addr, a.bytes.data(), 4);
    return sin;
}

// An IPv4 or IPv6 socket address.
struct AnyAddr {
    sockaddr_storage ss{};
    socklen_t len = 0;
    [[nodiscard]] const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&ss); }
};

AnyAddr to_any_sockaddr(const wire::IpAddr& a, std::uint16_t port) {
    AnyAddr out;
    if (a.family == wire::IpFamily::v4) {
        const sockaddr_in sin = to_sockaddr(a, port);
        std::memcpy(&out.ss, &sin, sizeof sin);
        out.len = sizeof sin;
        return out;
    }
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(port);
    std::memcpy(&sin6.sin6_addr, a.bytes.data(), 16);
    std::memcpy(&out.ss, &sin6, sizeof sin6);
    out.len = sizeof sin6;
    return out;
}

wire::IpAddr ip_of(const std::string& text) {
    wire::IpAddr a;
    if (!wire::parse_ip(text, a)) throw SetupError("not an IPv4 or IPv6 address: " + text);
    return a;
}

struct SockOpts {
    bool reuseaddr = false;
    bool reuseport = false;
    bool freebind = false;
    bool transparent = false;
    bool broadcast = false;
    std::string device;    // SO_BINDTODEVICE
    int bind_ifindex = 0;  // SO_BINDTOIFINDEX
};

struct Bound {
    Fd fd;
    int err = 0;           // the errno of the step the kernel refused; 0: bound
    std::string refused;   // that step and why
};

// A socket of `type` bound to addr:port after the options; the kernel may refuse a step.
Bound bound_socket(int type, const wire::IpAddr& addr, std::uint16_t port, const SockOpts& o = {}) {
    const bool v6 = addr.family == wire::IpFamily::v6;
    Bound b{Fd(::socket(v6 ? AF_INET6 : AF_INET, type | SOCK_CLOEXEC, 0)), 0, {}};
    if (!b.fd) fail_errno("socket");
    auto set = [&b](int level, int name, const void* value, std::size_t len, const char* what) {
        if (b.err == 0 && ::setsockopt(b.fd.get(), level, name, value, static_cast<socklen_t>(len)) != 0) {
            b.err = errno;
            b.refused = std::string(what) + ": " + errno_text(errno);
        }
    };
    const int one = 1;
    if (o.reuseaddr) set(SOL_SOCKET, SO_REUSEADDR, &one, sizeof one, "SO_REUSEADDR");
    if (o.reuseport) set(SOL_SOCKET, SO_REUSEPORT, &one, sizeof one, "SO_REUSEPORT");
    if (v6) set(IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one, "IPV6_V6ONLY");
    if (o.freebind) {
        if (v6) set(IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof one, "IPV6_FREEBIND");
        else set(IPPROTO_IP, IP_FREEBIND, &one, sizeof one, "IP_FREEBIND");
    }
    if (o.transparent) {
        if (v6) set(IPPROTO_IPV6, IPV6_TRANSPARENT, &one, sizeof one, "IPV6_TRANSPARENT");
        else set(IPPROTO_IP, IP_TRANSPARENT, &one, sizeof one, "IP_TRANSPARENT");
    }
    if (o.broadcast) set(SOL_SOCKET, SO_BROADCAST, &one, sizeof one, "SO_BROADCAST");
    if (!o.device.empty()) set(SOL_SOCKET, SO_BINDTODEVICE, o.device.c_str(), o.device.size() + 1, "SO_BINDTODEVICE");
    if (o.bind_ifindex) set(SOL_SOCKET, SO_BINDTOIFINDEX, &o.bind_ifindex, sizeof o.bind_ifindex, "SO_BINDTOIFINDEX");
    if (b.err) return b;
    const AnyAddr sa = to_any_sockaddr(addr, port);
    if (::bind(b.fd.get(), sa.get(), sa.len) != 0) {
        b.err = errno;
        b.refused = "bind " + wire::endpoint_to_string(addr, port) + ": " + errno_text(errno);
    }
    return b;
}

Fd must_bind(int type, const wire::IpAddr& addr, std::uint16_t port, const SockOpts& o = {}) {
    Bound b = bound_socket(type, addr, port, o);
    if (b.err) throw SetupError(b.refused);
    return std::move(b.fd);
}

void set_int_option(int fd, int level, int name, int value, const char* what) {
    if (::setsockopt(fd, level, name, &value, sizeof value) != 0) fail_errno(what);
}

void connect_to(int fd, const wire::IpAddr& addr, std::uint16_t port) {
    const sockaddr_in sin = to_sockaddr(addr, port);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&sin), sizeof sin) != 0) {
        fail_errno("connect to " + addr.to_string() + ":" + std::to_string(port));
    }
}

// A TCP listener that never accepts nor reads.
Fd deaf_listener(const wire::IpAddr& addr, std::uint16_t port) {
    Fd fd = must_bind(SOCK_STREAM, addr, port);
    if (::listen(fd.get(), 16) != 0) fail_errno("listen");
    return fd;
}

// Connects `fd` to a deaf listener and writes until its send buffer is full: a close of
// this socket with SO_LINGER must then wait for the whole linger time.
std::size_t connect_and_fill(int fd, const wire::IpAddr& addr, std::uint16_t port) {
    connect_to(fd, addr, port);
    set_nonblocking(fd);
    const std::vector<std::uint8_t> chunk(64 * 1024, 0x5a);
    std::size_t total = 0;
    for (;;) {
        const ssize_t n = ::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
        if (n > 0) {
            total += static_cast<std::size_t>(n);
            if (total > (std::size_t{1} << 30)) throw SetupError("the deaf listener drains what we send");
            continue;
        }
        if (errno == EAGAIN) return total;
        fail_errno("send to the deaf listener");
    }
}

void linger_for_an_hour(int fd) {
    const linger l{1, 3600};
    if (::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l) != 0) fail_errno("SO_LINGER");
}

// A TCP socket whose close blocks for an hour: connected to a deaf listener, its send
// buffer full, SO_LINGER {1, 3600}.
Fd lingering_socket(const wire::IpAddr& addr, std::uint16_t listener_port) {
    Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) fail_errno("socket");
    (void)connect_and_fill(fd.get(), addr, listener_port);
    linger_for_an_hour(fd.get());
    return fd;
}

struct UdpSpec {
    wire::MacAddr src_mac;
    wire::MacAddr dst_mac;
    wire::IpAddr src;
    wire::IpAddr dst;
    std::uint16_t sport = 0;
    std::uint16_t dport = 0;
    std::size_t payload = 18;   // 60-byte frames by default
    std::uint32_t seq = 0;      // the payload's first four bytes
    std::size_t frame_len = 0;  // Ethernet padding up to this length
};

// A valid Ethernet/IPv4/UDP (or IPv6/UDP) frame with its checksums.
std::vector<std::uint8_t> udp_frame(const UdpSpec& s) {
    const bool v6 = s.src.family == wire::IpFamily::v6;
    const std::size_t len = wire::kEthernetHeaderLen + (v6 ? wire::kIpv6HeaderLen : wire::kIpv4MinHeaderLen) +
                            wire::kUdpHeaderLen + s.payload;
    std::vector<std::uint8_t> f(std::max(len, s.frame_len), 0);
    const auto emit = [&](auto ip, std::uint16_t ethertype, auto&& write) {
        return wire::emit_ip_frame(wire::MutBytes(f), {.dst = s.dst_mac, .src = s.src_mac, .ethertype = ethertype}, ip,
                                   wire::kUdpHeaderLen + s.payload, write);
    };
    const auto write_udp = [&](wire::MutBytes l4) {
        wire::UdpRepr{s.sport, s.dport, static_cast<std::uint16_t>(s.payload)}.emit(l4);
        const wire::MutBytes body = l4.subspan(wire::kUdpHeaderLen);
        for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<std::uint8_t>(s.seq * 7 + i);
        if (body.size() >= 4) wire::store_be32(body.data(), s.seq);
    };
    const std::size_t n =
        v6 ? emit(wire::Ipv6Repr{.src = s.src, .dst = s.dst, .next_header = wire::ipproto::udp}, wire::ethertype::ipv6, write_udp)
           : emit(wire::Ipv4Repr{.src = s.src, .dst = s.dst, .protocol = wire::ipproto::udp}, wire::ethertype::ipv4, write_udp);
    if (n != len) throw SetupError("the frame builder refused a frame");
    return f;
}

// The same frame with a tag (TPID, TCI) after the MAC addresses.
std::vector<std::uint8_t> with_tag(const std::vector<std::uint8_t>& f, std::uint16_t tpid, std::uint16_t tci) {
    std::vector<std::uint8_t> out(f.begin(), f.begin() + 12);
    out.resize(16);
    wire::store_be16(&out[12], tpid);
    wire::store_be16(&out[14], tci);
    out.insert(out.end(), f.begin() + 12, f.end());
    return out;
}

// The IPv4 destination of a frame, or nullopt if it is not IPv4.
std::optional<wire::IpAddr> ipv4_destination(wire::Bytes f) {
    if (f.size() < 34 || wire::load_be16(f.data() + 12) != wire::ethertype::ipv4) return std::nullopt;
    return wire::IpAddr::load_v4(f.data() + 30);
}

// ---------------------------------------------------------------- reports

class Report {
public:
    explicit Report(std::string attack) { j_["attack"] = std::move(attack); }
    json& operator[](const char* key) { return j_[key]; }
    // Records a failed expectation: the attack then counts as one that worked.
    void expect(bool ok, const std::string& what) {
        if (ok) return;
        broken_ = true;
        j_["failures"].push_back(what);
    }
    void skip(const std::string& why) {
        skipped_ = true;
        j_["skipped"] = why;
        std::cerr << "SKIPPED: " << j_["attack"].get<std::string>() << ": " << why << "\n";
    }
    int print() {
        j_["defended"] = !broken_;
        std::cout << j_.dump() << std::endl;
        return broken_ ? kExitBroken : skipped_ ? kExitSkipped : kExitDefended;
    }

private:
    json j_;
    bool broken_ = false;
    bool skipped_ = false;
};

struct Ctx {
    std::string socket;
    wire::IpAddr server;
    Signals* signals = nullptr;
    bool hold = false;

    // Prints the report and, with --hold, keeps what the attack holds until SIGTERM.
    int finish(Report& r) const {
        if (hold) signals->arm();
        const int code = r.print();
        if (hold) {
            std::cerr << "ms-attack: holding until SIGTERM" << std::endl;
            (void)signals->wait_stop(-1);
        }
        return code;
    }
};

std::unique_ptr<Port> attach_port(const Ctx& c, std::uint32_t pairs, std::uint32_t slots) {
    auto p = std::make_unique<Port>(Port{Session::open(c.socket), {}, nullptr, {}, {}});
    if (const ctl::Status st = attach(p->session, pairs, slots, &p->fds); st != ctl::Status::ok) {
        throw SetupError("attach of " + std::to_string(pairs) + " ring pairs of " + std::to_string(slots) +
                         " slots refused: " + status_name(st));
    }
    p->region = std::make_unique<Region>(p->fds.memfd.get());
    for (std::uint32_t k = 0; k < pairs; ++k) {
        p->tx.emplace_back(*p->region, k, p->fds.to_switch[k].get());
        p->rx.emplace_back(*p->region, k);
    }
    return p;
}

ctl::StatusReply daemon_status(const Ctx& c, int timeout_ms = kSetupMs) {
    Session s = Session::open(c.socket);
    return daemon_status(s, timeout_ms);
}

// A status request on a fresh connection; its time in ms, or nullopt if it did not come
// within limit_ms (recorded as a failure).
std::optional<double> timed_status(const Ctx& c, int limit_ms, Report& r, const std::string& when) {
    const auto t0 = Clock::now();
    try {
        (void)daemon_status(c, limit_ms);
        return ms_since(t0);
    } catch (const Misbehaved& e) {
        r.expect(false, "status " + when + ": " + e.what());
        return std::nullopt;
    }
}

bool port_gone(const Ctx& c, std::uint32_t id) {
    Session s = Session::open(c.socket);
    return wait_until([&] {
        for (const auto& e : list<ctl::PortEntry>(s, ctl::Op::list_ports)) {
            if (e.port_id == id) return false;
        }
        return true;
    }, 3000);
}

// Expects the daemon to refuse the proof `b` with `want`; records what it answered.
json expect_refusal(Session& s, Bound& b, ctl::Status want, const std::string& what, Report& r) {
    json j{{"proof", what}};
    if (b.err) {
        j["skipped"] = "the kernel refused: " + b.refused;
        return j;
    }
    const ctl::Status st = claim(s, b.fd.get());
    j["status"] = status_name(st);
    r.expect(st == want, what + ": " + status_name(st) + ", expected " + status_name(want));
    return j;
}

// ---------------------------------------------------------------- 1. oversize

// A fresh port publishes one tx slot that claims `len` bytes of its own buffer; the switch
// must fail that port with slot_too_long, and nothing else.
json bad_slot(const Ctx& c, std::unique_ptr<Port>& port, std::uint16_t udp_port, std::uint16_t dst_port, std::uint16_t len,
              std::uint32_t pair, Report& r) {
    port = attach_port(c, 2, 64);
    Fd proof = must_bind(SOCK_DGRAM, c.server, udp_port);
    must_claim(port->session, proof.get());
    const wire::MacAddr mac = nic_mac(port->session);
    // A valid frame for another port, which the padding the slot claims would carry
    // through the inbox between workers if the switch took the slot.
    const auto frame = udp_frame({mac, mac, c.server, c.server, udp_port, dst_port});
    port->tx[pair].stage(0, frame, len);
    port->tx[pair].publish(1, true);
    ctl::PortEntry e{};
    const bool failed = wait_until([&] {
        e = own_entry(*port);
        return e.failed != 0;
    }, 2000);
    const std::uint64_t too_long = faults(e, ring::RingFault::slot_too_long);
    r.expect(failed && too_long == 1, "a tx slot of " + std::to_string(len) + " bytes did not fail its port with slot_too_long");
    return {{"len", len}, {"pair", pair}, {"port", port->fds.id}, {"failed", failed}, {"slot_too_long", too_long}};
}

// The receiving port of the oversize attack: two ring pairs (so both workers, with
// --workers 2) and four claims from base + 1, so that flows spread over its rings.
std::unique_ptr<Port> receiver(const Ctx& c, std::uint16_t base) {
    auto b = attach_port(c, 2, 256);
    for (std::uint16_t k = 1; k <= 4; ++k) must_claim(b->session, must_bind(SOCK_DGRAM, c.server, static_cast<std::uint16_t>(base + k)).get());
    return b;
}

// Valid frames of the largest size, port to port, to the receiver `b`. Its rings may
// belong to the other worker, so frames cross the inbox between workers: each must
// arrive intact or be dropped and counted.
json port_to_port(const Ctx& c, std::uint16_t base, std::unique_ptr<Port> b, std::vector<std::unique_ptr<Port>>& keep, Report& r) {
    auto a = attach_port(c, 2, 256);
    must_claim(a->session, must_bind(SOCK_DGRAM, c.server, base).get());
    const wire::MacAddr mac = nic_mac(a->session);
    auto frame_of = [&](std::uint32_t seq) {
        UdpSpec s{mac, mac, c.server, c.server, base, static_cast<std::uint16_t>(base + 1 + seq % 4)};
        s.payload = seq % 2 ? 1476 : 1472;  // IP total length 1504 (fills the frame), or 1500 plus padding
        s.frame_len = ring::kMaxFrameSize;
        s.seq = seq;
        return udp_frame(s);
    };
    constexpr std::uint32_t kFrames = 4000;
    std::uint32_t sent = 0;
    std::uint32_t delivered = 0;
    std::uint32_t corrupt = 0;
    auto drain_b = [&] {
        for (RxRing& rx : b->rx) {
            const std::uint32_t n = rx.available();
            for (std::uint32_t k = 0; k < n; ++k) {
                const wire::Bytes f = rx.frame(k);
                const bool intact = f.size() == ring::kMaxFrameSize &&
                                    std::ranges::equal(f, frame_of(wire::load_be32(f.data() + 42)));
                (intact ? delivered : corrupt) += 1;
            }
            rx.release(n);
        }
    };
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    while (sent < kFrames && Clock::now() < deadline) {
        for (TxRing& tx : a->tx) {
            const std::uint32_t n = std::min({tx.space(), 64u, kFrames - sent});
            for (std::uint32_t k = 0; k < n; ++k) tx.stage(k, frame_of(sent + k), static_cast<std::uint16_t>(ring::kMaxFrameSize));
            if (n) tx.publish(n, true);
            sent += n;
        }
        drain_b();
    }
    std::uint32_t last = ~0u;
    (void)wait_until([&] {
        drain_b();
        return std::exchange(last, delivered) == delivered;
    }, 2000, 200);
    const ctl::PortEntry ea = own_entry(*a);
    const ctl::PortEntry eb = own_entry(*b);
    r.expect(corrupt == 0, std::to_string(corrupt) + " frames arrived port to port altered");
    r.expect(!ea.failed && !eb.failed, "a port that sent or received valid frames failed");
    const json j{{"sent", sent}, {"delivered_intact", delivered}, {"corrupt", corrupt}, {"sender_tx_frames", ea.tx_frames},
                 {"sender_drops", total_drops(ea)}, {"receiver_rx_frames", eb.rx_frames}, {"receiver_drops", total_drops(eb)}};
    keep.push_back(std::move(a));
    keep.push_back(std::move(b));
    return j;
}

int attack_oversize(const Ctx& c, std::uint16_t base) {
    Report r("oversize");
    std::vector<std::unique_ptr<Port>> keep;
    json slots = json::array();
    const auto p2p_base = static_cast<std::uint16_t>(base + 10);
    auto b = receiver(c, p2p_base);
    const std::uint16_t lens[] = {2048, static_cast<std::uint16_t>(ring::kMaxFrameSize + 1), 65535};
    for (std::uint32_t i = 0; i < std::size(lens); ++i) {
        std::unique_ptr<Port> p;
        const auto dst = static_cast<std::uint16_t>(p2p_base + 1 + i);
        slots.push_back(bad_slot(c, p, static_cast<std::uint16_t>(base + i), dst, lens[i], i % 2, r));
        if (i + 1 == std::size(lens)) {
            keep.push_back(std::move(p));  // the last failed port stays, with its counters
            break;
        }
        const std::uint32_t id = p->fds.id;
        p.reset();
        r.expect(port_gone(c, id), "port " + std::to_string(id) + " outlived its session");
    }
    r["bad_slots"] = slots;
    r["port_to_port"] = port_to_port(c, p2p_base, std::move(b), keep, r);
    const ctl::StatusReply st = daemon_status(c);
    r["handoff_drops"] = std::accumulate(std::begin(st.handoff_drops), std::end(st.handoff_drops), std::uint64_t{0});
    return c.finish(r);
}

// ---------------------------------------------------------------- 2. netns-proof

bool write_file(const char* path, const std::string& text, std::string& why) {
    Fd fd(::open(path, O_WRONLY | O_CLOEXEC));
    if (!fd || ::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
        why = std::string(path) + ": " + errno_text(errno);
        return false;
    }
    return true;
}

// Enters a new user namespace (we are root in it) and a new network namespace it owns.
bool enter_private_namespaces(std::string& why) {
    const uid_t uid = ::getuid();
    const gid_t gid = ::getgid();
    if (::unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0) {
        why = "unshare(CLONE_NEWUSER | CLONE_NEWNET): " + errno_text(errno);
        return false;
    }
    return write_file("/proc/self/setgroups", "deny", why) &&
           write_file("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1", why) &&
           write_file("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1", why);
}

// Brings our own lo up and gives it `addr` (as lo:1); returns what failed, or "".
std::string loopback_with(const wire::IpAddr& addr) {
    Fd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    if (::ioctl(s.get(), SIOCGIFFLAGS, &ifr) != 0) return "SIOCGIFFLAGS lo: " + errno_text(errno);
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
    if (::ioctl(s.get(), SIOCSIFFLAGS, &ifr) != 0) return "SIOCSIFFLAGS lo up: " + errno_text(errno);
    ifreq alias{};
    std::strncpy(alias.ifr_name, "lo:1", IFNAMSIZ - 1);
    const sockaddr_in sin = to_sockaddr(addr, 0);
    std::memcpy(&alias.ifr_addr, &sin, sizeof sin);
    if (::ioctl(s.get(), SIOCSIFADDR, &alias) != 0) return "SIOCSIFADDR lo:1 " + addr.to_string() + ": " + errno_text(errno);
    return {};
}

int attack_netns_proof(const Ctx& c, std::uint16_t port) {
    Report r("netns-proof");
    auto p = attach_port(c, 1, 64);  // the session is opened before we leave the namespace
    std::string why;
    if (!enter_private_namespaces(why)) {
        r.skip("unprivileged user namespaces are unavailable: " + why);
        return c.finish(r);
    }
    json tries = json::array();
    const std::string port_text = std::to_string(port);
    // The exact address first: in our namespace it would clash with a wildcard bind.
    if (const std::string err = loopback_with(c.server); !err.empty()) {
        tries.push_back({{"proof", "TCP " + c.server.to_string() + ":" + port_text + " on our own lo"}, {"skipped", err}});
    } else {
        Bound exact = bound_socket(SOCK_STREAM, c.server, port);
        tries.push_back(expect_refusal(p->session, exact, ctl::Status::foreign_namespace,
                                       "TCP " + c.server.to_string() + ":" + port_text + " on our own lo", r));
    }
    const wire::IpAddr any = wire::IpAddr::any(wire::IpFamily::v4);
    Bound tcp_any;
    (void)wait_until([&] {  // the daemon may still hold the refused exact proof for a moment
        tcp_any = bound_socket(SOCK_STREAM, any, port);
        return tcp_any.err != EADDRINUSE;
    }, 1000, 10);
    tries.push_back(expect_refusal(p->session, tcp_any, ctl::Status::foreign_namespace,
                                   "TCP 0.0.0.0:" + port_text + " in our own network namespace", r));
    Bound udp_any = bound_socket(SOCK_DGRAM, any, port);
    tries.push_back(expect_refusal(p->session, udp_any, ctl::Status::foreign_namespace,
                                   "UDP 0.0.0.0:" + port_text + " in our own network namespace", r));
    Bound tcp6_any = bound_socket(SOCK_STREAM, wire::IpAddr::any(wire::IpFamily::v6), port);
    tries.push_back(expect_refusal(p->session, tcp6_any, ctl::Status::foreign_namespace,
                                   "TCP [::]:" + port_text + " in our own network namespace", r));
    r["tries"] = tries;
    return c.finish(r);
}

// ---------------------------------------------------------------- 3. bind-to-device

int attack_bind_to_device(const Ctx& c, std::uint16_t port, const std::string& device) {
    Report r("bind-to-device");
    auto p = attach_port(c, 1, 64);
    json tries = json::array();
    int refused_by_kernel = 0;
    SockOpts by_name;
    by_name.device = device;
    Bound udp = bound_socket(SOCK_DGRAM, c.server, port, by_name);
    refused_by_kernel += udp.err != 0;
    tries.push_back(expect_refusal(p->session, udp, ctl::Status::bound_to_device, "UDP with SO_BINDTODEVICE " + device, r));
    SockOpts by_index;
    by_index.bind_ifindex = static_cast<int>(::if_nametoindex(device.c_str()));
    Bound tcp = bound_socket(SOCK_STREAM, c.server, static_cast<std::uint16_t>(port + 1), by_index);
    refused_by_kernel += tcp.err != 0;
    tries.push_back(expect_refusal(p->session, tcp, ctl::Status::bound_to_device, "TCP with SO_BINDTOIFINDEX " + device, r));
    r["tries"] = tries;
    r["uid"] = ::getuid();
    if (refused_by_kernel == 2) r.skip("the kernel refused SO_BINDTODEVICE to uid " + std::to_string(::getuid()) + ": run this case as root");
    return c.finish(r);
}

// ---------------------------------------------------------------- 4. freebind

struct AddressTry {
    std::string what;
    wire::IpAddr addr;
    int type;
    SockOpts opts;
};

std::vector<AddressTry> non_local_addresses(const wire::IpAddr& spoof, const wire::IpAddr& server) {
    SockOpts freebind;
    freebind.freebind = true;
    SockOpts broadcast = freebind;
    broadcast.broadcast = true;
    SockOpts transparent;
    transparent.transparent = true;
    std::vector<AddressTry> tries{{"FREEBIND UDP, an address of no interface", spoof, SOCK_DGRAM, freebind},
                                  {"FREEBIND TCP, an address of no interface", spoof, SOCK_STREAM, freebind},
                                  {"TRANSPARENT UDP, an address of no interface", spoof, SOCK_DGRAM, transparent}};
    if (server.family == wire::IpFamily::v6) {
        tries.push_back({"loopback", ip_of("::1"), SOCK_DGRAM, {}});
        tries.push_back({"multicast", ip_of("ff0e::1"), SOCK_DGRAM, freebind});  // global scope: no scope id to bind
        return tries;
    }
    wire::IpAddr subnet_broadcast = server;
    subnet_broadcast.bytes[3] = 0xff;  // the test hosts' prefix is a /24 (scripts/netns.sh)
    tries.push_back({"loopback", ip_of("127.0.0.1"), SOCK_DGRAM, {}});
    tries.push_back({"multicast", ip_of("224.0.0.1"), SOCK_DGRAM, freebind});
    tries.push_back({"limited broadcast", ip_of("255.255.255.255"), SOCK_DGRAM, broadcast});
    tries.push_back({"subnet broadcast", subnet_broadcast, SOCK_DGRAM, broadcast});
    return tries;
}

// With a legitimate claim, one valid frame and `count` frames whose source is `spoof`:
// the spoofed ones must be dropped as src_not_claimed, and only the valid one leaves.
json spoofed_frames(const Ctx& c, std::uint16_t port, const wire::IpAddr& spoof, const wire::IpAddr& peer,
                    const wire::MacAddr& peer_mac, std::uint32_t count, Report& r) {
    auto p = attach_port(c, 1, 256);
    must_claim(p->session, must_bind(SOCK_DGRAM, c.server, port).get());
    const wire::MacAddr mac = nic_mac(p->session);
    TxRing& tx = p->tx[0];
    const auto valid = udp_frame({mac, peer_mac, c.server, peer, port, 9});
    tx.stage(0, valid, static_cast<std::uint16_t>(valid.size()));
    for (std::uint32_t k = 1; k <= count; ++k) {
        UdpSpec s{mac, peer_mac, spoof, peer, port, 9};
        s.seq = k;
        const auto f = udp_frame(s);
        tx.stage(k, f, static_cast<std::uint16_t>(f.size()));
    }
    tx.publish(count + 1, true);
    ctl::PortEntry e{};
    (void)wait_until([&] {
        e = own_entry(*p);
        return e.tx_frames + total_drops(e) >= count + 1;
    }, 2000);
    const std::uint64_t not_claimed = drops(e, sw::DropReason::src_not_claimed);
    r.expect(not_claimed == count, std::to_string(not_claimed) + " of " + std::to_string(count) + " spoofed frames counted src_not_claimed");
    r.expect(e.tx_frames == 1, std::to_string(e.tx_frames) + " frames left, expected only the valid one");
    return {{"sent_spoofed", count}, {"src_not_claimed", not_claimed}, {"tx_frames", e.tx_frames}, {"drops", total_drops(e)}};
}

int attack_freebind(const Ctx& c, std::uint16_t port, const wire::IpAddr& spoof, const wire::IpAddr& peer,
                    const wire::MacAddr& peer_mac) {
    Report r("freebind");
    auto p = attach_port(c, 1, 64);
    json tries = json::array();
    std::uint16_t next = port;
    for (AddressTry& t : non_local_addresses(spoof, c.server)) {
        Bound b = bound_socket(t.type, t.addr, next++, t.opts);
        json j = expect_refusal(p->session, b, ctl::Status::address_not_local, t.what + " " + t.addr.to_string(), r);
        tries.push_back(std::move(j));
    }
    r["tries"] = tries;
    r["spoof"] = spoofed_frames(c, static_cast<std::uint16_t>(port + 20), spoof, peer, peer_mac, 10, r);
    return c.finish(r);
}

// ---------------------------------------------------------------- 5. capture-other

// Sends a capture request; returns the first answer within timeout_ms (nullopt: none).
std::optional<ctl::Header> capture_answer(Session& s, std::uint32_t port, std::uint32_t milliseconds, int timeout_ms) {
    ctl::CaptureRequest req;
    req.port_id = port;
    req.milliseconds = milliseconds;
    req.h.seq = s.next_seq();
    if (int err = s.send(&req, sizeof req)) throw Misbehaved("capture: send: " + errno_text(err));
    auto m = s.receive(timeout_ms);
    if (!m) return std::nullopt;
    if (m->size == 0) throw Misbehaved("capture: the daemon hung up");
    return m->header();
}

// Entries of other users must hide pid, uid, claims and counters; ours must show them.
json check_port_list(Port& p, Report& r) {
    json out = json::array();
    for (const ctl::PortEntry& e : list<ctl::PortEntry>(p.session, ctl::Op::list_ports)) {
        out.push_back({{"port", e.port_id}, {"shown", e.shown}, {"pid", e.pid}, {"uid", e.uid}, {"claims", e.claims}});
        if (e.port_id == p.fds.id) {
            r.expect(e.shown == 1 && e.uid == ::getuid() && e.pid == ::getpid(), "our own port's details are not shown to us");
            continue;
        }
        const bool counters_hidden = e.rx_frames == 0 && e.rx_bytes == 0 && e.tx_frames == 0 && e.tx_bytes == 0 &&
                                     total_drops(e) == 0 && std::ranges::all_of(e.faults, [](std::uint64_t f) { return f == 0; });
        r.expect(e.shown == 0 && e.pid == 0 && e.uid == 0 && e.claims == 0 && counters_hidden,
                 "port " + std::to_string(e.port_id) + " of another user shows its details");
    }
    return out;
}

int attack_capture_other(const Ctx& c, std::uint32_t victim) {
    Report r("capture-other");
    auto p = attach_port(c, 1, 64);
    Session s = Session::open(c.socket);
    const auto answer = capture_answer(s, victim, 500, kReplyMs);
    if (!answer) {
        r.expect(false, "no refusal within 1 s: the capture of port " + std::to_string(victim) + " seems to run");
    } else {
        r["victim_capture"] = {{"op", op_name(answer->op)}, {"status", status_name(answer->status)}};
        r.expect(answer->status == ctl::Status::permission_denied,
                 "capture of another user's port answered " + op_name(answer->op) + " " + status_name(answer->status));
    }
    // Our own port: allowed, so the refusal above is about ownership.
    Session own = Session::open(c.socket);
    const auto first = capture_answer(own, p->fds.id, 300, kSetupMs);
    const bool own_ok = first && first->status == ctl::Status::ok && first->op == ctl::Op::capture_end;
    r["own_capture"] = first ? json{{"op", op_name(first->op)}, {"status", status_name(first->status)}} : json("no answer");
    r.expect(own_ok, "the capture of our own port did not run to its end");
    r["ports"] = check_port_list(*p, r);
    return c.finish(r);
}

// ---------------------------------------------------------------- 6. slow-reader, linger, in-use

// Attach, claim and release on a fresh connection; returns the slowest reply in ms.
// Every reply must come within limit_ms (Misbehaved otherwise).
double control_round(const Ctx& c, std::uint16_t port, int limit_ms) {
    Session s = Session::open(c.socket);
    double worst = 0;
    auto timed = [&](const char* what, const std::function<ctl::Status()>& step) {
        const auto t0 = Clock::now();
        const ctl::Status st = step();
        worst = std::max(worst, ms_since(t0));
        if (st != ctl::Status::ok) throw Misbehaved(std::string(what) + " refused: " + status_name(st));
    };
    PortFds fds;
    timed("attach", [&] { return attach(s, 1, 64, &fds, limit_ms); });
    Fd proof = must_bind(SOCK_DGRAM, c.server, port);
    ctl::Tuple t{};
    timed("claim", [&] { return claim(s, proof.get(), &t, limit_ms); });
    timed("release", [&] { return release(s, t, limit_ms); });
    return worst;
}

// True once the daemon has closed the session (POLLHUP), within timeout_ms.
bool hung_up(const Session& s, int timeout_ms) {
    return wait_until([&] {
        pollfd p{s.fd(), POLLIN, 0};
        return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR)) != 0;
    }, timeout_ms);
}

int attack_slow_reader(const Ctx& c, std::uint16_t port, std::uint32_t requests, std::uint32_t rounds) {
    Report r("slow-reader");
    const ctl::StatusReply before = daemon_status(c);
    auto slow = attach_port(c, 1, 64);
    const ctl::Op ops[] = {ctl::Op::list_ports, ctl::Op::list_claims, ctl::Op::status};
    std::uint32_t sent = 0, stalls = 0, done = 0;
    double worst = 0;
    bool dropped = false;
    bool probe_failed = false;
    auto probe = [&] {
        try {
            worst = std::max(worst, control_round(c, port, kReplyMs));
            ++done;
        } catch (const Misbehaved& e) {
            r.expect(false, std::string("while a client does not read: ") + e.what());
            probe_failed = true;
        }
    };
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    // At least `requests`, and on until the daemon drops us (its outbox bound decides
    // when), up to ten times as many.
    while (sent < 10 * requests && !dropped && !probe_failed && Clock::now() < deadline) {
        if (sent >= requests && hung_up(slow->session, 0)) break;
        ctl::Header h{.op = ops[sent % 3], .seq = slow->session.next_seq()};
        const int err = slow->session.send(&h, sizeof h, {}, MSG_DONTWAIT);
        if (err == 0) {
            if (++sent % 100 == 0) probe();
        } else if (err == EAGAIN) {  // the daemon does not take more from us for now
            pollfd pf{slow->session.fd(), POLLOUT, 0};
            (void)::poll(&pf, 1, 20);
            if (++stalls % 25 == 0) probe();
        } else {
            dropped = err == EPIPE || err == ECONNRESET;
            r["send_error"] = errno_text(err);
        }
    }
    dropped = dropped || hung_up(slow->session, 3000);
    while (done < rounds && !probe_failed) probe();
    slow->session.hang_up();  // if the daemon still waits on it, it is free now: the report can ask
    const ctl::StatusReply after = daemon_status(c);
    r["requests_sent"] = sent;
    r["send_stalls"] = stalls;
    r["dropped"] = dropped;
    r["slow_clients"] = {before.slow_clients, after.slow_clients};
    r["control_rounds"] = done;
    r["worst_reply_ms"] = worst;
    r.expect(dropped, "the daemon kept a session that never reads its replies");
    r.expect(after.slow_clients > before.slow_clients, "control.slow_clients did not grow");
    r.expect(done >= rounds, "only " + std::to_string(done) + " of " + std::to_string(rounds) + " control rounds were answered in time");
    return c.finish(r);
}

// Closes `fd`, interrupting a lingering close after 100 ms with SIGALRM (the wait in
// tcp_close ends on a signal; the kernel finishes the close in the background). Returns
// true if the close had to wait: ours was the last reference.
bool close_was_last(Fd& fd) {
    struct sigaction sa{};
    sa.sa_handler = [](int) {};
    (void)::sigaction(SIGALRM, &sa, nullptr);  // no SA_RESTART
    itimerval alarm{};
    alarm.it_value.tv_usec = 100'000;
    (void)::setitimer(ITIMER_REAL, &alarm, nullptr);
    const auto t0 = Clock::now();
    fd.reset();
    const itimerval off{};
    (void)::setitimer(ITIMER_REAL, &off, nullptr);
    return ms_since(t0) >= 50;
}

// The release of a claim whose proof, after the claim, was connected to a deaf listener,
// filled, and set to linger for an hour: the daemon's close of it must not block. Tried
// again (up to 3 times, on other ports) if the daemon had dropped its copy before we
// closed ours, as an audit of the changed proof may.
int attack_linger(const Ctx& c, std::uint16_t port) {
    Report r("linger");
    auto p = attach_port(c, 1, 64);
    for (int attempt = 1; attempt <= 3; ++attempt) {
        const auto claim_port = static_cast<std::uint16_t>(port + 2 * (attempt - 1));
        const auto listener_port = static_cast<std::uint16_t>(claim_port + 1);
        const Fd listener = deaf_listener(c.server, listener_port);
        Fd proof = must_bind(SOCK_STREAM, c.server, claim_port);
        ctl::Tuple t{};
        must_claim(p->session, proof.get(), &t);
        r["queued_bytes"] = connect_and_fill(proof.get(), c.server, listener_port);
        linger_for_an_hour(proof.get());
        if (close_was_last(proof)) {  // the daemon let go first: not a test of its close
            (void)release(p->session, t);
            continue;
        }
        r["attempts"] = attempt;
        const auto t0 = Clock::now();
        try {
            const ctl::Status st = release(p->session, t, kReplyMs);
            r["release"] = {{"status", status_name(st)}, {"ms", ms_since(t0)}};
            // not_found: the daemon's audit revoked the changed proof first; also fine.
            r.expect(st == ctl::Status::ok || st == ctl::Status::not_found, "release answered " + status_name(st));
        } catch (const Misbehaved& e) {
            r.expect(false, std::string("release of a lingering proof: ") + e.what());
        }
        break;
    }
    if (!r["attempts"].is_number()) r.skip("the daemon dropped each changed proof before we closed ours (3 tries)");
    // Everyone else is still served, over two audit periods.
    double worst = 0;
    const auto end = Clock::now() + std::chrono::milliseconds(2500);
    while (Clock::now() < end) {
        const auto ms = timed_status(c, kReplyMs, r, "after the release of a lingering proof");
        if (!ms) break;
        worst = std::max(worst, *ms);
        ::usleep(200 * 1000);
    }
    r["status_worst_ms"] = worst;
    return c.finish(r);
}

// Sibling of the linger attack: lingering sockets sent where the daemon only closes them.
// A case counts only when the daemon got the last reference, that is when our own close
// returned at once; otherwise (the daemon closed its copy first) it is tried again. Each
// try has a deaf listener of its own, closed at its end: that resets the lingering
// socket, so a daemon stuck on one case is freed for the next.
int attack_linger_junk(const Ctx& c, std::uint16_t port) {
    Report r("linger-junk");
    json cases = json::array();
    std::uint16_t next = port;
    auto deliver = [&](const std::string& what, const std::function<void(Session&, int)>& send_it) {
        json j{{"sent", what}};
        for (int attempt = 1; attempt <= 5; ++attempt) {
            const Fd listener = deaf_listener(c.server, next);
            Fd junk = lingering_socket(c.server, next++);
            Session s = Session::open(c.socket);
            send_it(s, junk.get());
            if (close_was_last(junk)) continue;  // the daemon was faster: not a test
            (void)s.receive(200);
            s.hang_up();  // whatever the daemon kept waiting for, the session ends now
            const auto ms = timed_status(c, kReplyMs, r, "after " + what);
            j["attempts"] = attempt;
            j["status_ms"] = ms ? json(*ms) : json("no answer");
            break;
        }
        if (!j.contains("status_ms")) j["inconclusive"] = "the daemon closed its copy before we closed ours, 5 times";
        cases.push_back(std::move(j));
    };
    auto with_op = [](ctl::Op op) {
        return [op](Session& s, int fd) {
            ctl::Header h{.op = op, .seq = s.next_seq()};
            const int fds[] = {fd};
            (void)s.send(&h, sizeof h, fds);
        };
    };
    deliver("an unknown op with a lingering socket", with_op(static_cast<ctl::Op>(200)));
    deliver("a claim before attach with a lingering socket", with_op(ctl::Op::claim));
    deliver("a zero-length message with a lingering socket", [](Session& s, int fd) {
        const int fds[] = {fd};
        (void)s.send(nullptr, 0, fds);
    });
    deliver("a status request with 40 copies of a lingering socket (control data truncated)", [](Session& s, int fd) {
        ctl::Header h{.op = ctl::Op::status, .seq = s.next_seq()};
        const std::vector<int> fds(40, fd);
        (void)s.send(&h, sizeof h, fds);
    });
    // The daemon never sees this one: it is in flight inside a UNIX socket the daemon is
    // sent, and goes when that socket's queue is purged at the daemon's close.
    deliver("an unknown op with a UNIX socket holding a lingering socket in flight", [](Session& s, int fd) {
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) != 0) fail_errno("socketpair");
        const Fd near(sv[0]), far(sv[1]);
        const char byte = 0;
        iovec iov{const_cast<char*>(&byte), 1};
        alignas(cmsghdr) std::uint8_t control[CMSG_SPACE(sizeof(int))] = {};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        cmsghdr* cm = CMSG_FIRSTHDR(&msg);
        if (!cm) throw SetupError("no room for SCM_RIGHTS");
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        std::memcpy(CMSG_DATA(cm), &fd, sizeof fd);
        if (::sendmsg(near.get(), &msg, 0) != 1) fail_errno("sendmsg on our own socketpair");
        ctl::Header h{.op = static_cast<ctl::Op>(200), .seq = s.next_seq()};
        const int fds[] = {far.get()};
        (void)s.send(&h, sizeof h, fds);
    });
    r["cases"] = cases;
    return c.finish(r);
}

int attack_in_use(const Ctx& c, std::uint16_t port) {
    Report r("in-use");
    auto p = attach_port(c, 1, 64);
    json tries = json::array();
    Bound udp = bound_socket(SOCK_DGRAM, c.server, port);
    if (!udp.err) connect_to(udp.fd.get(), c.server, static_cast<std::uint16_t>(port + 1));
    tries.push_back(expect_refusal(p->session, udp, ctl::Status::socket_in_use, "UDP, connected", r));
    Bound listening = bound_socket(SOCK_STREAM, c.server, static_cast<std::uint16_t>(port + 2));
    if (!listening.err && ::listen(listening.fd.get(), 1) != 0) fail_errno("listen");
    tries.push_back(expect_refusal(p->session, listening, ctl::Status::socket_in_use, "TCP, listening", r));
    Fd listener = deaf_listener(c.server, static_cast<std::uint16_t>(port + 4));
    Bound connected = bound_socket(SOCK_STREAM, c.server, static_cast<std::uint16_t>(port + 3));
    if (!connected.err) connect_to(connected.fd.get(), c.server, static_cast<std::uint16_t>(port + 4));
    tries.push_back(expect_refusal(p->session, connected, ctl::Status::socket_in_use, "TCP, connected", r));
    r["tries"] = tries;
    return c.finish(r);
}

// ---------------------------------------------------------------- 7. fd-leak, memory, limits

// Sends one message per fresh session, waiting for its answer (a reply or a hang-up);
// returns how many got none within kReplyMs (it stops at the first).
std::uint32_t junk_rounds(const Ctx& c, std::uint32_t rounds, const std::function<void(Session&)>& send_it, bool expect_answer) {
    for (std::uint32_t i = 0; i < rounds; ++i) {
        Session s = Session::open(c.socket);
        send_it(s);
        if (expect_answer && !s.receive(kReplyMs)) return 1;
    }
    return 0;
}

int attack_fd_leak(const Ctx& c, std::uint16_t port, std::uint32_t rounds) {
    Report r("fd-leak");
    const ctl::StatusReply before = daemon_status(c);
    const Fd e1 = make_eventfd(), e2 = make_eventfd(), e3 = make_eventfd();
    const int three[] = {e1.get(), e2.get(), e3.get()};
    const std::vector<int> forty(40, e1.get());
    const Fd bound = must_bind(SOCK_DGRAM, c.server, 0);
    const int proof[] = {bound.get()};
    json sent = json::object();
    std::uint32_t unanswered = 0;

    // Zero-length messages with descriptors, each on a session of its own (it may end
    // the session): one descriptor (as many as a claim carries) and three. A status round
    // trip every 25 lets the daemon keep up.
    Session pacer = Session::open(c.socket);
    for (const std::span<const int> fds : {std::span<const int>(three).first(1), std::span<const int>(three)}) {
        for (std::uint32_t i = 0; i < rounds; ++i) {
            Session s = Session::open(c.socket);
            (void)s.send(nullptr, 0, fds);
            if (i % 25 == 24) (void)daemon_status(pacer);
        }
        sent["zero_length_with_" + std::to_string(fds.size()) + (fds.size() == 1 ? "_fd" : "_fds")] = rounds;
    }

    auto header_with = [](ctl::Op op) { return ctl::Header{.op = op}; };
    unanswered += junk_rounds(c, 50, [&](Session& s) {
        ctl::Header h = header_with(ctl::Op::status);
        (void)s.send(&h, sizeof h, forty);
    }, true);
    unanswered += junk_rounds(c, 20, [&](Session& s) {
        ctl::AttachRequest req;
        req.ring_pairs = 1;
        req.slots_per_ring = 64;
        (void)s.send(&req, sizeof req, forty);
    }, true);
    sent["forty_fds_truncated"] = 70;
    unanswered += junk_rounds(c, 50, [&](Session& s) {
        ctl::ClaimRequest req;
        (void)s.send(&req, sizeof req, proof);
    }, true);
    sent["claim_before_attach"] = 50;
    unanswered += junk_rounds(c, 50, [&](Session& s) {
        ctl::Header h = header_with(static_cast<ctl::Op>(200));
        (void)s.send(&h, sizeof h, three);
    }, true);
    unanswered += junk_rounds(c, 30, [&](Session& s) {
        ctl::Header h = header_with(ctl::Op::status);
        h.magic = 0x12345678;
        (void)s.send(&h, sizeof h, three);
    }, true);
    unanswered += junk_rounds(c, 30, [&](Session& s) {
        ctl::Header h = header_with(ctl::Op::status);
        h.version = 1;
        (void)s.send(&h, sizeof h, three);
    }, true);
    unanswered += junk_rounds(c, 30, [&](Session& s) {
        const std::uint8_t shorter[8] = {};
        (void)s.send(shorter, sizeof shorter, three);
    }, true);
    unanswered += junk_rounds(c, 30, [&](Session& s) {
        std::vector<std::uint8_t> longer(2 * ctl::kMaxMessage, 0);
        ctl::Header h = header_with(ctl::Op::status);
        std::memcpy(longer.data(), &h, sizeof h);
        (void)s.send(longer.data(), longer.size(), three);
    }, true);
    sent["unknown_op_bad_magic_bad_version_short_long_with_3_fds"] = 170;

    // Hang-ups with a request and its descriptors still in flight.
    for (std::uint32_t i = 0; i < 50; ++i) {
        Session s = Session::open(c.socket);
        if (attach(s, 1, 64, nullptr) != ctl::Status::ok) throw SetupError("attach refused");
        ctl::ClaimRequest req;
        (void)s.send(&req, sizeof req, proof);
        ctl::Header h = header_with(static_cast<ctl::Op>(200));
        (void)s.send(&h, sizeof h, three);
        s.hang_up();
        if (i % 10 == 9) (void)daemon_status(pacer);
    }
    sent["hang_up_with_fds_in_flight"] = 50;

    // Claims that end in a hang-up, not a release: the daemon must close each proof, so
    // that the kernel frees the port for the next round.
    double worst_rebind = 0;
    for (std::uint32_t i = 0; i < 20; ++i) {
        const auto t0 = Clock::now();
        Bound b;
        const bool free = wait_until([&] {
            b = bound_socket(SOCK_DGRAM, c.server, port);
            return b.err == 0;
        }, 2000, 5);
        r.expect(free, "the port of a claim whose session hung up stayed bound: " + b.refused);
        if (!free) break;
        worst_rebind = std::max(worst_rebind, ms_since(t0));
        Session s = Session::open(c.socket);
        if (attach(s, 1, 64, nullptr) != ctl::Status::ok) throw SetupError("attach refused");
        must_claim(s, b.fd.get());
    }
    sent["claims_ended_by_hang_up"] = 20;
    r["sent"] = sent;
    r["worst_rebind_ms"] = worst_rebind;
    r.expect(unanswered == 0, "a malformed message got neither a reply nor a hang-up within 1 s");

    pacer.hang_up();
    ctl::StatusReply after{};
    const bool settled = wait_until([&] {
        after = daemon_status(c);
        return after.sessions <= before.sessions;
    }, 5000, 50);
    r.expect(settled, "the daemon still counts " + std::to_string(after.sessions) + " sessions, " +
                          std::to_string(before.sessions) + " before");
    r["sessions"] = {before.sessions, after.sessions};
    r["open_descriptors"] = {before.open_descriptors, after.open_descriptors};
    r["bad_requests"] = {before.bad_requests, after.bad_requests};
    r["descriptors_exhausted"] = after.descriptors_exhausted;
    if (before.open_descriptors) {
        r.expect(after.open_descriptors <= before.open_descriptors + 2, "the daemon's own descriptor count grew");
    }
    return c.finish(r);
}

struct Attempts {
    std::uint32_t ok = 0;
    ctl::Status refusal = ctl::Status::ok;  // ok: never refused
    std::uint64_t region_bytes = 0;
};

// Attaches ports of one geometry, each on its own session (kept in `keep`), until the
// daemon refuses one or `max` succeeded.
Attempts attach_until_refused(const Ctx& c, std::uint32_t pairs, std::uint32_t slots, std::uint32_t max, std::vector<Session>& keep) {
    Attempts a;
    while (a.ok < max) {
        Session s = Session::open(c.socket);
        PortFds f;
        const ctl::Status st = attach(s, pairs, slots, &f, 20000);  // the daemon populates the region
        if (st != ctl::Status::ok) {
            a.refusal = st;
            break;
        }
        struct stat sb{};
        if (::fstat(f.memfd.get(), &sb) == 0) a.region_bytes = static_cast<std::uint64_t>(sb.st_size);
        keep.push_back(std::move(s));
        ++a.ok;
    }
    return a;
}

// The region size of a geometry, as ring/abi.hpp lays it out.
std::uint64_t region_bytes(std::uint32_t pairs, std::uint32_t slots) {
    auto round_up = [](std::uint64_t v, std::uint64_t to) { return (v + to - 1) / to * to; };
    const std::uint64_t rings = 2 * std::uint64_t{pairs};
    const std::uint64_t stride = round_up(sizeof(ring::RingControl) + std::uint64_t{slots} * sizeof(ring::Slot), ring::kCacheLine);
    const std::uint64_t buffers = round_up(sizeof(ring::RegionHeader) + rings * stride, 4096);
    return buffers + rings * slots * ring::kBufferSize;
}

json attempts_json(const Attempts& a, std::uint32_t pairs, std::uint32_t slots, std::uint32_t expected) {
    return {{"ring_pairs", pairs}, {"slots_per_ring", slots}, {"region_mib", static_cast<double>(region_bytes(pairs, slots)) / (1 << 20)},
            {"attached", a.ok}, {"expected", expected}, {"refusal", status_name(a.refusal)}};
}

int attack_memory(const Ctx& c, std::uint32_t budget_mib, std::uint32_t max_ports) {
    Report r("memory");
    std::vector<Session> keep;
    const std::uint64_t budget = std::uint64_t{budget_mib} << 20;
    std::uint64_t used = 0;
    json groups = json::array();
    // The largest geometry first, then one just under an eighth of a GiB.
    const std::pair<std::uint32_t, std::uint32_t> geometries[] = {{8, ring::kMaxSlotsPerRing}, {2, 16000}};
    for (const auto& [pairs, slots] : geometries) {
        const std::uint64_t size = region_bytes(pairs, slots);
        const auto by_memory = static_cast<std::uint32_t>((budget - used) / size);
        const auto held = static_cast<std::uint32_t>(keep.size());
        const std::uint32_t expected = std::min(by_memory, max_ports > held ? max_ports - held : 0);
        const Attempts a = attach_until_refused(c, pairs, slots, expected + 4, keep);
        groups.push_back(attempts_json(a, pairs, slots, expected));
        r.expect(a.ok == expected && a.refusal == ctl::Status::limit_reached,
                 std::to_string(a.ok) + " ports of " + std::to_string(size >> 20) + " MiB attached (expected " + std::to_string(expected) +
                     "), then " + status_name(a.refusal) + " (expected limit_reached)");
        used += a.ok * size;
    }
    r["budget_mib"] = budget_mib;
    r["groups"] = groups;
    r["held_mib"] = used >> 20;
    std::cerr << "ms-attack: memory: holding " << keep.size() << " ports" << std::endl;
    return c.finish(r);
}

int attack_port_limit(const Ctx& c, std::uint32_t expected) {
    Report r("port-limit");
    std::vector<Session> keep;
    const Attempts a = attach_until_refused(c, 1, 64, expected + 4, keep);
    r["attempts"] = attempts_json(a, 1, 64, expected);
    r.expect(a.ok == expected && a.refusal == ctl::Status::limit_reached,
             std::to_string(a.ok) + " small ports attached (expected " + std::to_string(expected) + "), then " + status_name(a.refusal));
    std::cerr << "ms-attack: port-limit: holding " << keep.size() << " ports" << std::endl;
    return c.finish(r);
}

int attack_claim_limit(const Ctx& c, std::uint16_t port, std::uint32_t expected) {
    Report r("claim-limit");
    auto p = attach_port(c, 1, 64);
    std::uint32_t ok = 0;
    ctl::Status refusal = ctl::Status::ok;
    for (std::uint32_t i = 0; i < expected + 4; ++i) {
        Fd proof = must_bind(SOCK_DGRAM, c.server, static_cast<std::uint16_t>(port + i));
        refusal = claim(p->session, proof.get());
        if (refusal != ctl::Status::ok) break;
        ++ok;
    }
    r["claimed"] = ok;
    r["refusal"] = status_name(refusal);
    r.expect(ok == expected && refusal == ctl::Status::limit_reached,
             std::to_string(ok) + " claims on one session (expected " + std::to_string(expected) + "), then " + status_name(refusal));
    // The limit is per session: another session of the same user may still claim.
    auto q = attach_port(c, 1, 64);
    const ctl::Status other = claim(q->session, must_bind(SOCK_DGRAM, c.server, static_cast<std::uint16_t>(port + expected + 10)).get());
    r["other_session_claim"] = status_name(other);
    r.expect(other == ctl::Status::ok, "a claim on another session was refused: " + status_name(other));
    std::cerr << "ms-attack: claim-limit: holding " << ok + 1 << " claims" << std::endl;
    return c.finish(r);
}

// A root (or any) client's plain attach, claim and release, each answered within 1 s.
int probe(const Ctx& c, std::uint16_t port) {
    Report r("probe");
    try {
        if (port) {
            r["worst_reply_ms"] = control_round(c, port, kReplyMs);
        } else {
            Session s = Session::open(c.socket);
            const ctl::Status st = attach(s, 1, 64, nullptr, kReplyMs);
            r["attach"] = status_name(st);
            r.expect(st == ctl::Status::ok, "attach refused: " + status_name(st));
        }
    } catch (const Misbehaved& e) {
        r.expect(false, e.what());
    }
    r["uid"] = ::getuid();
    return c.finish(r);
}

// ---------------------------------------------------------------- 8. flood

int attack_flood(const Ctx& c, std::uint16_t port, const wire::IpAddr& peer, const wire::MacAddr& peer_mac, double seconds) {
    Report r("flood");
    auto p = attach_port(c, 1, 1024);
    must_claim(p->session, must_bind(SOCK_DGRAM, c.server, port).get());
    const auto frame = udp_frame({nic_mac(p->session), peer_mac, c.server, peer, port, 9});
    const auto len = static_cast<std::uint16_t>(frame.size());
    TxRing& tx = p->tx[0];
    c.signals->arm();
    std::cerr << "ms-attack: flooding " << peer.to_string() << ":9 from " << c.server.to_string() << ":" << port << std::endl;
    std::uint64_t published = 0;
    const auto t0 = Clock::now();
    const auto end = t0 + std::chrono::duration<double>(seconds);
    while (Clock::now() < end && !c.signals->stopping()) {
        const std::uint32_t n = tx.space();
        if (n == 0) {
            tx.wait_for_room(p->fds.to_app[0].get(), 5);
            continue;
        }
        for (std::uint32_t k = 0; k < n; ++k) tx.stage(k, frame, len);
        tx.publish(n);
        published += n;
    }
    const double elapsed = ms_since(t0) / 1000;
    const ctl::PortEntry e = own_entry(*p);
    r["published"] = published;
    r["seconds"] = elapsed;
    r["frames_per_second"] = static_cast<double>(published) / elapsed;
    r["tx_frames"] = e.tx_frames;
    r["drops"] = total_drops(e);
    r.expect(!e.failed, "the flooding port failed");
    return c.finish(r);
}

// ---------------------------------------------------------------- 9. wildcard

struct WildcardCounts {
    std::uint64_t port_local = 0;  // unicast to the interface's address: the claim's own
    std::uint64_t port_other = 0;  // anything else the port received: the attack worked
    std::uint64_t kernel = 0;      // what the kernel delivered to our copy of the proof
    std::set<std::string> other_destinations;
    std::set<std::string> kernel_destinations;
};

void count_port_frames(Port& p, const wire::IpAddr& server, WildcardCounts& w) {
    RxRing& rx = p.rx[0];
    const std::uint32_t n = rx.available();
    for (std::uint32_t k = 0; k < n; ++k) {
        const auto dst = ipv4_destination(rx.frame(k));
        if (dst && *dst == server) {
            ++w.port_local;
        } else {
            ++w.port_other;
            w.other_destinations.insert(dst ? dst->to_string() : "not IPv4");
        }
    }
    rx.release(n);
}

void count_kernel_datagrams(int proof, WildcardCounts& w) {
    for (;;) {
        std::uint8_t buf[2048];
        iovec iov{buf, sizeof buf};
        alignas(cmsghdr) std::uint8_t control[CMSG_SPACE(sizeof(in_pktinfo))] = {};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        if (::recvmsg(proof, &msg, MSG_DONTWAIT) < 0) return;
        ++w.kernel;
        for (cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
            if (cm->cmsg_level != IPPROTO_IP || cm->cmsg_type != IP_PKTINFO) continue;
            in_pktinfo info{};
            std::memcpy(&info, CMSG_DATA(cm), sizeof info);
            w.kernel_destinations.insert(wire::IpAddr::load_v4(reinterpret_cast<const std::uint8_t*>(&info.ipi_addr)).to_string());
        }
    }
}

int attack_wildcard(const Ctx& c, std::uint16_t port, double seconds) {
    Report r("wildcard");
    auto p = attach_port(c, 1, 256);
    Fd proof = must_bind(SOCK_DGRAM, wire::IpAddr::any(wire::IpFamily::v4), port);
    must_claim(p->session, proof.get());
    set_int_option(proof.get(), IPPROTO_IP, IP_PKTINFO, 1, "IP_PKTINFO");
    p->rx[0].want_kicks();
    c.signals->arm();
    std::cerr << "ms-attack: wildcard: claimed udp 0.0.0.0:" << port << ", counting" << std::endl;
    WildcardCounts w;
    const auto end = Clock::now() + std::chrono::duration<double>(seconds);
    while (Clock::now() < end && !c.signals->stopping()) {
        pollfd fds[] = {{p->fds.to_app[0].get(), POLLIN, 0}, {proof.get(), POLLIN, 0}, {c.signals->fd(), POLLIN, 0}};
        (void)::poll(fds, 3, 50);
        if (fds[0].revents) drain(p->fds.to_app[0].get());
        count_port_frames(*p, c.server, w);
        count_kernel_datagrams(proof.get(), w);
    }
    r["port_received_local_unicast"] = w.port_local;
    r["port_received_other"] = w.port_other;
    r["port_other_destinations"] = w.other_destinations;
    r["kernel_received"] = w.kernel;
    r["kernel_destinations"] = w.kernel_destinations;
    r.expect(w.port_other == 0, "the wildcard claim received " + std::to_string(w.port_other) +
                                    " frames that were not unicast to the interface's address");
    return c.finish(r);
}

// ---------------------------------------------------------------- 10. reuseaddr

// Binds a kernel socket with SO_REUSEADDR (and SO_REUSEPORT) on a claimed tuple: the
// kernel must refuse it while the claim holds.
json kernel_bind(int type, const wire::IpAddr& addr, std::uint16_t port, Report& r) {
    SockOpts o;
    o.reuseaddr = true;
    o.reuseport = true;
    Bound b = bound_socket(type, addr, port, o);
    const bool listening = b.err == 0 && type == SOCK_STREAM && ::listen(b.fd.get(), 1) == 0;
    const std::string what = std::string(type == SOCK_STREAM ? "TCP " : "UDP ") + addr.to_string() + ":" + std::to_string(port);
    r.expect(b.err == EADDRINUSE, "a kernel socket with SO_REUSEADDR|SO_REUSEPORT " + (b.err ? "got " + b.refused : std::string("bound")) +
                                      (listening ? " and listens" : "") + " on the claimed " + what);
    return {{"tuple", what}, {"kernel", b.err ? b.refused : std::string("bound")}};
}

int attack_reuseaddr(const Ctx& c, std::uint16_t port, bool wait_signal) {
    Report r("reuseaddr");
    auto p = attach_port(c, 1, 64);
    json tries = json::array();
    const std::pair<int, const char*> kinds[] = {{SOCK_STREAM, "TCP"}, {SOCK_DGRAM, "UDP"}};
    std::uint16_t next = port;
    for (const auto& [type, name] : kinds) {
        for (const bool reuseport : {false, true}) {
            SockOpts o;
            (reuseport ? o.reuseport : o.reuseaddr) = true;
            Bound b = bound_socket(type, c.server, next++, o);
            tries.push_back(expect_refusal(p->session, b, ctl::Status::reusable_socket,
                                           std::string(name) + (reuseport ? " with SO_REUSEPORT" : " with SO_REUSEADDR"), r));
        }
    }
    r["tries"] = tries;
    // Clean claims; we keep our copies of the proofs.
    const auto tcp_port = static_cast<std::uint16_t>(port + 10);
    const auto udp_port = static_cast<std::uint16_t>(port + 11);
    Fd tcp_proof = must_bind(SOCK_STREAM, c.server, tcp_port);
    Fd udp_proof = must_bind(SOCK_DGRAM, c.server, udp_port);
    ctl::Tuple tcp_t{}, udp_t{};
    must_claim(p->session, tcp_proof.get(), &tcp_t);
    must_claim(p->session, udp_proof.get(), &udp_t);
    r["kernel_binds"] = {kernel_bind(SOCK_STREAM, c.server, tcp_port, r), kernel_bind(SOCK_DGRAM, c.server, udp_port, r)};
    c.signals->arm();
    std::cerr << "ms-attack: reuseaddr: holding tcp " << c.server.to_string() << ":" << tcp_port << " and udp "
              << c.server.to_string() << ":" << udp_port << (wait_signal ? ", waiting for SIGUSR1" : "") << std::endl;
    if (wait_signal) r.expect(c.signals->wait_usr1(30000), "no SIGUSR1 within 30 s");
    // Now change the proofs after the fact: the daemon's audit must revoke both claims.
    const std::uint64_t revoked_before = daemon_status(p->session).claims_revoked;
    set_int_option(tcp_proof.get(), SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR on the kept proof");
    set_int_option(udp_proof.get(), SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT on the kept proof");
    const auto t0 = Clock::now();
    const bool revoked = wait_until([&] {
        for (const auto& e : list<ctl::ClaimEntry>(p->session, ctl::Op::list_claims)) {
            if (same_tuple(e.tuple, tcp_t) || same_tuple(e.tuple, udp_t)) return false;
        }
        return true;
    }, 5000, 100);
    const std::uint64_t revoked_after = daemon_status(p->session).claims_revoked;
    r["revoked_after_ms"] = revoked ? json(ms_since(t0)) : json("not within 5 s");
    r["claims_revoked"] = {revoked_before, revoked_after};
    r.expect(revoked, "claims whose proofs took SO_REUSEADDR/SO_REUSEPORT afterwards still hold after 5 s");
    r.expect(revoked_after >= revoked_before + 2, "control.claims_revoked did not grow by 2");
    return c.finish(r);
}

// ---------------------------------------------------------------- 11. vlan

int attack_vlan(const Ctx& c, std::uint16_t port, const wire::IpAddr& peer, const wire::MacAddr& peer_mac) {
    Report r("vlan");
    auto p = attach_port(c, 1, 64);
    must_claim(p->session, must_bind(SOCK_DGRAM, c.server, port).get());
    const auto valid = udp_frame({nic_mac(p->session), peer_mac, c.server, peer, port, 9});
    const std::vector<std::vector<std::uint8_t>> frames = {
        valid, with_tag(valid, wire::ethertype::vlan, 100), with_tag(valid, wire::ethertype::vlan, 0),  // 802.1Q, priority tag
        with_tag(valid, 0x88a8, 100)};                                                                // 802.1ad
    TxRing& tx = p->tx[0];
    for (std::uint32_t k = 0; k < frames.size(); ++k) tx.stage(k, frames[k], static_cast<std::uint16_t>(frames[k].size()));
    tx.publish(static_cast<std::uint32_t>(frames.size()), true);
    ctl::PortEntry e{};
    (void)wait_until([&] {
        e = own_entry(*p);
        return e.tx_frames + total_drops(e) >= frames.size();
    }, 2000);
    const std::uint64_t tagged = drops(e, sw::DropReason::vlan_tagged);
    r["tx_frames"] = e.tx_frames;
    r["vlan_tagged"] = tagged;
    r["drops"] = total_drops(e);
    r.expect(e.tx_frames == 1, std::to_string(e.tx_frames) + " frames left, expected only the untagged one");
    r.expect(tagged >= 2, "the 802.1Q-tagged frames were not counted vlan_tagged");
    r.expect(total_drops(e) == frames.size() - 1, "not every tagged frame was dropped");
    return c.finish(r);
}

// ---------------------------------------------------------------- 18. super-segments

// A TCP super-segment from the server's `sport` to peer:9, as UTCP writes one.
std::vector<std::uint8_t> tcp_super(const wire::MacAddr& mac, const wire::MacAddr& peer_mac, const wire::IpAddr& src,
                                    const wire::IpAddr& peer, std::uint16_t sport, std::size_t payload) {
    const wire::TcpRepr tcp{.src_port = sport, .dst_port = 9, .seq = 1, .ack = 1, .flags = wire::tcpflag::ack, .window = 512};
    std::vector<std::uint8_t> f(wire::kEthernetHeaderLen + wire::kIpv4MinHeaderLen + tcp.header_len());
    const std::size_t n = wire::emit_ipv4_tcp_super_header(
        f, {.dst = peer_mac, .src = mac}, {.src = src, .dst = peer, .protocol = wire::ipproto::tcp}, tcp.header_len(),
        tcp.header_len() + payload, [&](wire::MutBytes l4) { tcp.emit(l4); });
    if (n != f.size()) throw SetupError("the frame builder refused a super-segment header");
    for (std::size_t i = 0; i < payload; ++i) f.push_back(static_cast<std::uint8_t>(i));
    return f;
}

// A fresh port that claims TCP `port` and publishes one chain `build` stages; the switch
// must fail the port with `want`, and nothing else.
struct WantedFault {
    ring::RingFault fault;
    const char* name;  // as msctl shows it (the tool links no ring code)
};

json bad_chain(const Ctx& c, std::uint16_t port, WantedFault want, const std::string& what,
               const std::function<std::uint32_t(Port&, TxRing&)>& build, Report& r) {
    auto p = attach_port(c, 1, 64);
    Fd proof = must_bind(SOCK_STREAM, c.server, port);
    must_claim(p->session, proof.get());
    p->tx[0].publish(build(*p, p->tx[0]), true);
    ctl::PortEntry e{};
    const bool failed = wait_until([&] {
        e = own_entry(*p);
        return e.failed != 0;
    }, 2000);
    const std::uint64_t n = faults(e, want.fault);
    r.expect(failed && n == 1, what + ": the port did not fail with " + want.name);
    const std::uint32_t id = p->fds.id;
    p.reset();
    r.expect(port_gone(c, id), "port " + std::to_string(id) + " outlived its session");
    return {{"chain", what}, {"failed", failed}, {want.name, n}};
}

int attack_super(const Ctx& c, std::uint16_t port, const wire::IpAddr& peer, const wire::MacAddr& peer_mac) {
    Report r("super");
    auto p = attach_port(c, 1, 256);
    Fd proof = must_bind(SOCK_STREAM, c.server, port);
    must_claim(p->session, proof.get());
    const wire::MacAddr mac = nic_mac(p->session);
    TxRing& tx = p->tx[0];
    // One valid super-segment, one from a port we do not claim, one that would make more
    // segments than the bound, and one whose payload we rewrite while the switch reads it.
    const auto valid = tcp_super(mac, peer_mac, c.server, peer, port, 30000);
    const auto spoofed = tcp_super(mac, peer_mac, c.server, peer, static_cast<std::uint16_t>(port + 1), 30000);
    std::uint32_t k = tx.stage_chain(0, valid, 1448);
    k += tx.stage_chain(k, spoofed, 1448);
    k += tx.stage_chain(k, valid, 300);  // 100 segments
    const std::uint32_t rewritten = tx.slot(k + 1).offset;  // a payload slot of the last chain
    k += tx.stage_chain(k, valid, 1448);
    tx.publish(k, true);
    for (int round = 0; round < 2000; ++round) {  // only our own bytes can change
        std::memset(p->region->bytes(rewritten, ring::kBufferSize), round & 0xff, 64);
    }
    ctl::PortEntry e{};
    (void)wait_until([&] {
        e = own_entry(*p);
        return e.tx_frames + total_drops(e) >= 4;
    }, 2000);
    r["sent"] = {{"tx_frames", e.tx_frames}, {"tx_super", e.tx_super}, {"src_not_claimed", drops(e, sw::DropReason::src_not_claimed)},
                 {"bad_segment", drops(e, sw::DropReason::bad_segment)}, {"failed", e.failed != 0}};
    r.expect(e.tx_super == 2 && e.tx_frames == 2, "expected the valid and the rewritten super-segment to leave");
    r.expect(drops(e, sw::DropReason::src_not_claimed) == 1, "the spoofed super-segment was not counted src_not_claimed");
    r.expect(drops(e, sw::DropReason::bad_segment) == 1, "the 100-segment super-segment was not counted bad_segment");
    r.expect(e.failed == 0, "a port that sent well-formed chains failed");

    json chains = json::array();
    chains.push_back(bad_chain(c, static_cast<std::uint16_t>(port + 2), {ring::RingFault::slot_bad_offset, "slot_bad_offset"},
                               "a payload slot outside the region", [&](Port& q, TxRing& t) {
        const std::uint32_t n = t.stage_chain(0, tcp_super(mac, peer_mac, c.server, peer, static_cast<std::uint16_t>(port + 2), 9000), 1448);
        t.slot(2).offset = static_cast<std::uint32_t>(q.region->size());
        return n;
    }, r));
    chains.push_back(bad_chain(c, static_cast<std::uint16_t>(port + 3), {ring::RingFault::slot_bad_offset, "slot_bad_offset"},
                               "a payload slot in the ring metadata", [&](Port&, TxRing& t) {
        const std::uint32_t n = t.stage_chain(0, tcp_super(mac, peer_mac, c.server, peer, static_cast<std::uint16_t>(port + 3), 9000), 1448);
        t.slot(1).offset = 0;
        return n;
    }, r));
    chains.push_back(bad_chain(c, static_cast<std::uint16_t>(port + 4), {ring::RingFault::slot_bad_flags, "slot_bad_flags"},
                               "a chain that does not start with a segment", [&](Port&, TxRing& t) {
        return t.stage_chain(0, tcp_super(mac, peer_mac, c.server, peer, static_cast<std::uint16_t>(port + 4), 9000), 1448, 200,
                             ring::kSlotMore);
    }, r));
    chains.push_back(bad_chain(c, static_cast<std::uint16_t>(port + 5), {ring::RingFault::chain_too_long, "chain_too_long"},
                               "a chain that never ends", [&](Port&, TxRing& t) {
        const auto super = tcp_super(mac, peer_mac, c.server, peer, static_cast<std::uint16_t>(port + 5), 100);
        for (std::uint32_t i = 0; i < 63; ++i) {
            t.stage(i, super, 60);
            t.slot(i).flags = i == 0 ? ring::kSlotSegment | ring::kSlotMore : ring::kSlotMore;
        }
        return 63u;
    }, r));
    r["bad_chains"] = chains;
    return c.finish(r);
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"ms-attack: a hostile MultiStack client for the security tests (tests/netns/security.sh)"};
    app.require_subcommand(1);
    app.fallthrough();
    std::string socket, server_text, peer_text, peer_mac_text, spoof_text = "198.18.0.99", device = "lo";
    bool hold = false, wait_signal = false;
    std::uint16_t port = 0;
    std::uint32_t victim = 0, rounds = 500, requests = 2000, expected = 0, budget_mib = 0, max_ports = 64;
    double seconds = 5;
    app.add_option("--socket", socket, "multistackd's control socket")->required();
    app.add_option("--server", server_text, "the interface's address (IPv4, or IPv6 for freebind)")->required();
    app.add_flag("--hold", hold, "after printing, keep the sessions (ports, claims) until SIGTERM");
    auto sub = [&app](const char* name, const char* what) { return app.add_subcommand(name, what); };
    auto with_port = [&port](CLI::App* s, const char* what) {
        s->add_option("--port", port, what)->required();
        return s;
    };
    auto with_peer = [&](CLI::App* s) {
        s->add_option("--peer", peer_text, "the peer's address, of the server's family")->required();
        s->add_option("--peer-mac", peer_mac_text, "the peer's MAC address")->required();
        return s;
    };
    auto* oversize = with_port(sub("oversize", "tx slots longer than a frame; maximum-size frames port to port"), "first UDP port");
    auto* netns = with_port(sub("netns-proof", "a proof bound in a network namespace of our own"), "TCP/UDP port (22)");
    auto* device_cmd = with_port(sub("bind-to-device", "a proof bound to another device"), "first port");
    device_cmd->add_option("--device", device, "the device to bind to")->capture_default_str();
    auto* freebind = with_peer(with_port(sub("freebind", "proofs of non-local addresses; frames with a spoofed source"), "first port"));
    freebind->add_option("--spoof", spoof_text, "an address of no interface")->capture_default_str();
    auto* capture = sub("capture-other", "capture another user's port; list ports");
    capture->add_option("--victim", victim, "the other user's port id")->required();
    auto* slow = with_port(sub("slow-reader", "requests never read; the control plane must go on serving others"), "UDP port for the control rounds");
    slow->add_option("--requests", requests, "requests sent without reading, at least (then on until dropped)")->capture_default_str();
    auto* linger_cmd = with_port(sub("linger", "release a claim whose proof lingers for an hour on close"), "TCP port (and port+1)");
    auto* junk = with_port(sub("linger-junk", "lingering sockets sent where the daemon only closes them"), "TCP listener port");
    auto* in_use = with_port(sub("in-use", "proofs that are connected or listening"), "first port (five used)");
    auto* fd_leak = with_port(sub("fd-leak", "descriptors on every path that must close them"), "UDP port");
    fd_leak->add_option("--rounds", rounds, "zero-length messages with descriptors")->capture_default_str();
    auto* memory = sub("memory", "the largest ports until the per-user memory budget refuses");
    memory->add_option("--budget-mib", budget_mib, "the daemon's --max-port-memory-per-user")->required();
    memory->add_option("--max-ports", max_ports, "the daemon's --max-ports-per-user")->capture_default_str();
    auto* port_limit = sub("port-limit", "small ports until the per-user port limit refuses");
    port_limit->add_option("--expect", expected, "the daemon's --max-ports-per-user")->required();
    auto* claim_limit = with_port(sub("claim-limit", "claims on one session until the per-session limit refuses"), "first UDP port");
    claim_limit->add_option("--expect", expected, "the daemon's --max-claims-per-session")->required();
    auto* flood = with_peer(with_port(sub("flood", "valid frames as fast as the switch takes them"), "UDP port"));
    flood->add_option("--seconds", seconds, "at most this long (SIGTERM ends it sooner)")->capture_default_str();
    auto* wildcard = with_port(sub("wildcard", "claim 0.0.0.0:PORT and count what the port receives"), "UDP port");
    wildcard->add_option("--seconds", seconds, "at most this long (SIGTERM ends it sooner)")->capture_default_str();
    auto* reuse = with_port(sub("reuseaddr", "proofs with SO_REUSEADDR/SO_REUSEPORT, before and after the claim"), "first port");
    reuse->add_flag("--wait-signal", wait_signal, "wait for SIGUSR1 before changing the kept proofs");
    auto* vlan = with_peer(with_port(sub("vlan", "802.1Q-tagged frames from a claimed source"), "UDP port"));
    auto* super_cmd = with_peer(with_port(sub("super", "TCP super-segments: spoofed, oversegmented, rewritten in flight, "
                                                       "and slot chains out of bounds, unflagged or endless"),
                                          "first TCP port (and the next five)"));
    auto* probe_cmd = sub("probe", "a plain attach (and claim and release with --port), each answered within 1 s");
    probe_cmd->add_option("--port", port, "UDP port to claim and release");
    CLI11_PARSE(app, argc, argv);

    std::string attack = app.get_subcommands().front()->get_name();
    ::signal(SIGPIPE, SIG_IGN);
    try {
        Signals signals;
        const Ctx c{socket, ip_of(server_text), &signals, hold};
        auto peer = [&] { return ip_of(peer_text); };
        auto peer_mac = [&] {
            wire::MacAddr m;
            if (!wire::parse_mac(peer_mac_text, m)) throw SetupError("not a MAC address: " + peer_mac_text);
            return m;
        };
        if (oversize->parsed()) return attack_oversize(c, port);
        if (netns->parsed()) return attack_netns_proof(c, port);
        if (device_cmd->parsed()) return attack_bind_to_device(c, port, device);
        if (freebind->parsed()) return attack_freebind(c, port, ip_of(spoof_text), peer(), peer_mac());
        if (capture->parsed()) return attack_capture_other(c, victim);
        if (slow->parsed()) return attack_slow_reader(c, port, requests, 20);
        if (linger_cmd->parsed()) return attack_linger(c, port);
        if (junk->parsed()) return attack_linger_junk(c, port);
        if (in_use->parsed()) return attack_in_use(c, port);
        if (fd_leak->parsed()) return attack_fd_leak(c, port, rounds);
        if (memory->parsed()) return attack_memory(c, budget_mib, max_ports);
        if (port_limit->parsed()) return attack_port_limit(c, expected);
        if (claim_limit->parsed()) return attack_claim_limit(c, port, expected);
        if (flood->parsed()) return attack_flood(c, port, peer(), peer_mac(), seconds);
        if (wildcard->parsed()) return attack_wildcard(c, port, seconds);
        if (reuse->parsed()) return attack_reuseaddr(c, port, wait_signal);
        if (vlan->parsed()) return attack_vlan(c, port, peer(), peer_mac());
        if (super_cmd->parsed()) return attack_super(c, port, peer(), peer_mac());
        if (probe_cmd->parsed()) return probe(c, port);
        return kExitUsage;
    } catch (const Misbehaved& e) {
        std::cout << json{{"attack", attack}, {"defended", false}, {"error", e.what()}}.dump() << std::endl;
        return kExitBroken;
    } catch (const std::exception& e) {
        std::cerr << "ms-attack: " << attack << ": " << e.what() << "\n";
        std::cout << json{{"attack", attack}, {"setup_error", e.what()}}.dump() << std::endl;
        return kExitSetup;
    }
}
