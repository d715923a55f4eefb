// Contract: the control protocol between multistackd and its clients (docs/DESIGN.md §6), over a
// UNIX SOCK_SEQPACKET socket. Every message is one fixed-layout struct that starts with
// CtlHeader; descriptors travel as SCM_RIGHTS. A request gets exactly one reply with the
// same op and seq, except the list ops, which reply with one message per entry and then
// an empty CtlHeader (op list_end). Layouts are checked with static_assert; integers
// are in host order (both ends share the host).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>

#include "ring/abi.hpp"
#include "ring/socket_table.hpp"

namespace ms::ctl {

inline constexpr std::uint32_t kMagic = 0x4d534354;  // "MSCT"
inline constexpr std::uint16_t kVersion = 11;  // 3: sockets, and the region's socket table; 4: super-segment counters; 5: 32
                                               // drop slots, tuple_shared; 6: shared claims (ClaimRequest::role, ClaimEntry's
                                               // group fields); 7: per NIC queue counters; 8: ClaimRole::passed; 9:
                                               // hand_off and take_over, StatusReply's hand-off counters; 10:
                                               // restarts (AttachReply::outage_limit_ms, StatusReply's restart fields);
                                               // 11: 160-byte socket records (the congestion model)
inline constexpr std::size_t kMaxMessage = 4096;
inline constexpr std::uint32_t kMaxFds = 1 + 2 * 8;  // the memfd, then two eventfds per ring pair
inline constexpr std::uint32_t kMaxRequestFds = 2;  // what a request carries at most (hand_off's two)
inline constexpr std::size_t kDropSlots = 32;        // room for DropReason values
inline constexpr std::size_t kFaultSlots = 16;       // room for RingFault values
inline constexpr std::size_t kQueueSlots = 16;
// The largest connection image a hand-off carries (utcp/connection_image.hpp: two
// buffers of at most 64 MiB, and the fields).
inline constexpr std::uint64_t kMaxImageBytes = std::uint64_t{192} << 20;  // NIC queues shown one by one in StatusReply

enum class Op : std::uint16_t {
    attach = 1,  // make this connection's port; reply carries the memfd and eventfds
    claim,  // claim the 3-tuple a bound kernel socket holds (the socket is the proof)
    release,  // give a claim back
    info,  // the interface: MAC, MTU, addresses, gateway
    status,  // the switch as a whole
    list_ports,
    list_claims,
    list_end,
    capture,  // stream one port's frames: capture_frame messages, then capture_end
    capture_frame,
    capture_end,
    resolve,  // the MAC of the next hop towards an address, from the kernel's tables
    sockets,  // a page of a port's socket table (ring/socket_table.hpp), or a refresh
    drain,  // this port's listener on a claim closed: no new connections, keep its own (version 8)
    hand_off,  // a connection leaves this port: its image waits for a process that holds it (version 9)
    take_over,  // this port takes up a connection whose descriptor it holds (version 9)
    reclaim,  // the sender takes back a connection in hand-off that nobody took (version 9)
    restore_flows,  // a port that attached again names its connections, to be steered to it (version 10)
    // A new daemon asks the running one to hand everything over (root only; any version
    // from 10 on). The reply is the state record (multistackd/hand_over.hpp), or a status.
    hand_over,
    // A copy of the proof of a claim this session holds (a connection it took up, whose
    // proof was another process's), so that it can prove the claim again after the daemon
    // restarts. Replied to with a Header and the socket: ok, or not_found or permission_denied.
    proof_copy,
};

enum class Status : std::int32_t {
    ok = 0,
    bad_request,  // malformed or unknown message
    version_mismatch,
    not_attached,  // claim before attach
    already_attached,  // one port per connection
    address_in_use,  // the 3-tuple is claimed already
    bad_socket,  // the descriptor is not a bound TCP or UDP socket
    not_found,  // release of something not claimed
    switch_full,  // no free port
    internal,  // the daemon failed; see its log
    busy,  // a capture of that port runs already, or its socket table is being written
    no_route,  // the kernel has no route to the address through this interface
    unreachable,  // the kernel could not resolve the next hop in time
    // Added in version 2. Each names one check of docs/DESIGN.md §3 or one limit of §6.
    permission_denied,  // capture of a port that belongs to another user (root may)
    limit_reached,  // a per-session or per-user limit; the daemon's log names it
    foreign_namespace,  // the proof socket lives in another network namespace
    bound_to_device,  // the proof socket is bound (SO_BINDTODEVICE) to another interface
    address_not_local,  // the exact address is not the interface's own, or is loopback,
                        // multicast or broadcast (IP_FREEBIND, IP_TRANSPARENT)
    reusable_socket,  // SO_REUSEADDR would let a kernel socket share the port
    socket_in_use,  // the proof socket is connected or listening
    no_resources,  // the daemon ran out of descriptors or memory; try again later
    tuple_shared,  // another kernel socket holds the same address and port (bound with
                   // SO_REUSEADDR or SO_REUSEPORT): the proof must be its sole holder
};
[[nodiscard]] std::string_view to_string(Status s);

struct Header {
    std::uint32_t magic = kMagic;
    std::uint16_t version = kVersion;
    Op op{};
    std::uint32_t seq = 0;
    Status status = Status::ok;
};
static_assert(sizeof(Header) == 16);

struct Tuple {
    std::uint8_t protocol = 0;  // IPPROTO_TCP or IPPROTO_UDP
    std::uint8_t family = 0;    // 4 or 6
    std::uint16_t port = 0;
    std::uint8_t addr[16] = {};
};
static_assert(sizeof(Tuple) == 20);

struct AttachRequest {
    Header h{.op = Op::attach};
    std::uint32_t ring_pairs = 1;
    std::uint32_t slots_per_ring = 1024;
    std::uint64_t data_bytes = 0;  // the region's data area (ring/abi.hpp), version 4
};

struct AttachReply {
    Header h{.op = Op::attach};
    std::uint32_t port_id = 0;
    std::uint32_t ring_pairs = 0;  // fds: memfd, then to_switch and to_app for each pair
    // How long claims outlive the daemon (version 10): an application whose daemon went
    // away tries to attach again for this long, then its sockets fail (ENETDOWN).
    std::uint32_t outage_limit_ms = 0;
    std::uint32_t pad = 0;
};

// What a claimant does with new connections when it shares its claim with other ports
// (a forked worker, or another SO_REUSEPORT socket of the same user): a serving member gets
// its share of them; a standing-by one gets them only while no member serves (nginx's
// master opens the listener, its workers serve it).
// How a claim's port takes part in it: serving gets new connections; standby only when
// no member serves (a master that hands its listener to workers); passed joins, serving,
// the claim that this very socket proves (it came over a UNIX socket, SCM_RIGHTS) and
// never makes a new one: not_found if no session holds a claim proven by it.
// draining never gets new connections: what a member becomes after Op::drain, or how a
// program image joins with a listener it got by exec from a process that had inherited
// it (nginx's new binary: its workers serve); like passed, it only joins the claim of
// the very same socket.
enum class ClaimRole : std::uint8_t { serving = 0, standby = 1, passed = 2, draining = 3 };

struct ClaimRequest {  // with one descriptor: the bound socket
    Header h{.op = Op::claim};
    ClaimRole role = ClaimRole::serving;
    std::uint8_t pad[7] = {};
};

struct ClaimReply {
    Header h{.op = Op::claim};
    Tuple claimed;
};

struct ReleaseRequest {
    Header h{.op = Op::release};
    Tuple tuple;
};

struct DrainRequest {  // replied to with a Header: ok, or not_found
    Header h{.op = Op::drain};
    Tuple tuple;
};

// A connection in hand-off (docs/DESIGN.md §7, "Connections that move"). The exporting
// process sends its image (a memfd the daemon seals) and the library's end of the
// connection's readiness socketpair; whoever later presents a descriptor of the
// application's end (the same inode: a forked child, a new image after exec, a process it
// was passed to) takes both, and the switch steers the connection's 4-tuple to its port.
struct HandOffRequest {  // fds: the image, the readiness socket's library end
    Header h{.op = Op::hand_off};
    Tuple local;  // the connection's local address and port (within a claim of this port)
    std::uint8_t remote_family = 4;
    std::uint8_t pad[1] = {};
    std::uint16_t remote_port = 0;
    std::uint8_t remote[16] = {};
    std::uint64_t token_device = 0;  // st_dev and st_ino of the application's end
    std::uint64_t token_inode = 0;
    std::uint64_t image_bytes = 0;
};

struct HandOffReply {
    Header h{.op = Op::hand_off};
    std::uint64_t parcel = 0;  // what the sender reclaims it by, if nobody takes it
};

// Every process that held the connection closed it and none took it up (the sender sees
// its readiness socket hang up): the sender takes it back, to close it with a FIN. Only
// the sender's user, with the number hand_off gave; not_found once it was taken.
struct ReclaimRequest {
    Header h{.op = Op::reclaim};
    std::uint64_t parcel = 0;
};

struct TakeOverRequest {  // fds: the descriptor the application holds
    Header h{.op = Op::take_over};
};

struct ProofCopyRequest {
    Header h{.op = Op::proof_copy};
    Tuple tuple;
};

struct TakeOverReply {  // fds: the image, the readiness socket's library end; not_found while none waits
    Header h{.op = Op::take_over};  // or Op::reclaim
    Tuple claim;  // the claim the port now holds with the connection (released with its last one)
    std::uint64_t image_bytes = 0;
};

// A port that attached again after its daemon went away (docs/DESIGN.md §6, "Restarts and
// upgrades") names its TCP connections, so that the switch steers each to it again where
// a shared claim's group would otherwise send it to another member. Connections outside
// the port's own claims are skipped.
struct RestoredFlow {
    Tuple local;  // the connection's local address and port
    std::uint8_t remote_family = 4;
    std::uint8_t pad = 0;
    std::uint16_t remote_port = 0;
    std::uint8_t remote[16] = {};
};

struct RestoreFlowsRequest {
    static constexpr std::uint32_t kMaxFlows = 32;
    Header h{.op = Op::restore_flows};
    std::uint32_t count = 0;  // at most kMaxFlows
    std::uint32_t pad = 0;
    RestoredFlow flows[kMaxFlows] = {};
};

struct RestoreFlowsReply {
    Header h{.op = Op::restore_flows};
    std::uint32_t recorded = 0;  // connections the switch steers to the port now
    std::uint32_t pad = 0;
};

struct InfoReply {
    static constexpr std::size_t kMaxAddresses = 8;
    Header h{.op = Op::info};
    std::uint8_t mac[6] = {};
    std::uint16_t mtu = 0;
    std::uint32_t ifindex = 0;
    std::uint32_t address_count = 0;
    std::uint8_t addresses[kMaxAddresses][16] = {};
    std::uint8_t address_families[kMaxAddresses] = {};
    std::uint8_t prefix_lengths[kMaxAddresses] = {};
    std::uint8_t gateway_family = 0;  // 0: no default route on this interface
    std::uint8_t gateway[16] = {};
};

struct StatusReply {
    Header h{.op = Op::status};
    char ifname[16] = {};
    std::uint32_t ifindex = 0;
    std::uint8_t xdp_native = 0;  // 1 native, 0 generic (SKB)
    std::uint8_t zero_copy = 0;
    std::uint16_t queues = 0;
    std::uint16_t workers = 0;
    std::uint16_t ports = 0;
    std::uint32_t claims = 0;
    std::uint32_t pid = 0;
    std::uint64_t nic_rx_frames = 0, nic_tx_frames = 0;
    std::uint64_t xdp_claimed = 0, xdp_passed = 0;
    std::uint64_t nic_drops[kDropSlots] = {};
    std::uint64_t handoff_drops[kDropSlots] = {};
    // The control plane (version 2).
    std::uint32_t sessions = 0;
    std::uint32_t open_descriptors = 0;   // multistackd's own, all kinds
    std::uint64_t bad_requests = 0;       // malformed or unknown messages
    std::uint64_t slow_clients = 0;       // sessions dropped because they did not read their replies
    std::uint64_t claims_refused = 0;     // proofs that failed a check of docs/DESIGN.md §3
    std::uint64_t claims_revoked = 0;     // claims ended because their proof was changed after the fact
    std::uint64_t limits_reached = 0;     // requests refused by a limit
    std::uint64_t descriptors_exhausted = 0;  // accepts or receives that found no free descriptor
    // Segmentation offload (version 4).
    std::uint64_t nic_tx_offloaded = 0;   // super-segments handed to the interface's own GSO/TSO
    std::uint8_t segmentation_offload = 0;  // 1: the NIC side offers it (AF_PACKET with a virtio_net_hdr)
    // Per NIC queue (version 7): the first kQueueSlots queues, with the worker that owns each.
    std::uint16_t queue_workers[kQueueSlots] = {};
    std::uint64_t queue_rx_frames[kQueueSlots] = {};
    std::uint64_t queue_tx_frames[kQueueSlots] = {};
    // Connections in hand-off (version 9): waiting, taken up by another process, taken
    // back by their sender (every holder closed them untaken), and dropped (expired).
    std::uint32_t handoffs_waiting = 0;
    std::uint32_t pad_handoffs = 0;
    std::uint64_t handoffs_taken = 0;
    std::uint64_t handoffs_reclaimed = 0;
    std::uint64_t handoffs_dropped = 0;
    // Restarts and upgrades (version 10; docs/DESIGN.md §6, "Restarts and upgrades").
    std::uint64_t started_s = 0;  // CLOCK_REALTIME seconds: this daemon's start
    std::uint64_t first_start_s = 0;  // and the first daemon's of the chain on this interface
    std::uint32_t restarts = 0;  // daemons that took over from one that died
    std::uint32_t upgrades = 0;  // and from one that left on purpose
    std::uint64_t held_frames = 0;  // claimed frames dropped while no daemon took them
    std::uint32_t adopted_waiting = 0;  // claims left by the last daemon, not yet proved again
    std::uint32_t outage_limit_ms = 0;
};

// pid, uid and the counters are shown only to the port's owner (same uid) and to root;
// others see zeros there.
struct PortEntry {
    Header h{.op = Op::list_ports};
    std::uint32_t port_id = 0;
    std::int32_t pid = 0;
    std::uint32_t uid = 0;
    std::uint32_t ring_pairs = 0;
    std::uint32_t claims = 0;
    std::uint8_t failed = 0;
    std::uint8_t shown = 0;  // 1: pid, uid, claims and counters are filled in (own port, or root)
    std::uint64_t rx_frames = 0, rx_bytes = 0, tx_frames = 0, tx_bytes = 0;
    std::uint64_t drops[kDropSlots] = {};
    std::uint64_t faults[kFaultSlots] = {};
    std::uint64_t tx_super = 0;      // super-segments it sent (each counts once in tx_frames)
    std::uint64_t tx_segmented = 0;  // of those, cut into frames by the switch
};

// One per holder of a claim: a shared claim lists each member.
struct ClaimEntry {
    Header h{.op = Op::list_claims};
    std::uint32_t port_id = 0;
    Tuple tuple;
    std::uint8_t shared = 0;  // 1: the claim is a group's (docs/DESIGN.md §4.2)
    std::uint8_t founder = 0;  // 1: this member made the claim first
    ClaimRole role = ClaimRole::serving;
    std::uint8_t pad = 0;
    std::uint32_t members = 1;  // the group's size
    std::uint64_t new_connections = 0;  // SYNs the switch steered to this member
    std::uint64_t group_flows = 0;  // connections the group's flow table records
};

struct CaptureRequest {
    Header h{.op = Op::capture};
    std::uint32_t port_id = 0;
    std::uint32_t max_frames = 0;    // 0: no limit
    std::uint32_t milliseconds = 0;  // 0: until the client hangs up
};

struct CaptureFrame {
    Header h{.op = Op::capture_frame};
    std::uint64_t timestamp_ns = 0;  // CLOCK_REALTIME when the daemon collected it
    std::uint16_t len = 0;
    std::uint8_t from_application = 0;  // 1: the port sent it; 0: the port received it
    std::uint8_t pad = 0;
    std::uint8_t data[ring::kMaxFrameSize] = {};
};

struct CaptureEnd {
    Header h{.op = Op::capture_end};
    std::uint64_t frames = 0;
    std::uint64_t lost = 0;  // frames the capture could not keep up with
};

struct ResolveRequest {
    Header h{.op = Op::resolve};
    std::uint8_t family = 4;
    std::uint8_t addr[16] = {};
};

struct ResolveReply {
    Header h{.op = Op::resolve};
    std::uint8_t mac[6] = {};
    std::uint8_t next_hop_family = 0;
    std::uint8_t next_hop[16] = {};
};

// Only the port's owner (same uid) and root may read its sockets. With `refresh` the
// daemon asks the application for a fresh snapshot and replies at once with no records;
// the application publishes within its next loop turn.
struct SocketsRequest {
    Header h{.op = Op::sockets};
    std::uint32_t port_id = 0;
    std::uint32_t first = 0;  // the first record wanted
    std::uint8_t refresh = 0;
    std::uint8_t pad[3] = {};
};

inline constexpr std::size_t kSocketsPerMessage = 24;

struct SocketsReply {
    Header h{.op = Op::sockets};
    std::uint32_t port_id = 0;
    std::uint32_t generation = 0;  // of the snapshot: pages of one listing share it
    std::uint32_t count = 0;       // records in the snapshot
    std::uint32_t first = 0;
    std::uint64_t total = 0;       // connections the application has (may exceed count)
    std::uint64_t age_ms = 0;      // since the application published the snapshot
    std::uint32_t records = 0;     // valid records below
    std::uint32_t invalid = 0;     // records of this page the daemon refused (ring/socket_table.hpp)
    ring::SocketRecord record[kSocketsPerMessage] = {};
};

template <class T>
inline constexpr bool kIsMessage = std::is_trivially_copyable_v<T> && std::is_standard_layout_v<T> && offsetof(T, h) == 0 &&
                                   sizeof(T) <= kMaxMessage;
static_assert(kIsMessage<AttachRequest> && kIsMessage<AttachReply> && kIsMessage<ClaimRequest> && kIsMessage<ClaimReply> &&
              kIsMessage<ReleaseRequest> && kIsMessage<InfoReply> && kIsMessage<StatusReply> && kIsMessage<PortEntry> &&
              kIsMessage<ClaimEntry> && kIsMessage<CaptureRequest> && kIsMessage<CaptureFrame> && kIsMessage<CaptureEnd> &&
              kIsMessage<ResolveRequest> && kIsMessage<ResolveReply> && kIsMessage<SocketsRequest> &&
              kIsMessage<SocketsReply> && kIsMessage<HandOffRequest> && kIsMessage<HandOffReply> &&
              kIsMessage<ReclaimRequest> && kIsMessage<TakeOverRequest> && kIsMessage<TakeOverReply> &&
              kIsMessage<ProofCopyRequest>);

}  // namespace ms::ctl
