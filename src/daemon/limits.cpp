#include "daemon/limits.hpp"

#include <sys/resource.h>

#include <algorithm>

namespace ms::daemon {

Capacity own_capacity(std::uint32_t claim_map_entries) {
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) lim.rlim_cur = 0;
    return {static_cast<std::uint64_t>(lim.rlim_cur), claim_map_entries};
}

base::Result<Limits, LimitsMisfit> fit_limits(Limits l, const Capacity& capacity) {
    if (capacity.descriptors <= 2 * kReservedDescriptors) {
        return LimitsMisfit{UnfitLimit::descriptor_limit, "the daemon may open only " + std::to_string(capacity.descriptors) +
                                                              " descriptors (RLIMIT_NOFILE); it needs more than " +
                                                              std::to_string(2 * kReservedDescriptors)};
    }
    const auto for_users = static_cast<std::uint32_t>(
        std::min<std::uint64_t>(capacity.descriptors - kReservedDescriptors, UINT32_MAX));
    const std::uint32_t user_share = for_users / 4;
    if (l.descriptors_per_user == 0) l.descriptors_per_user = user_share;
    if (l.descriptors_per_user > for_users) {
        return LimitsMisfit{UnfitLimit::descriptors_per_user,
                            "--max-descriptors-per-user " + std::to_string(l.descriptors_per_user) + " exceeds the " +
                                std::to_string(for_users) + " descriptors the daemon has for all users"};
    }
    const std::uint32_t claim_share = capacity.claim_map_entries / 4;
    if (l.claims_per_user == 0) l.claims_per_user = std::min(claim_share, l.descriptors_per_user);
    if (l.claims_per_user > capacity.claim_map_entries / 2) {
        return LimitsMisfit{UnfitLimit::claims_per_user, "--max-claims-per-user " + std::to_string(l.claims_per_user) +
                                                             " exceeds half the XDP claim map (" +
                                                             std::to_string(capacity.claim_map_entries) + " entries)"};
    }
    if (l.sessions_per_user > l.descriptors_per_user) {
        return LimitsMisfit{UnfitLimit::sessions_per_user, "--max-sessions-per-user " + std::to_string(l.sessions_per_user) +
                                                               " exceeds the " + std::to_string(l.descriptors_per_user) +
                                                               " descriptors a user may hold"};
    }
    l.descriptors_for_users = for_users;
    return l;
}

std::string_view to_string(LimitHit l) {
    switch (l) {
        case LimitHit::sessions_per_user: return "sessions per user";
        case LimitHit::ports_per_user: return "ports per user";
        case LimitHit::port_memory_per_user: return "port memory per user";
        case LimitHit::claims_per_session: return "claims per session";
        case LimitHit::claims_per_user: return "claims per user";
        case LimitHit::shared_claims_per_user: return "shared claims per user";
        case LimitHit::handoffs_per_user: return "connections in hand-off per user";
        case LimitHit::descriptors_per_user: return "descriptors per user";
        case LimitHit::descriptors_for_users: return "descriptors for all unprivileged users";
    }
    return "unknown";
}

base::Result<base::Done, LimitHit> UserLedger::descriptors_allowed(const Peer& peer, const Usage& u,
                                                                   std::uint32_t count) const {
    if (u.descriptors + std::uint64_t{count} > limits_.descriptors_per_user) return LimitHit::descriptors_per_user;
    if (!peer.privileged && unprivileged_descriptors_ + count > limits_.descriptors_for_users) {
        return LimitHit::descriptors_for_users;
    }
    return base::Done{};
}

void UserLedger::take_descriptors(const Peer& peer, Usage& u, std::uint32_t count) {
    u.descriptors += count;
    if (!peer.privileged) unprivileged_descriptors_ += count;
}

void UserLedger::give_back_descriptors(const Peer& peer, Usage& u, std::uint32_t count) {
    u.descriptors -= count;
    if (!peer.privileged) unprivileged_descriptors_ -= count;
}

