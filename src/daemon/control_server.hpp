// Contract: multistackd's control plane (docs/DESIGN.md §3, §6, §11). It listens on a UNIX
// SOCK_SEQPACKET socket, serves each connection as one session, and keeps the claim
// lifecycle whole: a session owns at most one port and the claims made through it, each
// claim holding the kernel socket that proves it (claim_proof.hpp). When the session
// releases a claim, hangs up or dies, the claim leaves the registry and the XDP map and
// its socket is closed, so the kernel frees the port at once.
//
// Every client is untrusted, and the control plane never blocks on one: sessions are
// non-blocking, replies leave through a bounded Outbox (a client that does not read is
// dropped), and every received descriptor is closed on every path by the Reaper, which
// never blocks (reaper.hpp). What one session and one user may hold is limited (limits.hpp). Only a
// port's owner (same uid) or a privileged peer (peer.hpp) may capture a port or see its
// details. Malformed requests get an error reply and are counted; they never end the
// daemon or another session.
// The class is defined in one file per part: control_server.cpp (the transport: sessions
// accepted, requests read, replies sent, sessions closed, the timers), control_dispatch.cpp
// (request type to handler, version checks), and one file per group of operations:
// control_ports.cpp (attach, detach), control_claims.cpp (claims, their proofs, the
// periodic audit), control_handoffs.cpp (connections that move between processes),
// control_captures.cpp, control_resolve.cpp and control_views.cpp (info,
// status, the lists, applications' socket tables), and control_hand_over.cpp (the state
// given to the next daemon, and taken up from the previous one).
#pragma once

#include <sys/types.h>

#include <sys/epoll.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "ctl/claim.hpp"
#include "ctl/protocol.hpp"
#include "daemon/claim_proof.hpp"
#include "daemon/data_path.hpp"
#include "daemon/limits.hpp"
#include "daemon/outbox.hpp"
#include "daemon/parcels.hpp"
#include "daemon/peer.hpp"
#include "daemon/reaper.hpp"
#include "netlink/netlink.hpp"
#include "sw/switch.hpp"

namespace ms::daemon {

struct ServerContext {
    sw::Switch& sw;
    DataPath& data_path;
    const netlink::InterfaceInfo& iface;
    ProofScope proof_scope;  // the interface's namespace, index and addresses
    Limits limits;
    std::uint32_t max_slots_per_ring = 16384;
    std::uint32_t outage_limit_ms = 10'000;  // how long claims outlive the daemon (AttachReply)
};

// The control plane's own counters (msctl status).
struct ControlCounters {
    std::uint64_t bad_requests = 0;
    std::uint64_t slow_clients = 0;
    std::uint64_t claims_refused = 0;
    std::uint64_t claims_revoked = 0;
    std::uint64_t limits_reached = 0;
    std::uint64_t descriptors_exhausted = 0;
    std::uint64_t handoffs_taken = 0;    // connections a process took up from another (parcels.hpp)
    std::uint64_t handoffs_reclaimed = 0;  // parcels their sender took back (every holder closed them untaken)
    std::uint64_t handoffs_dropped = 0;    // parcels nobody took or reclaimed: expired
};

// Which claims a proof socket may join: one proven by the same socket only (a socket
// passed over SCM_RIGHTS: ctl::ClaimRole::passed), or that too and one of its
// SO_REUSEPORT owner's, else it claims the tuple alone.
enum class JoinRule : std::uint8_t { same_socket_only, or_claim_alone };

// Why run() returned.
struct RunEnd {
    int signal = 0;         // the signal that ended it, or 0
    int hand_over_fd = -1;  // else the session of the daemon that asked to take over
};

// A claim as a hand-over carries it: what its proof proved, and the proof.
struct HandedOverClaim {
    ProvenTuple proven;
    int proof_fd = -1;
    bool joined = false;  // joined another session's claim
};
// A next-hop resolution under way as a hand-over carries it.
struct HandedOverResolve {
    std::uint32_t seq = 0;
    wire::IpAddr next_hop;
};
// A session as a hand-over carries it: its connection, its port and its claims.
struct HandedOverSession {
    int fd = -1;
    std::optional<sw::PortId> port;
    std::vector<HandedOverClaim> claims;
    std::optional<HandedOverResolve> resolve;
};
// The control plane as a hand-over carries it to the next daemon (docs/DESIGN.md §6,
// "Hand-over"). The descriptors stay the giver's until it exits.
struct ControlState {
    int listen_fd = -1;
    ControlCounters counters;
    std::vector<HandedOverSession> sessions;
};

// Why a ControlServer could not open.
enum class ServerOpenError {
    limits_do_not_fit,  // the limits given do not fit in what the daemon can hold (fit_limits)
    path_too_long,      // the socket path does not fit in a sockaddr_un
    socket,             // no socket, or it would not bind or listen
    socket_file,        // the socket file could not be given to the group, or was replaced
    event_loop,         // no epoll instance or timer
    reaper,             // the Reaper's thread would not start
};
struct ServerOpenFailure {
    ServerOpenError error;
    std::string message;  // the path, what failed and why, for the operator
};

class ControlServer {
public:
    // Creates the socket at `path` (mode 0660, group `group` if given) and listens; or
    // says why it cannot (nothing is left open then).
    [[nodiscard]] static base::Result<std::unique_ptr<ControlServer>, ServerOpenFailure> open(ServerContext ctx,
                                                                                              std::string path,
                                                                                              std::optional<gid_t> group);
    // Takes up the control plane a previous daemon handed over, at `path` (whose socket
    // file is the handed-over listening socket's): the sessions go on where they were,
    // their ports and claims as the switch now holds them (the caller restored the claims
    // into the registry). The descriptors are the server's from now on.
    [[nodiscard]] static base::Result<std::unique_ptr<ControlServer>, ServerOpenFailure> adopt(ServerContext ctx,
                                                                                               std::string path,
                                                                                               ControlState state);
    ~ControlServer();
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

