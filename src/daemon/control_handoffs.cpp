// The control plane's connections that move between processes (control_server.hpp,
// parcels.hpp, docs/DESIGN.md §7 "Connections that move"). A hand-off is checked as
// hostile input: the sender's port must hold the connection's claim, the image must be a
// memfd of the size it says, within ctl::kMaxImageBytes, that the daemon can seal, and the
// readiness end a socket; the user is charged for what the daemon holds. A take-over is
// authorised by the descriptor alone: the process that presents a descriptor of the
// connection's socket takes it, whatever its user, as the kernel lets the holder of a
// descriptor use it.
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <iostream>

#include "ctl/claim.hpp"
#include "daemon/control_server.hpp"

namespace ms::daemon {
namespace {

std::string describe_flow(const ctl::Claim& local, const wire::IpAddr& remote, std::uint16_t remote_port) {
    return local.addr.to_string() + ":" + std::to_string(local.port) + " <- " + remote.to_string() + ":" +
           std::to_string(remote_port);
}

// Whether `fd` is a memfd of exactly `bytes`, now sealed against every change.
bool sealed_image(int fd, std::uint64_t bytes) {
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || static_cast<std::uint64_t>(st.st_size) != bytes) return false;
    constexpr int kNeeded = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
    const int seals = ::fcntl(fd, F_GET_SEALS);
    if (seals >= 0 && (seals & kNeeded) == kNeeded) return true;  // sealed so already
    return ::fcntl(fd, F_ADD_SEALS, kNeeded | F_SEAL_SEAL) == 0;
}

template <class WithRemote>
wire::IpAddr remote_of(const WithRemote& req) {
    wire::IpAddr a;
    a.family = req.remote_family == 6 ? wire::IpFamily::v6 : wire::IpFamily::v4;
    std::memcpy(a.bytes.data(), req.remote, a.bytes.size());
    return a;
}

}  // namespace

void ControlServer::on_hand_off(ClientSession& s, const ctl::HandOffRequest& req, std::vector<int>& fds) {
    if (!s.port) return reply_status(s, req.h, ctl::Status::not_attached);
    const ctl::Claim local = ctl::from_tuple(req.local);
    const bool well_formed = fds.size() == 2 && local.protocol == IPPROTO_TCP && req.remote_port != 0 &&
                             (req.remote_family == 4 || req.remote_family == 6) && req.token_inode != 0 &&
                             req.image_bytes > 0 && req.image_bytes <= ctl::kMaxImageBytes;
    if (!well_formed) return reply_status(s, req.h, ctl::Status::bad_request);
    const HeldClaim* claim = covering_claim(s, local);
    if (!claim) return reply_status(s, req.h, ctl::Status::not_found);
    if (!socket_identity(fds[1]) || !sealed_image(fds[0], req.image_bytes)) {
        return reply_status(s, req.h, ctl::Status::bad_request);
    }
    if (auto charged = users_.add_handoff(s.peer, req.image_bytes, Parcels::kDescriptorsPerParcel); !charged) {
        count_limit(s, charged.error());
        return reply_status(s, req.h, ctl::Status::limit_reached);
    }
    const int proof_copy = ::fcntl(claim->socket_fd, F_DUPFD_CLOEXEC, 0);
    const wire::IpAddr remote = remote_of(req);
    const Parcel p{.token = {req.token_device, req.token_inode},
                   .image_fd = fds[0],
                   .ready_fd = fds[1],
                   .proof_fd = proof_copy,
                   .image_bytes = req.image_bytes,
                   .proven = claim->proven,
                   .flow = sw::FlowKey(remote, req.remote_port, local.addr, local.port),
                   .from = s.peer,
                   .number = parcels_.next_number(),
                   .expires = std::chrono::steady_clock::now() + Parcels::kKeep};
    if (proof_copy < 0 || !parcels_.put(p)) {
        if (proof_copy >= 0) reaper_.discard(proof_copy, s.peer.uid);
        users_.remove_handoff(s.peer, req.image_bytes, Parcels::kDescriptorsPerParcel);
        return reply_status(s, req.h, proof_copy < 0 ? ctl::Status::no_resources : ctl::Status::address_in_use);
    }
    fds.clear();  // the parcel owns them now
    arm_audit_timer();
    std::cerr << "multistackd: port " << *s.port << " hands off " << describe_flow(local, remote, req.remote_port) << " ("
              << req.image_bytes << " bytes of state)\n";
    ctl::HandOffReply rep;
    rep.h.seq = req.h.seq;
    rep.parcel = p.number;
    reply(s, rep);
}

