// The control plane's part of a hand-over between daemons (control_server.hpp, docs/DESIGN.md
// §6, "Hand-over"): the giver stops serving and describes its listening socket and its
// sessions, with their ports and claims; the taker serves the same descriptors on, each
// session charged to its user again and each claim mirrored into its own XDP map. Clients
// see a pause, and no message of theirs is lost: what they sent meanwhile waits in their
// sockets for the taker.
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <iostream>

#include "daemon/control_server.hpp"

namespace ms::daemon {
namespace {

bool is_listening_seqpacket(int fd) {
    int type = 0;
    int listening = 0;
    socklen_t len = sizeof type;
    if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_SEQPACKET) return false;
    len = sizeof listening;
    return ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening != 0;
}

void close_session_descriptors(const HandedOverSession& st) {
    ::close(st.fd);
    for (const HandedOverClaim& c : st.claims) ::close(c.proof_fd);
}

}  // namespace

void ControlServer::on_hand_over(ClientSession& s, const ctl::Header& req) {
    if (!s.peer.privileged || s.peer.uid != 0) {
        std::cerr << "multistackd: pid " << s.peer.pid << " uid " << s.peer.uid
                  << " asked to take over: refused, only root may\n";
        return reply_status(s, req, ctl::Status::permission_denied);
    }
    std::cerr << "multistackd: pid " << s.peer.pid << " asks to take over\n";
    hand_over_fd_ = s.fd;
}

base::Result<ControlState, ctl::Status> ControlServer::hand_over_state(int requester) {
    if (parcels_.size() > 0) return ctl::Status::busy;
    for (auto& [fd, s] : sessions_) {
        if (fd == requester) continue;
        if (s.capture) end_capture(s);
        if (s.out.pending() && !s.out.flush()) s.doomed = true;
        if (s.out.pending() && !s.doomed) {
            std::cerr << "multistackd: pid " << s.peer.pid << " dropped before the hand-over: it has not read its replies\n";
            s.doomed = true;
        }
    }
    close_doomed_sessions();
    ControlState st{listen_fd_, counters_, {}};
    for (const auto& [fd, s] : sessions_) {
        if (fd == requester) continue;
        HandedOverSession& out = st.sessions.emplace_back();
        out.fd = fd;
        out.port = s.port;
        for (const HeldClaim& c : s.claims) out.claims.push_back({c.proven, c.socket_fd, c.joined});
        if (s.resolve) out.resolve = HandedOverResolve{s.resolve->seq, s.resolve->next_hop};
    }
    return st;
}

void ControlServer::hand_over_refused(int requester) {
    if (auto it = sessions_.find(requester); it != sessions_.end()) it->second.doomed = true;
    close_doomed_sessions();
    std::cerr << "multistackd: the hand-over did not happen; serving on\n";
}

base::Result<std::unique_ptr<ControlServer>, ServerOpenFailure> ControlServer::adopt(ServerContext ctx, std::string path,
                                                                                     ControlState state) {
    auto close_all = [&state] {
        ::close(state.listen_fd);
        for (const auto& s : state.sessions) close_session_descriptors(s);
    };
    const auto fitted = fit_limits(ctx.limits, own_capacity(ctx.data_path.claim_capacity()));
    if (!fitted) {
        close_all();
        return ServerOpenFailure{ServerOpenError::limits_do_not_fit, fitted.error().message};
    }
    ctx.limits = *fitted;
    if (!is_listening_seqpacket(state.listen_fd)) {
        close_all();
        return ServerOpenFailure{ServerOpenError::socket, path + ": the handed-over control socket is not listening"};
    }
    auto reaper = Reaper::start();
    if (!reaper) {
        close_all();
        return ServerOpenFailure{ServerOpenError::reaper, "the Reaper's thread would not start"};
    }
    std::unique_ptr<ControlServer> server(new ControlServer(std::move(ctx), std::move(path), std::move(reaper).value()));
    server->listen_fd_ = state.listen_fd;
    server->bound_ = true;  // the file at the path is this socket's
    server->counters_ = state.counters;
    if (auto looping = server->open_event_loop(); !looping) {
        for (const auto& s : state.sessions) close_session_descriptors(s);
        return looping.error();
    }
    std::size_t refused = 0;
    for (auto& s : state.sessions) refused += server->adopt_session(std::move(s)) ? 0 : 1;
    server->close_doomed_sessions();
    server->arm_audit_timer();
    server->arm_tick_timer();
    std::cerr << "multistackd: took over " << state.sessions.size() - refused << " session(s)";
    if (refused > 0) std::cerr << "; " << refused << " closed, over this daemon's limits";
    std::cerr << "\n";
    return server;
}

std::optional<LimitHit> ControlServer::charge_handed_over_claim(const ClientSession& s, bool joined) {
    if (auto charged = charge_claim(s); !charged) return charged.error();
    if (!joined) return std::nullopt;
    if (auto shared = users_.add_shared_claim(s.peer); !shared) {
        users_.remove_claim(s.peer);
        return shared.error();
    }
    return std::nullopt;
}

bool ControlServer::adopt_session(HandedOverSession st) {
    const Peer peer = identify_peer(st.fd);
    if (auto opened = users_.open_session(peer); !opened) {
        std::cerr << "multistackd: pid " << peer.pid << " uid " << peer.uid
                  << " not taken over: " << to_string(opened.error()) << " limit reached\n";
        if (st.port) ctx_.sw.detach_port(*st.port);
        close_session_descriptors(st);
        return false;
    }
    ClientSession& s = sessions_.try_emplace(st.fd, st.fd, peer, ctx_.limits.outbox_bytes).first->second;
    watch_readable(st.fd);
    std::optional<LimitHit> over;
    if (st.port && ctx_.sw.has_port(*st.port)) {
        const sw::Port& port = ctx_.sw.port(*st.port);
        const std::uint64_t bytes = port.region.layout().region_size;
        const std::uint32_t fds = port_descriptors(static_cast<std::uint32_t>(port.rings.size()));
        if (auto charged = users_.add_port(peer, bytes, fds); charged) {
            s.port = *st.port;
            s.port_bytes = bytes;
            s.port_fds = fds;
        } else {
            over = charged.error();
            ctx_.sw.detach_port(*st.port);
        }
    }
    for (const HandedOverClaim& c : st.claims) {
        if (s.port && !over) over = charge_handed_over_claim(s, c.joined);
        if (!s.port || over) {  // a claim without its port, or beyond the user's limits, ends here
            ::close(c.proof_fd);
            continue;
        }
        keep_claim(s, {c.proven, c.joined ? Holding::joined : Holding::alone}, c.proof_fd);
        if (!c.joined) {
            (void)ctx_.data_path.mirror_claim(c.proven.key);
            if (c.proven.ipv4_twin) (void)ctx_.data_path.mirror_claim(*c.proven.ipv4_twin);
        }
    }
    if (st.resolve) {
        s.resolve = PendingResolve{st.resolve->seq, st.resolve->next_hop, std::chrono::steady_clock::now() + kResolveWait};
    }
    if (!over) return true;
    count_limit(s, *over);
    s.doomed = true;
    return false;
}

}  // namespace ms::daemon
