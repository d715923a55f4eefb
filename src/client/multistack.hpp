// Contract: libmultistack, the application side of MultiStack (docs/DESIGN.md §3, §6). A
// ControlSession talks to one multistackd over its control socket and owns at most one
// AppPort: shared rings mapped from the daemon's memfd, and an eventfd pair per ring pair.
// Claims are proved with a kernel socket bound to the 3-tuple: the library creates and
// binds it (port 0 picks an ephemeral port from the kernel), or takes a caller's bound
// socket, and hands it to the daemon, which keeps it for the claim's life. Every call
// returns a value or an Error that says what went wrong; nothing throws.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "base/result.hpp"
#include "ctl/claim.hpp"
#include "ctl/protocol.hpp"
#include "ring/app_ring.hpp"
#include "wire/bytes.hpp"

namespace ms::client {

enum class Error {
    switch_not_running,  // no daemon listens on the socket path
    permission_denied,   // the socket file's mode or group, or a privileged port
    address_in_use,      // the kernel or another application holds the 3-tuple
    bad_socket,          // the descriptor is not a bound TCP or UDP socket
    not_attached,
    already_attached,
    not_found,
    switch_full,
    busy,                // a capture of that port runs already
    limit_reached,       // a limit of the daemon: claims per session, ports or memory per user
    no_route,            // no route to the address through the switch's interface
    unreachable,         // the kernel could not resolve the next hop
    protocol,            // the daemon answered something we do not understand
    invalid_option,      // an option names nothing known (a congestion control, say)
    system,              // a system call failed; see `detail`
};

struct Failure {
    Error error;
    std::string detail;
    [[nodiscard]] std::string message() const;
};

using base::Done;

using ctl::Claim;

class AppPort {
public:
    AppPort(std::uint32_t id, ring::Region region, std::vector<ring::EventFd> to_switch, std::vector<ring::EventFd> to_app);

    [[nodiscard]] std::uint32_t id() const { return id_; }
    [[nodiscard]] std::uint32_t ring_pairs() const { return static_cast<std::uint32_t>(tx_.size()); }
    [[nodiscard]] ring::AppTxRing& tx(std::uint32_t pair = 0) { return tx_.at(pair); }
    [[nodiscard]] ring::AppRxRing& rx(std::uint32_t pair = 0) { return rx_.at(pair); }
    // Sleeps until frames arrive on `pair`'s rx ring or `timeout_ms` passes (-1: no limit).
    // Returns immediately if frames are already there. With `also_fd`, it also wakes
    // when that descriptor becomes readable or hangs up, and then returns true (an
    // event loop watches the control socket so, to notice multistackd going away).
    bool wait(std::uint32_t pair, int timeout_ms, int also_fd = -1) {
        return wait_us(pair, timeout_ms < 0 ? -1 : std::int64_t{timeout_ms} * 1000, also_fd);
    }
    // wait() with the timeout in microseconds (-1: no limit): an event loop sleeps until
    // its next timer to the microsecond.
    bool wait_us(std::uint32_t pair, std::int64_t timeout_us, int also_fd = -1);
    // Sleeps until `pair`'s tx ring has room or `timeout_ms` passes.
    void wait_for_room(std::uint32_t pair, int timeout_ms);
    [[nodiscard]] int rx_event_fd(std::uint32_t pair = 0) const { return to_app_.at(pair).fd(); }
    // Wakes the switch for `pair` whether or not it asked (publish() kicks only if asked).
    void kick(std::uint32_t pair = 0) { to_switch_.at(pair).notify(); }
    // The shared memory itself, for applications that manage rings by hand.
    [[nodiscard]] ring::Region& region() { return region_; }

private:
    std::uint32_t id_;
    ring::Region region_;
    std::vector<ring::EventFd> to_switch_;
    std::vector<ring::EventFd> to_app_;
    std::vector<ring::AppTxRing> tx_;
    std::vector<ring::AppRxRing> rx_;
};

// Whether a claim may be shared with other processes of the same user (SO_REUSEPORT).
enum class Sharing : std::uint8_t { exclusive, reuse_port };

// When an application whose multistackd went away tries to attach again: at once, then
// after a back-off that doubles from 1 ms to 4 ms in the outage's first two seconds (an
// upgrade's new daemon is up within tens of milliseconds) and to 100 ms after, until the
// daemon's outage limit has passed.
class ReattachSchedule {
public:
    ReattachSchedule(std::uint64_t now_ms, std::uint32_t limit_ms)
        : since_ms_(now_ms), next_ms_(now_ms), limit_ms_(limit_ms) {}
    [[nodiscard]] bool due(std::uint64_t now_ms) const { return now_ms >= next_ms_; }
    [[nodiscard]] bool expired(std::uint64_t now_ms) const { return now_ms - since_ms_ > limit_ms_; }
    // A try failed at `now_ms`: the next waits longer.
    void failed(std::uint64_t now_ms);
    [[nodiscard]] std::uint64_t next_try_ms() const { return next_ms_; }
    [[nodiscard]] std::uint64_t since_ms() const { return since_ms_; }
    [[nodiscard]] std::uint32_t tries() const { return tries_; }
    [[nodiscard]] std::uint32_t limit_ms() const { return limit_ms_; }

private:
    std::uint64_t since_ms_;
    std::uint64_t next_ms_;
    std::uint64_t backoff_ms_ = 1;
    std::uint32_t limit_ms_;
    std::uint32_t tries_ = 0;
};

class ControlSession {
public:
    static base::Result<ControlSession, Failure> open(const std::string& socket_path);
    ControlSession(ControlSession&& other) noexcept;
    ControlSession& operator=(ControlSession&& other) noexcept;
    ~ControlSession();