void ControlServer::on_take_over(ClientSession& s, const ctl::TakeOverRequest& req, std::vector<int>& fds) {
    if (!s.port) return reply_status(s, req.h, ctl::Status::not_attached);
    const auto token = fds.size() == 1 ? socket_identity(fds[0]) : std::nullopt;
    if (!token) return reply_status(s, req.h, ctl::Status::bad_socket);
    auto p = parcels_.take(*token);
    if (!p) return reply_status(s, req.h, ctl::Status::not_found);
    users_.remove_handoff(p->from, p->image_bytes, Parcels::kDescriptorsPerParcel);
    auto joined = join_for_parcel(s, *p);
    release_parcel_claim(*p);
    const bool steered = joined && (steer_to(p->proven.key, p->flow, *s.port) ||
                                    (p->proven.ipv4_twin && steer_to(*p->proven.ipv4_twin, p->flow, *s.port)));
    if (!steered) {
        ++counters_.handoffs_dropped;
        std::cerr << "multistackd: port " << *s.port << " cannot take up a connection: "
                  << (joined ? "the claim's flow table is full" : "it cannot join the connection's claim") << "\n";
        discard_parcel(*p);
        return reply_status(s, req.h, joined ? ctl::Status::limit_reached : joined.error());
    }
    ++counters_.handoffs_taken;
    reply_with_parcel(s, req.h, *p);
    std::cerr << "multistackd: port " << *s.port << " takes up a connection of " << p->proven.key.addr.to_string() << ":"
              << p->proven.key.port << "\n";
}

void ControlServer::on_proof_copy(ClientSession& s, const ctl::ProofCopyRequest& req) {
    const auto i = s.port ? held_index(s, req.tuple) : std::nullopt;
    if (!i) return reply_status(s, req.h, ctl::Status::not_found);
    const HeldClaim& claim = s.claims[*i];
    // The socket is a capability: only the user that owns it gets a copy.
    if (claim.proven.owner_uid != s.peer.uid) return reply_status(s, req.h, ctl::Status::permission_denied);
    ctl::Header rep = req.h;
    rep.status = ctl::Status::ok;
    const int proof[] = {claim.socket_fd};
    reply(s, rep, proof);
}

void ControlServer::on_reclaim(ClientSession& s, const ctl::ReclaimRequest& req) {
    auto p = parcels_.reclaim(req.parcel, s.peer.uid);
    if (!p) return reply_status(s, req.h, ctl::Status::not_found);
    users_.remove_handoff(p->from, p->image_bytes, Parcels::kDescriptorsPerParcel);
    reaper_.discard(p->proof_fd, p->from.uid);
    release_parcel_claim(*p);
    ++counters_.handoffs_reclaimed;
    reply_with_parcel(s, req.h, *p);
    std::cerr << "multistackd: a connection of " << p->proven.key.addr.to_string() << ":" << p->proven.key.port
              << " nobody took up goes back to pid " << s.peer.pid << "\n";
}

void ControlServer::reply_with_parcel(ClientSession& s, const ctl::Header& req, const Parcel& p) {
    ctl::TakeOverReply rep;
    rep.h.op = req.op;
    rep.h.seq = req.seq;
    rep.image_bytes = p.image_bytes;
    rep.claim = ctl::to_tuple({p.proven.key.protocol, p.proven.key.addr, p.proven.key.port});
    const int sent[] = {p.image_fd, p.ready_fd};
    reply(s, rep, sent);
    reaper_.discard(p.image_fd, p.from.uid);
    reaper_.discard(p.ready_fd, p.from.uid);
}

const ControlServer::HeldClaim* ControlServer::covering_claim(const ClientSession& s, const ctl::Claim& local) const {
    for (const HeldClaim& c : s.claims) {
        for (const auto* key : {&c.proven.key, c.proven.ipv4_twin ? &*c.proven.ipv4_twin : nullptr}) {
            if (key && key->protocol == IPPROTO_TCP && key->port == local.port &&
                (key->addr == local.addr || (key->addr.is_any() && key->addr.family == local.addr.family))) {
                return &c;
            }
        }
    }
    return nullptr;
}

