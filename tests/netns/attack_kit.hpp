// The kit of ms-attack (tests/netns/attack.cpp): what every attack uses. A control
// session speaking the protocol from ctl/protocol.hpp alone, the port's shared memory
// mapped and driven from ring/abi.hpp alone, proof sockets, frames, and the report each
// attack prints. Nothing here goes through libmultistack: the tool does what a
// well-behaved library never would.
#pragma once
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

#include "ctl/protocol.hpp"
#include "ring/abi.hpp"
#include "sw/counters.hpp"  // the order of PortEntry's drops[] and faults[] only
#include "wire/build.hpp"
#include "wire/transport.hpp"

#ifndef SO_BINDTOIFINDEX
#define SO_BINDTOIFINDEX 62
#endif

namespace attack {

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

inline std::string errno_text(int err) { return std::strerror(err); }
[[noreturn]] inline void fail_errno(const std::string& what) { throw SetupError(what + ": " + errno_text(errno)); }

inline double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

// Evaluates `done` every `step_ms` until it holds or `timeout_ms` have passed.
template <class Pred>
inline bool wait_until(Pred done, int timeout_ms, int step_ms = 20) {
    const auto end = Clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
        if (done()) return true;
        if (Clock::now() >= end) return false;
        ::usleep(static_cast<useconds_t>(step_ms) * 1000);
    }
}

inline std::string status_name(ctl::Status s) {
    static constexpr const char* names[] = {"ok",
                                            "bad_request",
                                            "version_mismatch",
                                            "not_attached",
                                            "already_attached",
                                            "address_in_use",
                                            "bad_socket",
                                            "not_found",
                                            "switch_full",
                                            "internal",
                                            "busy",
                                            "no_route",
                                            "unreachable",
                                            "permission_denied",
                                            "limit_reached",
                                            "foreign_namespace",
                                            "bound_to_device",
                                            "address_not_local",
                                            "reusable_socket",
                                            "socket_in_use",
                                            "no_resources",
                                            "tuple_shared"};
    static_assert(static_cast<std::size_t>(ctl::Status::tuple_shared) == std::size(names) - 1, "one name per Status");
    const auto i = static_cast<std::size_t>(static_cast<std::uint32_t>(s));
    return i < std::size(names) ? names[i] : "status_" + std::to_string(static_cast<int>(s));
}

inline std::string op_name(ctl::Op op) {
    static constexpr const char* names[] = {"attach",  "claim",         "release",     "info",
                                            "status",  "list_ports",    "list_claims", "list_end",
                                            "capture", "capture_frame", "capture_end", "resolve"};
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

inline Fd make_eventfd() {
    Fd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!fd) fail_errno("eventfd");
    return fd;
}

inline void kick(int eventfd) {
    const std::uint64_t one = 1;
    (void)!::write(eventfd, &one, sizeof one);
}

inline void drain(int eventfd) {
    std::uint64_t v;
    (void)!::read(eventfd, &v, sizeof v);
}

inline void set_nonblocking(int fd) {
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
inline ctl::Header& header_of(Req& req) {
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

// True once the daemon has closed the session (POLLHUP), within timeout_ms.
inline bool hung_up(const Session& s, int timeout_ms) {
    return wait_until(
        [&] {
            pollfd p{s.fd(), POLLIN, 0};
            return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR)) != 0;
        },
        timeout_ms);
}

template <class Entry>
inline std::vector<Entry> list(Session& s, ctl::Op op, int timeout_ms = kSetupMs) {
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
        if (static_cast<std::size_t>(m->size) != sizeof(Entry))
            throw Misbehaved(op_name(op) + ": an entry of the wrong size");
        out.push_back(m->as<Entry>());
    }
}

inline ctl::StatusReply daemon_status(Session& s, int timeout_ms = kSetupMs) {
    ctl::Header req{.op = ctl::Op::status};
    const Message m = s.call(req, timeout_ms);
    if (m.header().status != ctl::Status::ok || static_cast<std::size_t>(m.size) != sizeof(ctl::StatusReply)) {
        throw Misbehaved("status: " + status_name(m.header().status) + ", " + std::to_string(m.size) + " bytes");
    }
    return m.as<ctl::StatusReply>();
}