base::Result<base::Done, LimitHit> UserLedger::open_session(const Peer& peer) {
    Usage& u = users_[peer.uid];
    auto allowed = descriptors_allowed(peer, u, 1);
    if (u.sessions >= limits_.sessions_per_user) allowed = LimitHit::sessions_per_user;
    if (!allowed) {
        drop_if_idle(peer.uid);
        return allowed;
    }
    ++u.sessions;
    take_descriptors(peer, u, 1);
    return base::Done{};
}

void UserLedger::close_session(const Peer& peer) {
    Usage& u = users_[peer.uid];
    --u.sessions;
    give_back_descriptors(peer, u, 1);
    drop_if_idle(peer.uid);
}

base::Result<base::Done, LimitHit> UserLedger::add_memory(const Peer& peer, Usage& u, std::uint32_t& count,
                                                          std::uint32_t most, LimitHit at_most, std::uint64_t bytes,
                                                          std::uint32_t descriptors) {
    if (count >= most) return at_most;
    if (bytes > limits_.port_memory_per_user - u.port_bytes) return LimitHit::port_memory_per_user;
    if (auto allowed = descriptors_allowed(peer, u, descriptors); !allowed) return allowed;
    ++count;
    u.port_bytes += bytes;
    take_descriptors(peer, u, descriptors);
    return base::Done{};
}

void UserLedger::remove_memory(const Peer& peer, Usage& u, std::uint32_t& count, std::uint64_t bytes,
                               std::uint32_t descriptors) {
    --count;
    u.port_bytes -= bytes;
    give_back_descriptors(peer, u, descriptors);
}

base::Result<base::Done, LimitHit> UserLedger::add_port(const Peer& peer, std::uint64_t bytes, std::uint32_t descriptors) {
    Usage& u = users_[peer.uid];
    return add_memory(peer, u, u.ports, limits_.ports_per_user, LimitHit::ports_per_user, bytes, descriptors);
}

void UserLedger::remove_port(const Peer& peer, std::uint64_t bytes, std::uint32_t descriptors) {
    Usage& u = users_[peer.uid];
    remove_memory(peer, u, u.ports, bytes, descriptors);
}

base::Result<base::Done, LimitHit> UserLedger::add_handoff(const Peer& peer, std::uint64_t bytes, std::uint32_t descriptors) {
    Usage& u = users_[peer.uid];
    return add_memory(peer, u, u.handoffs, limits_.handoffs_per_user, LimitHit::handoffs_per_user, bytes, descriptors);
}

void UserLedger::remove_handoff(const Peer& peer, std::uint64_t bytes, std::uint32_t descriptors) {
    Usage& u = users_[peer.uid];
    remove_memory(peer, u, u.handoffs, bytes, descriptors);
    drop_if_idle(peer.uid);
}

base::Result<base::Done, LimitHit> UserLedger::add_claim(const Peer& peer) {
    Usage& u = users_[peer.uid];
    if (u.claims >= limits_.claims_per_user) return LimitHit::claims_per_user;
    if (auto allowed = descriptors_allowed(peer, u, 1); !allowed) return allowed;
    ++u.claims;
    take_descriptors(peer, u, 1);
    return base::Done{};
}

void UserLedger::remove_claim(const Peer& peer) {
    Usage& u = users_[peer.uid];
    --u.claims;
    give_back_descriptors(peer, u, 1);
}

base::Result<base::Done, LimitHit> UserLedger::add_shared_claim(const Peer& peer) {
    Usage& u = users_[peer.uid];
    if (u.shared_claims >= limits_.shared_claims_per_user) return LimitHit::shared_claims_per_user;
    ++u.shared_claims;
    return base::Done{};
}

void UserLedger::remove_shared_claim(const Peer& peer) { --users_[peer.uid].shared_claims; }

bool UserLedger::charge_outbox(const Peer& peer, std::size_t before, std::size_t after) {
    Usage& u = users_[peer.uid];
    u.outbox_bytes = u.outbox_bytes - before + after;
    return u.outbox_bytes <= limits_.outbox_bytes_per_user;
}

void UserLedger::drop_if_idle(uid_t uid) {
    auto it = users_.find(uid);
    // A connection in hand-off may outlive the sessions of the user that sent it.
    if (it != users_.end() && it->second.sessions == 0 && it->second.handoffs == 0) users_.erase(it);
}

}  // namespace ms::daemon