    // `data_bytes`: the region's data area (ring/abi.hpp), the application's own memory.
    base::Result<AppPort*, Failure> attach(std::uint32_t ring_pairs = 1, std::uint32_t slots_per_ring = 1024,
                                           std::uint64_t data_bytes = 0);
    // Binds a new kernel socket of `protocol` to (addr, port) and claims it; port 0 takes
    // an ephemeral port. With `sharing` reuse_port the socket has SO_REUSEPORT, so that
    // other processes of the same user may bind and claim the same tuple: the claim is then
    // shared (docs/DESIGN.md §4.2). Returns what was claimed.
    base::Result<Claim, Failure> claim(std::uint8_t protocol, const wire::IpAddr& addr, std::uint16_t port,
                                       Sharing sharing = Sharing::exclusive);
    // Claims what an already bound socket holds; the caller may close its copy after. A
    // socket that another session claimed already (a process's inherited listener) joins
    // that claim, as `role` says (ctl::ClaimRole). The session keeps a copy of the proof
    // until the claim is released, to prove it again after a restart (prove_again()).
    base::Result<Claim, Failure> claim_socket(int bound_fd, ctl::ClaimRole role = ctl::ClaimRole::serving);
    base::Result<Done, Failure> release(const Claim& claim);
    // This port's listener on the claim has closed while its connections run: the switch
    // gives it no new connections of the claim (a shared claim's draining member).
    base::Result<Done, Failure> drain(const Claim& claim);
    // A connection leaves this port (ctl::HandOffRequest): `image_fd` is a memfd of its
    // image (utcp/connection_image.hpp), `library_end` its readiness socket's library end.
    // The parcel number it is reclaimed by (reclaim()).
    base::Result<std::uint64_t, Failure> hand_off(const ctl::HandOffRequest& req, int image_fd, int library_end);
    // Takes up the connection whose descriptor `held_fd` is (ctl::TakeOverRequest): its
    // image and readiness socket's library end, which the caller owns; not_found while
    // none waits.
    struct TakenConnection {
        int image_fd = -1;
        int library_end = -1;
        std::uint64_t image_bytes = 0;
        Claim claim;  // held by this port now, until released
    };
    base::Result<TakenConnection, Failure> take_over(int held_fd);
    // Takes back a connection this session handed off that nobody took (ctl::ReclaimRequest).
    base::Result<TakenConnection, Failure> reclaim(std::uint64_t parcel);
    base::Result<ctl::InfoReply, Failure> info();
    // The MAC to send to for `dst`: its next hop's, from the kernel (docs/DESIGN.md §6). Waits up
    // to about a second while the kernel resolves a missing neighbour.
    base::Result<wire::MacAddr, Failure> resolve(const wire::IpAddr& dst);
    base::Result<ctl::StatusReply, Failure> status();
    // One page of a port's socket table from `first`, or (refresh) a request that the
    // application publish a fresh snapshot.
    base::Result<ctl::SocketsReply, Failure> sockets(std::uint32_t port_id, std::uint32_t first, bool refresh);
    base::Result<std::vector<ctl::PortEntry>, Failure> ports();
    base::Result<std::vector<ctl::ClaimEntry>, Failure> claims();
    // Streams a port's frames to `on_frame` until the daemon ends the capture (count or
    // time reached) or `on_frame` returns false; returns the daemon's totals.
    base::Result<ctl::CaptureEnd, Failure> capture(const ctl::CaptureRequest& request,
                                                   const std::function<bool(const ctl::CaptureFrame&)>& on_frame);