    // Serves until a signal arrives on `signal_fd` (a signalfd), or a daemon asks to take
    // over (Op::hand_over); says which.
    RunEnd run(int signal_fd);
    // The control plane for the daemon on session `requester` that takes over: captures
    // end, sessions that cannot take their replies now are closed, and nothing is served
    // until hand_over_refused() or the exit. Busy while connections wait in hand-off
    // between processes (parcels.hpp).
    [[nodiscard]] base::Result<ControlState, ctl::Status> hand_over_state(int requester);
    // The daemon that asked did not take over: its session ends and serving goes on.
    void hand_over_refused(int requester);
    // Serves what is ready within `timeout_ms` (-1: wait); false if `signal_fd` fired.
    bool run_once(int timeout_ms, int signal_fd = -1);
    [[nodiscard]] const ControlCounters& counters() const { return counters_; }
    // The limits in force: those given, fitted to what the daemon can hold.
    [[nodiscard]] const Limits& limits() const { return ctx_.limits; }
    [[nodiscard]] std::size_t session_count() const { return sessions_.size(); }

private:
    ControlServer(ServerContext ctx, std::string path, Reaper reaper);
    // The listening socket, its file, the epoll set and the timers.
    base::Result<base::Done, ServerOpenFailure> open_socket(std::optional<gid_t> group);
    base::Result<base::Done, ServerOpenFailure> open_event_loop();