bool ControlServer::steer_to(const sw::ClaimKey& key, const sw::FlowKey& flow, sw::PortId port) {
    const sw::ClaimHolder holder = ctx_.sw.registry().read().find_exact(key);
    if (!holder.group && holder.port == port) return true;  // its sole holder: everything comes to it
    return static_cast<bool>(ctx_.sw.registry().move_flow(key, flow, port));
}

base::Result<base::Done, ctl::Status> ControlServer::join_for_parcel(ClientSession& s, const Parcel& p) {
    const bool held = std::any_of(s.claims.begin(), s.claims.end(),
                                  [&](const HeldClaim& c) { return c.proven.key == p.proven.key; });
    if (held) {
        reaper_.discard(p.proof_fd, p.from.uid);
        return base::Done{};
    }
    if (auto charged = charge_claim(s); !charged) {
        reaper_.discard(p.proof_fd, p.from.uid);
        count_limit(s, charged.error());
        return ctl::Status::limit_reached;
    }
    // Joined, when a process holds the claim still; else held anew with the parcel's proof
    // (the sender exec'd, and its session, which held the claim, ended).
    auto joined = join_holder(s, p.proven, sw::MemberRole::draining, JoinRule::same_socket_only);
    const bool alone = !joined && joined.error() == ctl::Status::not_found && hold(s, p.proven.key, sw::MemberRole::serving);
    if (alone && p.proven.ipv4_twin) (void)hold(s, *p.proven.ipv4_twin, sw::MemberRole::serving);
    if (!joined && !alone) {
        users_.remove_claim(s.peer);
        reaper_.discard(p.proof_fd, p.from.uid);
        return joined.error();
    }
    keep_claim(s, HeldTuple{p.proven, alone ? Holding::alone : Holding::joined}, p.proof_fd);
    return base::Done{};
}

void ControlServer::release_parcel_claim(const Parcel& p) {
    for (const auto* key : {&p.proven.key, p.proven.ipv4_twin ? &*p.proven.ipv4_twin : nullptr}) {
        if (key && !ctx_.sw.registry().read().find_exact(*key) && !parcels_.references(*key)) {
            ctx_.data_path.unmirror_claim(*key);
        }
    }
}

// What a parcel holds came from clients: its closes go through the Reaper, never the
// control thread (a UNIX socket's last close releases what is in flight inside it).
void ControlServer::discard_parcel(const Parcel& p) {
    for (int fd : {p.image_fd, p.ready_fd, p.proof_fd}) {
        if (fd >= 0) reaper_.discard(fd, p.from.uid);
    }
}

void ControlServer::sweep_parcels() {
    std::vector<Parcel> dropped;
    parcels_.sweep(std::chrono::steady_clock::now(), [&](const Parcel& p) {
        dropped.push_back(p);  // its descriptors are ours now: the Reaper closes them
        users_.remove_handoff(p.from, p.image_bytes, Parcels::kDescriptorsPerParcel);
        ++counters_.handoffs_dropped;
        std::cerr << "multistackd: a connection of " << p.proven.key.addr.to_string() << ":" << p.proven.key.port
                  << " handed off by pid " << p.from.pid << " was never taken up; dropped\n";
    });
    for (const Parcel& p : dropped) {
        discard_parcel(p);
        release_parcel_claim(p);
    }
}

void ControlServer::on_restore_flows(ClientSession& s, const ctl::RestoreFlowsRequest& req) {
    if (!s.port) return reply_status(s, req.h, ctl::Status::not_attached);
    if (req.count > ctl::RestoreFlowsRequest::kMaxFlows) return reply_status(s, req.h, ctl::Status::bad_request);
    ctl::RestoreFlowsReply rep;
    rep.h.seq = req.h.seq;
    for (std::uint32_t k = 0; k < req.count; ++k) {
        const ctl::RestoredFlow& f = req.flows[k];
        const ctl::Claim local = ctl::from_tuple(f.local);
        const HeldClaim* claim = local.protocol == IPPROTO_TCP ? covering_claim(s, local) : nullptr;
        if (!claim) continue;
        const sw::FlowKey flow(remote_of(f), f.remote_port, local.addr, local.port);
        const sw::ClaimKey& key = local.addr.family == claim->proven.key.addr.family || !claim->proven.ipv4_twin
                                      ? claim->proven.key
                                      : *claim->proven.ipv4_twin;
        if (steer_to(key, flow, *s.port)) ++rep.recorded;
    }
    reply(s, rep);
}

}  // namespace ms::daemon
