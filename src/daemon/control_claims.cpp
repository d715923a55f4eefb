// The control plane's claims (control_server.hpp, docs/DESIGN.md §3): a claim is proven
// (claim_proof.hpp), charged to its user, held in the registry and the XDP map, and its
// proof socket kept for its life; a claim made with a proof socket that another session
// holds joins that session's claim, which the ports then share as a group (a forked
// worker serving the listener its parent opened; docs/DESIGN.md §4.2). Released on
// request, when the session ends, or when the periodic audit finds that its proof no
// longer holds; the claim leaves the XDP map with its last holder.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>

#include "ctl/claim.hpp"
#include "daemon/control_server.hpp"
#include "daemon/timers.hpp"

namespace ms::daemon {
namespace {

std::string describe(const sw::ClaimKey& k) {
    return std::string(k.protocol == 6 ? "tcp " : "udp ") + k.addr.to_string() + ":" + std::to_string(k.port);
}

ctl::Status status_for(ProofError e) {
    switch (e) {
        case ProofError::foreign_namespace: return ctl::Status::foreign_namespace;
        case ProofError::bound_to_device: return ctl::Status::bound_to_device;
        case ProofError::address_not_local: return ctl::Status::address_not_local;
        case ProofError::reusable: return ctl::Status::reusable_socket;  // SO_REUSEADDR
        case ProofError::shared: return ctl::Status::tuple_shared;
        case ProofError::kernel_unreadable: return ctl::Status::internal;
        case ProofError::connected:
        case ProofError::listening: return ctl::Status::socket_in_use;
        case ProofError::not_inet:
        case ProofError::not_tcp_or_udp:
        case ProofError::unreadable:
        case ProofError::not_bound:
        case ProofError::changed: return ctl::Status::bad_socket;
    }
    return ctl::Status::bad_socket;
}

}  // namespace

void ControlServer::on_claim(ClientSession& s, const ctl::ClaimRequest& req, std::vector<int>& fds) {
    if (!s.port) return reply_status(s, req.h, ctl::Status::not_attached);
    if (fds.size() != 1) return reply_status(s, req.h, ctl::Status::bad_socket);
    if (req.role != ctl::ClaimRole::serving && req.role != ctl::ClaimRole::standby && req.role != ctl::ClaimRole::passed &&
        req.role != ctl::ClaimRole::draining) {
        return reply_status(s, req.h, ctl::Status::bad_request);
    }
    if (auto charged = charge_claim(s); !charged) {
        count_limit(s, charged.error());
        return reply_status(s, req.h, ctl::Status::limit_reached);
    }
    const auto role = req.role == ctl::ClaimRole::standby    ? sw::MemberRole::standby
                      : req.role == ctl::ClaimRole::draining ? sw::MemberRole::draining
                                                             : sw::MemberRole::serving;
    const bool join_only = req.role == ctl::ClaimRole::passed || req.role == ctl::ClaimRole::draining;
    const auto held = prove_and_hold(s, fds[0], role, join_only ? JoinRule::same_socket_only : JoinRule::or_claim_alone);
    if (!held) {
        users_.remove_claim(s.peer);  // the charge stands only if the claim is made
        return reply_status(s, req.h, held.error());
    }
    never_linger(fds[0]);
    keep_claim(s, *held, fds[0]);
    fds.clear();  // the session owns the socket now
    arm_audit_timer();
    ctl::ClaimReply rep;
    rep.h.seq = req.h.seq;
    const ProvenTuple& p = held->proven;
    rep.claimed = ctl::to_tuple({p.key.protocol, p.key.addr, p.key.port});
    reply(s, rep);
    std::cerr << "multistackd: port " << *s.port << (held->holding == Holding::joined ? " joins " : " claims ")
              << describe(p.key) << (p.ipv4_twin ? " and " + describe(*p.ipv4_twin) + " (a dual-stack socket)" : "")
              << (role == sw::MemberRole::standby ? ", standing by" : "") << "\n";
}

base::Result<base::Done, LimitHit> ControlServer::charge_claim(const ClientSession& s) {
    if (s.claims.size() >= ctx_.limits.claims_per_session) return LimitHit::claims_per_session;
    return users_.add_claim(s.peer);
}

base::Result<ControlServer::HeldTuple, ctl::Status> ControlServer::prove_and_hold(ClientSession& s, int proof_fd,
                                                                                  sw::MemberRole role, JoinRule rule) {
    const auto proof = prove_claim(proof_fd, ctx_.proof_scope);
    if (!proof) {
        ++counters_.claims_refused;
        std::cerr << "multistackd: port " << *s.port << ": claim refused: " << to_string(proof.error()) << "\n";
        return status_for(proof.error());
    }
    if (rule == JoinRule::same_socket_only) {
        if (auto joined = join_holder(s, *proof, role, rule); !joined) return joined.error();
        return HeldTuple{*proof, Holding::joined};
    }
    if (auto held = hold(s, proof->key, role); !held) {
        if (held.error() != ctl::Status::address_in_use) return held.error();
        if (auto joined = join_holder(s, *proof, role, rule); !joined) return joined.error();
        return HeldTuple{*proof, Holding::joined};
    }
    if (proof->ipv4_twin) {
        if (auto also = hold(s, *proof->ipv4_twin, role); !also) {
            unhold(s, proof->key);
            return also.error();
        }
    }
    return HeldTuple{*proof, Holding::alone};
}

base::Result<base::Done, ctl::Status> ControlServer::hold(ClientSession& s, const sw::ClaimKey& key, sw::MemberRole role) {
    if (!ctx_.sw.registry().add(key, *s.port, role)) return ctl::Status::address_in_use;
    // EEXIST: a connection in hand-off kept the claim in the XDP map (unhold).
    if (!ctx_.data_path.mirror_claim(key) && errno != EEXIST) {
        (void)ctx_.sw.registry().remove(key, *s.port);
        std::cerr << "multistackd: the XDP claim map refused " << describe(key) << ": " << std::strerror(errno) << "\n";
        return ctl::Status::no_resources;
    }
    return base::Done{};
}

void ControlServer::unhold(ClientSession& s, const sw::ClaimKey& key) {
    const auto left = ctx_.sw.registry().remove(key, *s.port);
    // A connection of the claim in hand-off keeps its frames from the kernel until it is
    // taken up (release_parcel_claim): the switch drops them meanwhile.
    if (left && *left == sw::ClaimLeft::nothing && !parcels_.references(key)) ctx_.data_path.unmirror_claim(key);
}

namespace {
// Whether a claim proven by `held` may be joined by the holder of `joining`: it presents
// the same socket (a forked worker serving the listener its parent opened, or one passed
// to it), or both are SO_REUSEPORT sockets of one owner, which the kernel let share
// (unless `rule` asks for the same socket).
bool may_join(const ProvenTuple& held, const ProvenTuple& joining, JoinRule rule) {
    if (held.key != joining.key) return false;
    if (held.cookie == joining.cookie) return true;
    return rule == JoinRule::or_claim_alone && held.reuse_port && joining.reuse_port && held.owner_uid == joining.owner_uid;
}
}  // namespace

// A claim held by another session that `proven` may join (may_join) is shared with `s`'s
// port; the XDP map is unchanged.
base::Result<base::Done, ctl::Status> ControlServer::join_holder(ClientSession& s, const ProvenTuple& proven,
                                                                 sw::MemberRole role, JoinRule rule) {
    const bool held_so = std::any_of(sessions_.begin(), sessions_.end(), [&](const auto& entry) {
        const ClientSession& holder = entry.second;
        return &holder != &s && holder.port &&
               std::any_of(holder.claims.begin(), holder.claims.end(),
                           [&](const HeldClaim& c) { return may_join(c.proven, proven, rule); });
    });
    if (!held_so && rule == JoinRule::same_socket_only) {
        std::cerr << "multistackd: port " << *s.port << " cannot join " << describe(proven.key)
                  << ": no claim is proven by the socket passed to it\n";
        return ctl::Status::not_found;
    }
    if (!held_so) {
        std::cerr << "multistackd: port " << *s.port << " cannot join " << describe(proven.key)
                  << ": no holder shares its proof socket or its SO_REUSEPORT owner\n";
        return ctl::Status::address_in_use;
    }
    if (auto charged = users_.add_shared_claim(s.peer); !charged) {
        count_limit(s, charged.error());
        return ctl::Status::limit_reached;
    }
    sw::Registry& registry = ctx_.sw.registry();
    if (auto joined = registry.join(proven.key, *s.port, role, ctx_.limits.flows_per_group); !joined) {
        users_.remove_shared_claim(s.peer);
        if (joined.error() == sw::ClaimError::group_full) {
            std::cerr << "multistackd: port " << *s.port << " cannot join " << describe(proven.key) << ": its group has "
                      << sw::kMaxGroupMembers << " members\n";
            return ctl::Status::limit_reached;
        }
        if (joined.error() == sw::ClaimError::no_memory) return ctl::Status::no_resources;
        return ctl::Status::address_in_use;  // this port holds it already
    }
    if (proven.ipv4_twin) (void)registry.join(*proven.ipv4_twin, *s.port, role, ctx_.limits.flows_per_group);
    return base::Done{};
}

void ControlServer::release_claim(ClientSession& s, std::size_t index) {
    const HeldClaim c = s.claims[index];
    unhold(s, c.proven.key);
    if (c.proven.ipv4_twin) unhold(s, *c.proven.ipv4_twin);
    // The kernel frees the port now, unless another holder of the same socket keeps it.
    forget_claim(s, s.claims.begin() + static_cast<long>(index));
}

void ControlServer::keep_claim(ClientSession& s, const HeldTuple& held, int proof_fd) {
    s.claims.push_back({held.proven, proof_fd, held.holding == Holding::joined});
    ++held_claims_;
}

void ControlServer::forget_claim(ClientSession& s, std::vector<HeldClaim>::iterator claim) {
    // The owner may have connected its copy and set a long linger since; the Reaper turns
    // linger off.
    reaper_.discard(claim->socket_fd, s.peer.uid);
    if (claim->joined) users_.remove_shared_claim(s.peer);
    s.claims.erase(claim);
    users_.remove_claim(s.peer);
    --held_claims_;
}

std::optional<std::size_t> ControlServer::held_index(const ClientSession& s, const ctl::Tuple& tuple) const {
    const ctl::Claim wanted = ctl::from_tuple(tuple);
    for (std::size_t i = 0; i < s.claims.size(); ++i) {
        const sw::ClaimKey& k = s.claims[i].proven.key;
        if (k.protocol == wanted.protocol && k.addr == wanted.addr && k.port == wanted.port) return i;
    }
    return std::nullopt;
}

void ControlServer::on_release(ClientSession& s, const ctl::ReleaseRequest& req) {
    const auto i = held_index(s, req.tuple);
    if (!i) return reply_status(s, req.h, ctl::Status::not_found);
    std::cerr << "multistackd: port " << *s.port << " releases " << describe(s.claims[*i].proven.key) << "\n";
    release_claim(s, *i);
    arm_audit_timer();
    reply_status(s, req.h, ctl::Status::ok);
}

void ControlServer::on_drain(ClientSession& s, const ctl::DrainRequest& req) {
    const auto i = s.port ? held_index(s, req.tuple) : std::nullopt;
    if (!i) return reply_status(s, req.h, ctl::Status::not_found);
    const ProvenTuple& proven = s.claims[*i].proven;
    sw::Registry& registry = ctx_.sw.registry();
    (void)registry.set_role(proven.key, *s.port, sw::MemberRole::draining);
    if (proven.ipv4_twin) (void)registry.set_role(*proven.ipv4_twin, *s.port, sw::MemberRole::draining);
    std::cerr << "multistackd: port " << *s.port << " drains " << describe(proven.key) << "\n";
    reply_status(s, req.h, ctl::Status::ok);
}

void ControlServer::audit_proofs() {
    const auto kernel = KernelPortIndex::read();
    if (!kernel) {
        std::cerr << "multistackd: the audit cannot read the kernel's socket table (sock_diag): " << std::strerror(errno)
                  << "\n";
    }
    for (auto& [fd, s] : sessions_) audit_session(s, kernel ? &*kernel : nullptr);
    ctx_.sw.registry().sweep_groups(sw::PortGroup::current_tick());
    sweep_parcels();
    arm_audit_timer();
}

void ControlServer::audit_session(ClientSession& s, const KernelPortIndex* kernel) {
    for (std::size_t i = s.claims.size(); i-- > 0;) {
        const HeldClaim& c = s.claims[i];
        const auto holds = proof_still_holds(c.socket_fd, c.proven, ctx_.proof_scope, kernel);
        if (holds) continue;
        ++counters_.claims_revoked;
        std::cerr << "multistackd: port " << *s.port << ": claim of " << describe(c.proven.key)
                  << " revoked: " << to_string(holds.error()) << " since the claim\n";
        release_claim(s, i);
    }
}

void ControlServer::arm_audit_timer() {
    // Armed or disarmed only on a change, so that a stream of claims never postpones it.
    constexpr long kAuditPeriodNs = 500'000'000;
    const bool wanted = held_claims_ > 0 || parcels_.size() > 0;
    if (wanted == audit_armed_) return;
    audit_armed_ = wanted;
    set_period(audit_timer_fd_, wanted ? kAuditPeriodNs : 0);
}

}  // namespace ms::daemon