    struct HeldClaim {
        ProvenTuple proven;  // the tuple, a dual-stack proof's IPv4 wildcard, the socket's cookie
        int socket_fd;       // the proof, kept open for the claim's life
        bool joined = false;  // joined another session's claim (charged as a shared claim)
    };
    // How a claim was held: alone, or by joining the group of another session's claim.
    enum class Holding { alone, joined };
    struct HeldTuple {
        ProvenTuple proven;
        Holding holding = Holding::alone;
    };
    // One port's frames streamed to the session that asked (msctl capture).
    struct CaptureStream {
        sw::Switch::CaptureTicket ticket;
        std::uint32_t seq;
        std::uint64_t remaining;  // frames still wanted; UINT64_MAX: no limit
        std::optional<std::chrono::steady_clock::time_point> deadline;
        std::uint64_t sent = 0;
        std::uint64_t lost = 0;   // frames the client's socket could not take
    };
    // A next-hop resolution the kernel has not finished: answered on a later tick.
    struct PendingResolve {
        std::uint32_t seq;
        wire::IpAddr next_hop;
        std::chrono::steady_clock::time_point deadline;
    };
    // One client's connection to the control socket (an application or msctl): at most
    // one port, the claims made through it, and what it costs its user.
    struct ClientSession {
        ClientSession(int socket, Peer who, std::size_t outbox_bytes) : fd(socket), peer(who), out(socket, outbox_bytes) {}
        int fd;
        Peer peer;
        Outbox out;
        std::uint32_t interest = EPOLLIN;  // the epoll events armed (hang-ups are reported always)
        bool paused = false;            // not read while the Reaper holds too many of its user's descriptors
        bool doomed = false;            // to be closed once the current event is handled
        std::optional<sw::PortId> port;
        std::uint64_t port_bytes = 0;   // shared memory of the port, counted against the user
        std::uint32_t port_fds = 0;     // the port's descriptors, counted against the user
        std::size_t outbox_charged = 0;  // unread reply bytes counted against the user
        std::vector<HeldClaim> claims;
        std::optional<CaptureStream> capture;
        std::optional<PendingResolve> resolve;  // waiting for the kernel to resolve a neighbour
    };

    void handle_event(int fd, std::uint32_t events);
    // Adds `fd` to the epoll set for EPOLLIN.
    void watch_readable(int fd);
    void accept_client();
    void refuse_for_lack_of_descriptors();
    void serve(ClientSession& s);
    // Checks a request's header and version, then routes it; answers what it refuses.
    void dispatch(ClientSession& s, const std::uint8_t* message, std::size_t size, std::vector<int>& fds);
    // Hands the request to its handler; false if its type is unknown or its size wrong.
    bool route(ClientSession& s, const ctl::Header& h, std::span<const std::uint8_t> message, std::vector<int>& fds);
    void close_session(int fd);
    void close_doomed_sessions();
    // Releases `s`'s claim at `index`: out of the registry and the XDP map, its proof closed.
    void release_claim(ClientSession& s, std::size_t index);
    // The session's list of claims, with held_claims_ and the user's charge kept in step.
    void keep_claim(ClientSession& s, const HeldTuple& held, int proof_fd);
    void forget_claim(ClientSession& s, std::vector<HeldClaim>::iterator claim);
    // Charges one claim to `s` and its user: Done, or the limit that refuses it.
    base::Result<base::Done, LimitHit> charge_claim(const ClientSession& s);
    // Proves the claim that `proof_fd` makes and holds it, with its twin, for `s`'s port (or
    // joins the group of the session that holds it with the same proof socket): the tuple
    // proven, or the status that refuses it (nothing held then).
    base::Result<HeldTuple, ctl::Status> prove_and_hold(ClientSession& s, int proof_fd, sw::MemberRole role, JoinRule rule);
    // `key` into the registry for `s`'s port and into the XDP map: Done, or address_in_use
    // or no_resources (nothing held then). unhold() undoes it.
    base::Result<base::Done, ctl::Status> hold(ClientSession& s, const sw::ClaimKey& key, sw::MemberRole role);
    void unhold(ClientSession& s, const sw::ClaimKey& key);
    // Adds `s`'s port to the claim (and its twin) that another session holds with the same
    // proof socket: Done, or the status that refuses it (address_in_use if no session
    // holds it so).
    base::Result<base::Done, ctl::Status> join_holder(ClientSession& s, const ProvenTuple& proven, sw::MemberRole role,
                                                      JoinRule rule);
    // Brings the user's count of `s`'s unread replies up to date; dooms `s` if its user
    // is over its budget.
    void charge_outbox(ClientSession& s);
    // Sends one reply; a client that cannot take it is doomed.
    void send_reply(ClientSession& s, const void* message, std::size_t size, std::span<const int> fds = {});
    template <class Msg>
    void reply(ClientSession& s, const Msg& msg, std::span<const int> fds = {}) {
        send_reply(s, &msg, sizeof msg, fds);
    }
    void reply_status(ClientSession& s, const ctl::Header& req, ctl::Status status);
    // Arms EPOLLIN unless paused, and EPOLLOUT while replies wait.
    void update_interest(ClientSession& s);
    // Stops reading `s` while its user's descriptors wait for the Reaper; resumes it later.
    void pause(ClientSession& s);
    void resume_paused_sessions();

