// Contract: multistackd's control plane (DESIGN §3, §6). It listens on a UNIX
// SOCK_SEQPACKET socket, serves each connection as one session, and keeps the claim
// lifecycle whole: a session owns at most one port and the claims made through it, each
// claim holding the kernel socket that proves it. When the session releases a claim,
// hangs up or dies, the claim leaves the registry and the XDP map and its socket is
// closed, so the kernel frees the port at once. Malformed requests get an error reply
// and are counted; they never end the daemon.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "client/protocol.hpp"
#include "nic/af_xdp_nic.hpp"
#include "nic/netlink.hpp"
#include "nic/xdp_program.hpp"
#include "switch/switch.hpp"

namespace ms::daemon {

struct ServerContext {
    sw::Switch& sw;
    nic::XdpProgram& xdp;
    const nic::AfXdpNic& nic;
    const nic::InterfaceInfo& iface;
    nic::Netlink& netlink;
    std::uint32_t max_slots_per_ring = 16384;
};

class ControlServer {
public:
    // Creates the socket at `path` (mode 0660, group `group` if given) and listens.
    // Throws std::runtime_error with the path and the cause.
    ControlServer(ServerContext ctx, std::string path, std::optional<gid_t> group);
    ~ControlServer();
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

    // Serves until a signal arrives on `signal_fd` (a signalfd for SIGTERM and SIGINT).
    void run(int signal_fd);

private:
    struct HeldClaim {
        sw::ClaimKey key;
        int socket_fd;  // the proof, kept open for the claim's life
    };
    struct Capture {
        sw::PortId port;
        std::uint32_t seq;
        std::uint64_t remaining;  // frames still wanted; UINT64_MAX: no limit
        std::optional<std::chrono::steady_clock::time_point> deadline;
        std::uint64_t sent = 0;
        std::uint64_t lost = 0;   // frames the client's socket could not take
    };
    struct Resolve {
        std::uint32_t seq;
        wire::IpAddr next_hop;
        std::chrono::steady_clock::time_point deadline;
    };
    struct Session {
        int fd = -1;
        pid_t pid = 0;
        uid_t uid = 0;
        std::optional<sw::PortId> port;
        std::vector<HeldClaim> claims;
        std::optional<Capture> capture;
        std::optional<Resolve> resolve;  // waiting for the kernel to resolve a neighbour
    };

    void accept_client();
    void serve(Session& s);
    void close_session(int fd);
    void release_claim(Session& s, std::size_t index);

    void on_attach(Session& s, const ctl::AttachRequest& req);
    void on_claim(Session& s, const ctl::Header& req, std::vector<int>& fds);
    void on_release(Session& s, const ctl::ReleaseRequest& req);
    void on_info(Session& s, const ctl::Header& req);
    void on_status(Session& s, const ctl::Header& req);
    void on_list_ports(Session& s, const ctl::Header& req);
    void on_list_claims(Session& s, const ctl::Header& req);
    void on_capture(Session& s, const ctl::CaptureRequest& req);
    void on_resolve(Session& s, const ctl::ResolveRequest& req);
    // Answers a resolve if the neighbour is known or failed; false while it is pending.
    bool try_resolve(Session& s, std::uint32_t seq, const wire::IpAddr& next_hop);
    // Every tick: forward captured frames, end captures that are done, retry resolves.
    void tick();
    void pump_capture(Session& s);
    void end_capture(Session& s);
    void arm_tick_timer();
    void reply_status(Session& s, const ctl::Header& req, ctl::Status status);
    [[nodiscard]] const Session* owner_of(sw::PortId port) const;

    ServerContext ctx_;
    std::string path_;
    int listen_fd_ = -1;
    int epoll_fd_ = -1;
    int tick_timer_fd_ = -1;  // ticks while any capture or resolve is in progress
    std::map<int, Session> sessions_;  // by descriptor
    std::uint64_t bad_requests_ = 0;
};

}  // namespace ms::daemon
