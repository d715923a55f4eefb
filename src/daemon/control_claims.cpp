// The control plane's claims (control_server.hpp, docs/DESIGN.md §3): a claim is proven
// (claim_proof.hpp), charged to its user, held in the registry and the XDP map, and its
// proof socket kept for its life; a claim made with a proof another session holds moves
// over. Released on request, when the session ends, or when the periodic audit finds
// that its proof no longer holds.
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
        case ProofError::reusable: return ctl::Status::reusable_socket;
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

void ControlServer::on_claim(ClientSession& s, const ctl::Header& req, std::vector<int>& fds) {
    if (!s.port) return reply_status(s, req, ctl::Status::not_attached);
    if (fds.size() != 1) return reply_status(s, req, ctl::Status::bad_socket);
    if (auto charged = charge_claim(s); !charged) {
        count_limit(s, charged.error());
        return reply_status(s, req, ctl::Status::limit_reached);
    }
    const auto held = prove_and_hold(s, fds[0]);
    if (!held) {
        users_.remove_claim(s.peer);  // the charge stands only if the claim is made
        return reply_status(s, req, held.error());
    }
    never_linger(fds[0]);
    keep_claim(s, *held, fds[0]);
    fds.clear();  // the session owns the socket now
    arm_audit_timer();
    ctl::ClaimReply rep;
    rep.h.seq = req.seq;
    rep.claimed = ctl::to_tuple({held->key.protocol, held->key.addr, held->key.port});
    reply(s, rep);
    std::cerr << "multistackd: port " << *s.port << " claims " << describe(held->key)
              << (held->ipv4_twin ? " and " + describe(*held->ipv4_twin) + " (a dual-stack socket)" : "") << "\n";
}

base::Result<base::Done, LimitHit> ControlServer::charge_claim(const ClientSession& s) {
    if (s.claims.size() >= ctx_.limits.claims_per_session) return LimitHit::claims_per_session;
    return users_.add_claim(s.peer);
}

base::Result<ProvenTuple, ctl::Status> ControlServer::prove_and_hold(ClientSession& s, int proof_fd) {
    const auto proof = prove_claim(proof_fd, ctx_.proof_scope);
    if (!proof) {
        ++counters_.claims_refused;
        std::cerr << "multistackd: port " << *s.port << ": claim refused: " << to_string(proof.error()) << "\n";
        return status_for(proof.error());
    }
    if (auto held = hold(s, proof->key); !held) {
        if (held.error() == ctl::Status::address_in_use && take_over(s, *proof)) return *proof;
        return held.error();
    }
    if (proof->ipv4_twin) {
        if (auto also = hold(s, *proof->ipv4_twin); !also) {
            unhold(s, proof->key);
            return also.error();
        }
    }
    return *proof;
}

base::Result<base::Done, ctl::Status> ControlServer::hold(ClientSession& s, const sw::ClaimKey& key) {
    if (!ctx_.sw.registry().add(key, *s.port)) return ctl::Status::address_in_use;
    if (!ctx_.data_path.mirror_claim(key)) {
        (void)ctx_.sw.registry().remove(key, *s.port);
        std::cerr << "multistackd: the XDP claim map refused " << describe(key) << ": " << std::strerror(errno) << "\n";
        return ctl::Status::no_resources;
    }
    return base::Done{};
}

void ControlServer::unhold(ClientSession& s, const sw::ClaimKey& key) {
    (void)ctx_.sw.registry().remove(key, *s.port);
    ctx_.data_path.unmirror_claim(key);
}

// A claim held by another session with the same proof socket moves to `s`'s port (a
// forked worker serving the listener its parent opened); the XDP map is unchanged.
bool ControlServer::take_over(ClientSession& s, const ProvenTuple& proven) {
    const sw::ClaimKey& key = proven.key;
    for (auto& [fd, holder] : sessions_) {
        if (&holder == &s || !holder.port) continue;
        auto held = std::find_if(holder.claims.begin(), holder.claims.end(),
                                 [&](const HeldClaim& c) { return c.proven.key == key && c.proven.cookie == proven.cookie; });
        if (held == holder.claims.end()) continue;
        for (const auto& k : {std::optional<sw::ClaimKey>(key), proven.ipv4_twin}) {
            if (!k) continue;
            (void)ctx_.sw.registry().remove(*k, *holder.port);
            (void)ctx_.sw.registry().add(*k, *s.port);  // it was just freed: the registry's writer is this thread
        }
        forget_claim(holder, held);  // the proof socket lives on in the new claim's copy
        std::cerr << "multistackd: port " << *s.port << " takes " << describe(key) << " over from port " << *holder.port
                  << " (the same proof socket)\n";
        return true;
    }
    return false;
}

void ControlServer::release_claim(ClientSession& s, std::size_t index) {
    const HeldClaim c = s.claims[index];
    unhold(s, c.proven.key);
    if (c.proven.ipv4_twin) unhold(s, *c.proven.ipv4_twin);
    // The kernel frees the port now.
    forget_claim(s, s.claims.begin() + static_cast<long>(index));
}

void ControlServer::keep_claim(ClientSession& s, const ProvenTuple& proven, int proof_fd) {
    s.claims.push_back({proven, proof_fd});
    ++held_claims_;
}

void ControlServer::forget_claim(ClientSession& s, std::vector<HeldClaim>::iterator claim) {
    // The owner may have connected its copy and set a long linger since; the Reaper turns
    // linger off.
    reaper_.discard(claim->socket_fd, s.peer.uid);
    s.claims.erase(claim);
    users_.remove_claim(s.peer);
    --held_claims_;
}

void ControlServer::on_release(ClientSession& s, const ctl::ReleaseRequest& req) {
    const ctl::Claim wanted = ctl::from_tuple(req.tuple);
    for (std::size_t i = 0; i < s.claims.size(); ++i) {
        const sw::ClaimKey& k = s.claims[i].proven.key;
        if (k.protocol == wanted.protocol && k.addr == wanted.addr && k.port == wanted.port) {
            std::cerr << "multistackd: port " << *s.port << " releases " << describe(k) << "\n";
            release_claim(s, i);
            arm_audit_timer();
            return reply_status(s, req.h, ctl::Status::ok);
        }
    }
    reply_status(s, req.h, ctl::Status::not_found);
}

void ControlServer::audit_proofs() {
    const auto kernel = KernelPortIndex::read();
    if (!kernel) {
        std::cerr << "multistackd: the audit cannot read the kernel's socket table (sock_diag): " << std::strerror(errno)
                  << "\n";
    }
    for (auto& [fd, s] : sessions_) audit_session(s, kernel ? &*kernel : nullptr);
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
    const bool wanted = held_claims_ > 0;
    if (wanted == audit_armed_) return;
    audit_armed_ = wanted;
    set_period(audit_timer_fd_, wanted ? kAuditPeriodNs : 0);
}

}  // namespace ms::daemon