    void on_attach(ClientSession& s, const ctl::AttachRequest& req);
    // The port memory's layout for the requested geometry; nothing if the daemon does not
    // allow it (bad_request).
    [[nodiscard]] std::optional<ring::Layout> port_layout(const ctl::AttachRequest& req) const;
    // A new port of the switch: its id, or switch_full or no_resources.
    base::Result<sw::PortId, ctl::Status> attach_to_switch(const ctl::AttachRequest& req);
    // Sends the port's memory and eventfds to `s`.
    void reply_attached(ClientSession& s, const ctl::AttachRequest& req, sw::PortId id);
    // Detaches `s`'s port, if any, and gives its charge back to the user.
    void detach_port(ClientSession& s);
    void on_claim(ClientSession& s, const ctl::ClaimRequest& req, std::vector<int>& fds);
    void on_release(ClientSession& s, const ctl::ReleaseRequest& req);
    // The session's listener on a claim closed while its connections run: its port gets
    // no new connections of the claim (a group's draining member).
    void on_drain(ClientSession& s, const ctl::DrainRequest& req);
    // A connection leaves `s`'s port (ctl::HandOffRequest; parcels.hpp).
    void on_hand_off(ClientSession& s, const ctl::HandOffRequest& req, std::vector<int>& fds);
    // `s`'s port takes up the connection whose descriptor it sends: it joins the claim as a
    // draining member, and the switch steers the connection to it.
    void on_take_over(ClientSession& s, const ctl::TakeOverRequest& req, std::vector<int>& fds);
    // `s`'s port attached again after an outage: the switch steers the connections it
    // names, within its own claims, to it again (ctl::RestoreFlowsRequest).
    void on_restore_flows(ClientSession& s, const ctl::RestoreFlowsRequest& req);
    // A copy of the proof of a claim `s` holds, for its owner (ctl::ProofCopyRequest).
    void on_proof_copy(ClientSession& s, const ctl::ProofCopyRequest& req);
    // The sender takes back a connection nobody took (ctl::ReclaimRequest).
    void on_reclaim(ClientSession& s, const ctl::ReclaimRequest& req);
    // Sends a parcel's image and library end to `s` (a take-over's or a reclaim's reply).
    void reply_with_parcel(ClientSession& s, const ctl::Header& req, const Parcel& p);
    // The parcel's claim for `s`'s port: held already, or joined with the parcel's proof.
    base::Result<base::Done, ctl::Status> join_for_parcel(ClientSession& s, const Parcel& p);
    // The claim of `s` that covers a TCP connection's local address and port, or null.
    [[nodiscard]] const HeldClaim* covering_claim(const ClientSession& s, const ctl::Claim& local) const;
    // The switch steers the claim's connection `flow` to `port` from now on; false if it cannot.
    bool steer_to(const sw::ClaimKey& key, const sw::FlowKey& flow, sw::PortId port);
    // After a parcel left: its claim leaves the XDP map if nobody holds it any more.
    void release_parcel_claim(const Parcel& p);
    // Hands a parcel's descriptors to the Reaper.
    void discard_parcel(const Parcel& p);
    // Drops parcels nobody took (parcels.hpp), with their charge.
    void sweep_parcels();
    // The index in s.claims of the claim of `tuple`, if the session holds one.
    [[nodiscard]] std::optional<std::size_t> held_index(const ClientSession& s, const ctl::Tuple& tuple) const;
    // A daemon asks to take over (root only): run() returns to hand over.
    void on_hand_over(ClientSession& s, const ctl::Header& req);
    // One handed-over session, with its port and claims charged to its user; false (and
    // its descriptors closed) if its user is over this daemon's limits.
    bool adopt_session(HandedOverSession st);
    // Charges a handed-over claim (and, if it joined another's, a shared claim) to `s`'s
    // user: nothing, or the limit that refuses it (nothing charged then).
    [[nodiscard]] std::optional<LimitHit> charge_handed_over_claim(const ClientSession& s, bool joined);
    void on_info(ClientSession& s, const ctl::Header& req);
    void on_status(ClientSession& s, const ctl::Header& req);
    void on_list_ports(ClientSession& s, const ctl::Header& req);
    void on_list_claims(ClientSession& s, const ctl::Header& req);
    void on_capture(ClientSession& s, const ctl::CaptureRequest& req);
    void on_sockets(ClientSession& s, const ctl::SocketsRequest& req);
    // How long a next-hop resolution waits for the kernel.
    static constexpr std::chrono::seconds kResolveWait{1};
    void on_resolve(ClientSession& s, const ctl::ResolveRequest& req);
    // Answers a resolve if the neighbour is known or failed; false while it is pending.
    bool try_resolve(ClientSession& s, std::uint32_t seq, const wire::IpAddr& next_hop);
    // On a tick: answers `s`'s pending resolve if it is known, failed or past its deadline.
    void retry_resolve(ClientSession& s);
    // Every tick: forward captured frames, end captures that are done, retry resolves.
    void tick();
    void pump_capture(ClientSession& s);
    void end_capture(ClientSession& s);
    void arm_tick_timer();
    // Twice a second while claims exist: revokes claims whose proof no longer holds
    // (claim_proof.hpp: the owner changed its copy, or another kernel socket shares it).
    void audit_proofs();
    // Revokes `s`'s claims whose proof broke; `kernel` as proof_still_holds() takes it.
    void audit_session(ClientSession& s, const KernelPortIndex* kernel);
    void arm_audit_timer();
    void count_limit(const ClientSession& s, LimitHit hit);
    [[nodiscard]] const ClientSession* owner_of(sw::PortId port) const;
    // True if `s` may see `port`'s details and capture it.
    [[nodiscard]] bool may_inspect(const ClientSession& s, sw::PortId port) const;
    // The port `port_id` names, if `s` may inspect it; else not_found or permission_denied.
    [[nodiscard]] base::Result<sw::PortId, ctl::Status> inspectable_port(const ClientSession& s, std::uint32_t port_id) const;
    // msctl status's parts: the data path and the NIC, and the control plane's counters.
    void fill_data_path_status(ctl::StatusReply& rep) const;
    void fill_control_counters(ctl::StatusReply& rep) const;
    // Copies a page of the socket table at `table` into `rep` and sends it; busy if the
    // application is writing it.
    void reply_socket_page(ClientSession& s, const ctl::Header& req, const std::uint8_t* table, ctl::SocketsReply& rep);
    // A port's owner, counters and drops, for a session that may inspect it.
    void show_port_details(ctl::PortEntry& e, const ClientSession& owner, sw::PortId id) const;

    ServerContext ctx_;
    std::string path_;
    int listen_fd_ = -1;
    int epoll_fd_ = -1;
    int tick_timer_fd_ = -1;   // ticks while any capture or resolve is in progress
    int audit_timer_fd_ = -1;  // ticks while any claim exists
    int heartbeat_timer_fd_ = -1;  // ticks always: DataPath::beat()
    int last_signal_ = 0;
    int hand_over_fd_ = -1;  // the session that asked to take over, until run() returns
    std::uint64_t started_s_ = 0;  // CLOCK_REALTIME seconds
    bool audit_armed_ = false;
    std::size_t held_claims_ = 0;  // over all sessions: the audit runs while any is held
    int spare_fd_ = -1;        // given up to accept and refuse a client when descriptors run out
    bool bound_ = false;       // the socket file is ours to remove
    Reaper reaper_;                    // closes what clients sent; outlives the sessions
    std::map<int, ClientSession> sessions_;  // by descriptor
    UserLedger users_;
    Parcels parcels_;  // after users_: a parcel's charge is given back when it goes
    ControlCounters counters_;
};

}  // namespace ms::daemon