inline wire::MacAddr nic_mac(Session& s) {
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
inline ctl::Status attach(Session& s, std::uint32_t pairs, std::uint32_t slots, PortFds* out, int timeout_ms = kSetupMs) {
    ctl::AttachRequest req;
    req.ring_pairs = pairs;
    req.slots_per_ring = slots;
    Message m = s.call(req, timeout_ms);
    const ctl::Status st = m.header().status;
    if (st != ctl::Status::ok) return st;
    const auto rep = m.as<ctl::AttachReply>();
    if (static_cast<std::size_t>(m.size) != sizeof rep || rep.ring_pairs != pairs ||
        m.fds.size() != 1 + 2 * std::size_t{pairs}) {
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

inline ctl::Status claim(Session& s, int proof, ctl::Tuple* claimed = nullptr, int timeout_ms = kSetupMs) {
    ctl::ClaimRequest req;
    const int fds[] = {proof};
    const Message m = s.call(req, timeout_ms, fds);
    if (m.header().status == ctl::Status::ok && claimed) *claimed = m.as<ctl::ClaimReply>().claimed;
    return m.header().status;
}

inline void must_claim(Session& s, int proof, ctl::Tuple* claimed = nullptr) {
    if (const ctl::Status st = claim(s, proof, claimed); st != ctl::Status::ok) {
        throw SetupError("a legitimate claim was refused: " + status_name(st));
    }
}

inline ctl::Status release(Session& s, const ctl::Tuple& t, int timeout_ms = kSetupMs) {
    ctl::ReleaseRequest req;
    req.tuple = t;
    return s.call(req, timeout_ms).header().status;
}

inline bool same_tuple(const ctl::Tuple& a, const ctl::Tuple& b) {
    return a.protocol == b.protocol && a.family == b.family && a.port == b.port && std::memcmp(a.addr, b.addr, 16) == 0;
}

// ---------------------------------------------------------------- the port's shared memory

inline std::uint32_t load(std::uint32_t& field) {
    return std::atomic_ref<std::uint32_t>(field).load(std::memory_order_acquire);
}
inline void store(std::uint32_t& field, std::uint32_t v) {
    std::atomic_ref<std::uint32_t>(field).store(v, std::memory_order_release);
}

// The port's region, mapped from its memfd. The geometry comes from the header the
// daemon wrote, checked against the file's size before anything is addressed.
class Region {
public:
    explicit Region(int memfd) {
        struct stat st {};
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
    // The application's socket table (ring/socket_table.hpp).
    [[nodiscard]] std::uint8_t* socket_table() const { return bytes(h_.sockets_offset, 64); }
    [[nodiscard]] ring::RingControl& control(std::uint32_t ring) const {
        return *reinterpret_cast<ring::RingControl*>(base_ + h_.rings_offset + ring * h_.ring_stride);
    }
    [[nodiscard]] ring::Slot& slot(std::uint32_t ring, std::uint32_t i) const {
        auto* slots = reinterpret_cast<ring::Slot*>(base_ + h_.rings_offset + ring * h_.ring_stride +
                                                    sizeof(ring::RingControl));
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
        return h_.magic == ring::kRegionMagic && h_.abi_version == ring::kAbiVersion && h_.buffer_size == ring::kBufferSize &&
               h_.region_size == size_ && h_.ring_pairs > 0 && h_.slots_per_ring >= 2 &&
               h_.ring_stride >= sizeof(ring::RingControl) + h_.slots_per_ring * sizeof(ring::Slot) &&
               h_.rings_offset + rings * h_.ring_stride <= h_.buffers_offset &&
               h_.buffers_offset + rings * h_.slots_per_ring * ring::kBufferSize <= size_;
    }

    std::uint8_t* base_ = nullptr;
    std::size_t size_ = 0;
    ring::RegionHeader h_{};
};

// Moves a ring's head (and cur with it) `count` slots on; returns the new head.
inline std::uint32_t advance_head(ring::RingControl& ctl, std::uint32_t head, std::uint32_t count, std::uint32_t n) {
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
        : r_(&r),
          ring_(ring::tx_ring(pair)),
          ctl_(&r.control(ring_)),
          n_(r.slots_per_ring()),
          head_(load(ctl_->head)),
          kick_fd_(kick_fd) {}

    [[nodiscard]] std::uint32_t space() const { return ring::ring_distance(head_, load(ctl_->tail), n_); }
    // Copies `frame` into the home buffer of the k-th free slot and points the slot at
    // it, with `len` as its length: a lie when the attack wants one.
    void stage(std::uint32_t k, wire::Bytes frame, std::uint16_t len) const {
        const std::uint32_t i = ring::ring_advance(head_, k, n_);
        const std::uint64_t off = r_->home_buffer(ring_, i);
        wire::copy_bytes(r_->bytes(off, ring::kBufferSize),
                         frame.first(std::min<std::size_t>(frame.size(), ring::kBufferSize)));
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
inline std::unique_ptr<Port> attach_port(const Ctx& c, std::uint32_t pairs, std::uint32_t slots);

inline ctl::PortEntry own_entry(Port& p) {
    for (const auto& e : list<ctl::PortEntry>(p.session, ctl::Op::list_ports)) {
        if (e.port_id == p.fds.id) return e;
    }
    throw Misbehaved("list_ports does not list our own port " + std::to_string(p.fds.id));
}

inline std::uint64_t drops(const ctl::PortEntry& e, sw::DropReason r) { return e.drops[static_cast<std::size_t>(r)]; }
inline std::uint64_t faults(const ctl::PortEntry& e, ring::RingFault f) { return e.faults[static_cast<std::size_t>(f)]; }
inline std::uint64_t total_drops(const ctl::PortEntry& e) {
    std::uint64_t n = 0;
    for (std::uint64_t d : e.drops) n += d;
    return n;
}

// ---------------------------------------------------------------- proof sockets and frames

inline sockaddr_in to_sockaddr(const wire::IpAddr& a, std::uint16_t port) {
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

inline AnyAddr to_any_sockaddr(const wire::IpAddr& a, std::uint16_t port) {
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

inline wire::IpAddr ip_of(const std::string& text) {
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
    bool dual_stack = false;  // an IPv6 socket with IPV6_V6ONLY off (on by default here)
    std::string device;    // SO_BINDTODEVICE
    int bind_ifindex = 0;  // SO_BINDTOIFINDEX
};

struct Bound {
    Fd fd;
    int err = 0;           // the errno of the step the kernel refused; 0: bound
    std::string refused;   // that step and why
};

// A socket of `type` bound to addr:port after the options; the kernel may refuse a step.
inline Bound bound_socket(int type, const wire::IpAddr& addr, std::uint16_t port, const SockOpts& o = {}) {
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
    const int v6only = o.dual_stack ? 0 : 1;
    if (v6) set(IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only, "IPV6_V6ONLY");
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

inline Fd must_bind(int type, const wire::IpAddr& addr, std::uint16_t port, const SockOpts& o = {}) {
    Bound b = bound_socket(type, addr, port, o);
    if (b.err) throw SetupError(b.refused);
    return std::move(b.fd);
}

inline void set_int_option(int fd, int level, int name, int value, const char* what) {
    if (::setsockopt(fd, level, name, &value, sizeof value) != 0) fail_errno(what);
}

inline void connect_to(int fd, const wire::IpAddr& addr, std::uint16_t port) {
    const sockaddr_in sin = to_sockaddr(addr, port);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&sin), sizeof sin) != 0) {
        fail_errno("connect to " + addr.to_string() + ":" + std::to_string(port));
    }
}

// A TCP listener that never accepts nor reads.
inline Fd deaf_listener(const wire::IpAddr& addr, std::uint16_t port) {
    Fd fd = must_bind(SOCK_STREAM, addr, port);
    if (::listen(fd.get(), 16) != 0) fail_errno("listen");
    return fd;
}

// Connects `fd` to a deaf listener and writes until its send buffer is full: a close of
// this socket with SO_LINGER must then wait for the whole linger time.
inline std::size_t connect_and_fill(int fd, const wire::IpAddr& addr, std::uint16_t port) {
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

inline void linger_for_an_hour(int fd) {
    const linger l{1, 3600};
    if (::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l) != 0) fail_errno("SO_LINGER");
}

// A TCP socket whose close blocks for an hour: connected to a deaf listener, its send
// buffer full, SO_LINGER {1, 3600}.
inline Fd lingering_socket(const wire::IpAddr& addr, std::uint16_t listener_port) {
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
inline std::vector<std::uint8_t> udp_frame(const UdpSpec& s) {
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
    const std::size_t n = v6 ? emit(wire::Ipv6Repr{.src = s.src, .dst = s.dst, .next_header = wire::ipproto::udp},
                                    wire::ethertype::ipv6, write_udp)
                             : emit(wire::Ipv4Repr{.src = s.src, .dst = s.dst, .protocol = wire::ipproto::udp},
                                    wire::ethertype::ipv4, write_udp);
    if (n != len) throw SetupError("the frame builder refused a frame");
    return f;
}

// The same frame with a tag (TPID, TCI) after the MAC addresses.
inline std::vector<std::uint8_t> with_tag(const std::vector<std::uint8_t>& f, std::uint16_t tpid, std::uint16_t tci) {
    std::vector<std::uint8_t> out(f.begin(), f.begin() + 12);
    out.resize(16);
    wire::store_be16(&out[12], tpid);
    wire::store_be16(&out[14], tci);
    out.insert(out.end(), f.begin() + 12, f.end());
    return out;
}

// The IPv4 destination of a frame, or nullopt if it is not IPv4.
inline std::optional<wire::IpAddr> ipv4_destination(wire::Bytes f) {
    if (f.size() < 34 || wire::load_be16(f.data() + 12) != wire::ethertype::ipv4) return std::nullopt;
    return wire::IpAddr::load_v4(f.data() + 30);
}

// A TCP super-segment from the server's `sport` to peer:9, as UTCP writes one.
inline std::vector<std::uint8_t> tcp_super(const wire::MacAddr& mac, const wire::MacAddr& peer_mac, const wire::IpAddr& src,
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

inline std::unique_ptr<Port> attach_port(const Ctx& c, std::uint32_t pairs, std::uint32_t slots) {
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

inline ctl::StatusReply daemon_status(const Ctx& c, int timeout_ms = kSetupMs) {
    Session s = Session::open(c.socket);
    return daemon_status(s, timeout_ms);
}

// A status request on a fresh connection; its time in ms, or nullopt if it did not come
// within limit_ms (recorded as a failure).
inline std::optional<double> timed_status(const Ctx& c, int limit_ms, Report& r, const std::string& when) {
    const auto t0 = Clock::now();
    try {
        (void)daemon_status(c, limit_ms);
        return ms_since(t0);
    } catch (const Misbehaved& e) {
        r.expect(false, "status " + when + ": " + e.what());
        return std::nullopt;
    }
}

inline bool port_gone(const Ctx& c, std::uint32_t id) {
    Session s = Session::open(c.socket);
    return wait_until(
        [&] {
            for (const auto& e : list<ctl::PortEntry>(s, ctl::Op::list_ports)) {
                if (e.port_id == id) return false;
            }
            return true;
        },
        3000);
}

// Expects the daemon to refuse the proof `b` with `want`; records what it answered.
inline json expect_refusal(Session& s, Bound& b, ctl::Status want, const std::string& what, Report& r) {
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

}  // namespace attack