    // After multistackd went away (docs/DESIGN.md §6, "Restarts and upgrades"): a new
    // session to `socket_path` with a port of this one's geometry (its data area of
    // `data_bytes`) and every claim of this session proved again, in the order they were
    // made, with the proofs this session kept (what was draining drains again). The
    // proofs move to the new session; the claims it refused are in `refused`, each with
    // why. Fails, changing nothing, while no daemon answers (switch_not_running).
    base::Result<ControlSession, Failure> reattach(const std::string& socket_path, std::uint64_t data_bytes,
                                                   std::vector<std::pair<Claim, Failure>>& refused);
    // After reattach(): the switch steers these TCP connections of this port's claims to
    // it again (ctl::RestoreFlowsRequest), in batches; how many it recorded.
    base::Result<std::size_t, Failure> restore_flows(std::span<const ctl::RestoredFlow> flows);
    // Whether the daemon at `socket_path` stopped for good (SIGTERM): it removes its socket
    // file before it ends the sessions, where a daemon that crashed or left for a restart
    // leaves it for the next one. Then there is nothing to attach again to.
    [[nodiscard]] static bool stopped_for_good(const std::string& socket_path);
    // Closes this session's copies of its proofs: its claims can no longer be proved again,
    // and the kernel frees their ports once nobody else holds the sockets.
    void forget_proofs() { close_proofs(); }
    // The daemon's outage limit, from the attach reply (0 before one).
    [[nodiscard]] std::uint32_t outage_limit_ms() const { return outage_limit_ms_; }
    // The port, taken out of the session (its memory stays mapped while the caller keeps it).
    std::unique_ptr<AppPort> take_port() { return std::move(port_); }
    // Copies of proofs go at or above this descriptor number (the preload keeps the low
    // numbers for the application's own).
    void set_descriptor_floor(int floor) { descriptor_floor_ = floor; }

    [[nodiscard]] AppPort* port() { return port_.get(); }
    // The control socket, for an event loop that wants to notice the daemon going away
    // (it becomes readable, with end of file, when multistackd exits).
    [[nodiscard]] int fd() const { return fd_; }

private:
    explicit ControlSession(int fd) : fd_(fd) {}
    // Sends `request` and receives its one reply into `reply`, with descriptors.
    base::Result<Done, Failure> call(const void* request, std::size_t request_size, void* reply, std::size_t reply_size,
                                     std::span<const int> send_fds = {}, std::vector<int>* received_fds = nullptr);
    // take_over and reclaim: a request whose reply carries a connection's image and library end.
    base::Result<TakenConnection, Failure> receive_connection(const void* request, std::size_t size,
                                                              std::span<const int> sent);
    template <class Entry>
    base::Result<std::vector<Entry>, Failure> list(ctl::Op op);

    // A claim this session holds, with its own copy of the proof.
    struct KeptProof {
        Claim claim;
        int proof_fd = -1;
        ctl::ClaimRole role = ctl::ClaimRole::serving;
        bool draining = false;
    };
    void keep_proof(const Claim& claim, int bound_fd, ctl::ClaimRole role);
    // After a take-over: a copy of the claim's proof from the daemon, kept (as draining) so
    // that the connection outlives a restart of the daemon; nothing if the daemon gives none.
    void keep_copy_of_proof(const Claim& claim);
    void close_proofs();
    // Proves this session's claims to `next` (reattach()).
    std::vector<std::pair<Claim, Failure>> prove_again(ControlSession& next);

    int fd_ = -1;
    std::uint32_t seq_ = 0;
    int descriptor_floor_ = 0;
    std::uint32_t outage_limit_ms_ = 0;
    std::unique_ptr<AppPort> port_;
    std::vector<KeptProof> proofs_;
};

}  // namespace ms::client
