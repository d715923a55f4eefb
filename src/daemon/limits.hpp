// Contract: the control plane's budgets (docs/DESIGN.md §6, §11): what one session and one user
// (uid) may hold, so that no client can exhaust the daemon's memory, descriptors or XDP
// claim map, and a limit one user reaches never affects another.
//
// Every per-user limit fits inside the daemon's own limits (fit_limits): a user's
// descriptors (a session takes one, a port one plus two per ring pair, a claim one)
// are at most a quarter of what the daemon may open less a reserve, and its claims at
// most a quarter of the XDP claim map. Every user, root included, is held to these.
// Unprivileged users together may not enter a reserve of descriptors, which is kept for
// privileged peers (root, CAP_NET_ADMIN) and the daemon itself, so that `msctl status`
// and root's applications are served however many users exhaust their shares. Replies
// a session leaves unread count against its user too, and are freed when the session
// goes.
//
// UserLedger counts what each user holds now; the control server asks it before it
// grants and tells it when it frees.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include "base/result.hpp"
#include "daemon/peer.hpp"

namespace ms::daemon {

struct Limits {
    std::uint32_t claims_per_session = 4096;
    std::uint32_t sessions_per_user = 256;
    std::uint32_t ports_per_user = 64;
    std::uint64_t port_memory_per_user = std::uint64_t{1024} << 20;  // bytes of shared rings
    std::size_t outbox_bytes = std::size_t{1} << 20;                  // replies a session may leave unread
    std::size_t outbox_bytes_per_user = std::size_t{4} << 20;         // the same, for all of a user's sessions
    std::uint32_t claims_per_user = 0;       // 0: fit_limits() chooses
    std::uint32_t descriptors_per_user = 0;  // 0: fit_limits() chooses
    std::uint32_t descriptors_for_users = UINT32_MAX;  // all unprivileged users together (fit_limits sets it)
    std::uint32_t shared_claims_per_user = 32;  // claims a user's ports join (each group's flow table costs memory)
    std::uint32_t flows_per_group = 32768;      // connections a shared claim's switch flow table records
    std::uint32_t handoffs_per_user = 64;       // connections a user's processes have in hand-off at once
};

// What the daemon itself can hold.
struct Capacity {
    std::uint64_t descriptors = 0;    // RLIMIT_NOFILE
    std::uint32_t claim_map_entries = 0;  // the XDP claim map's size
};

// The calling process's descriptor limit (RLIMIT_NOFILE) and `claim_map_entries`.
[[nodiscard]] Capacity own_capacity(std::uint32_t claim_map_entries);

// Descriptors kept back from unprivileged users: for privileged peers and the daemon's
// own (AF_XDP sockets, timers, the Reaper's closes in flight).
inline constexpr std::uint32_t kReservedDescriptors = 256;

// Which of the requested limits does not fit in what the daemon can hold.
enum class UnfitLimit {
    descriptor_limit,      // the daemon's own RLIMIT_NOFILE leaves nothing for users
    descriptors_per_user,  // more than all users together may hold
    claims_per_user,       // more than half the XDP claim map
    sessions_per_user,     // more than a user's descriptors
};
struct LimitsMisfit {
    UnfitLimit limit;
    std::string message;  // names the option and the numbers, for the operator
};

// `requested` with its automatic values chosen and every per-user limit checked against
// `capacity`; or the limit that does not fit.
[[nodiscard]] base::Result<Limits, LimitsMisfit> fit_limits(Limits requested, const Capacity& capacity);

enum class LimitHit {
    sessions_per_user,
    ports_per_user,
    port_memory_per_user,
    claims_per_session,
    claims_per_user,
    descriptors_per_user,
    descriptors_for_users,
    shared_claims_per_user,
    handoffs_per_user,
};
[[nodiscard]] std::string_view to_string(LimitHit l);

// How many descriptors a port holds: its memory and two eventfds per ring pair.
[[nodiscard]] constexpr std::uint32_t port_descriptors(std::uint32_t ring_pairs) { return 1 + 2 * ring_pairs; }

class UserLedger {
public:
    explicit UserLedger(const Limits& limits) : limits_(limits) {}

    // Each grant is Done, or names the limit that refuses it (nothing is then taken).
    [[nodiscard]] base::Result<base::Done, LimitHit> open_session(const Peer& peer);
    void close_session(const Peer& peer);
    [[nodiscard]] base::Result<base::Done, LimitHit> add_port(const Peer& peer, std::uint64_t bytes,
                                                              std::uint32_t descriptors);
    void remove_port(const Peer& peer, std::uint64_t bytes, std::uint32_t descriptors);
    [[nodiscard]] base::Result<base::Done, LimitHit> add_claim(const Peer& peer);
    void remove_claim(const Peer& peer);
    [[nodiscard]] base::Result<base::Done, LimitHit> add_shared_claim(const Peer& peer);
    void remove_shared_claim(const Peer& peer);
    // A connection in hand-off (parcels.hpp): `bytes` of image, counted with the user's
    // port memory, and the descriptors the daemon holds for it.
    [[nodiscard]] base::Result<base::Done, LimitHit> add_handoff(const Peer& peer, std::uint64_t bytes,
                                                                 std::uint32_t descriptors);
    void remove_handoff(const Peer& peer, std::uint64_t bytes, std::uint32_t descriptors);
    // Moves a user's count of unread reply bytes from `before` to `after`; false if the
    // user is now over its budget (the caller drops the session).
    [[nodiscard]] bool charge_outbox(const Peer& peer, std::size_t before, std::size_t after);

private:
    struct Usage {
        std::uint32_t sessions = 0;
        std::uint32_t ports = 0;
        std::uint64_t port_bytes = 0;
        std::uint32_t claims = 0;
        std::uint32_t shared_claims = 0;
        std::uint32_t handoffs = 0;
        std::uint32_t descriptors = 0;
        std::size_t outbox_bytes = 0;
    };
    // Done if `peer` may take `count` more descriptors; the limit that stops it if not.
    [[nodiscard]] base::Result<base::Done, LimitHit> descriptors_allowed(const Peer& peer, const Usage& u,
                                                                         std::uint32_t count) const;
    void take_descriptors(const Peer& peer, Usage& u, std::uint32_t count);
    // A port or a hand-off: one more of `count` (at most `most`, else `at_most`), `bytes`
    // of memory and `descriptors`; and their return.
    [[nodiscard]] base::Result<base::Done, LimitHit> add_memory(const Peer& peer, Usage& u, std::uint32_t& count,
                                                                std::uint32_t most, LimitHit at_most, std::uint64_t bytes,
                                                                std::uint32_t descriptors);
    void remove_memory(const Peer& peer, Usage& u, std::uint32_t& count, std::uint64_t bytes, std::uint32_t descriptors);
    void give_back_descriptors(const Peer& peer, Usage& u, std::uint32_t count);
    void drop_if_idle(uid_t uid);

    const Limits& limits_;
    std::map<uid_t, Usage> users_;
    std::uint64_t unprivileged_descriptors_ = 0;
};

}  // namespace ms::daemon
