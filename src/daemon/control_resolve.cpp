// The control plane's next-hop resolution (control_server.hpp): the route's next hop and
// its MAC address from the kernel (DataPath). A neighbour the kernel is still resolving
// is looked at again on every tick, for up to a second, and then answered unreachable.
#include <chrono>
#include <cstring>

#include "daemon/control_server.hpp"

namespace ms::daemon {

void ControlServer::on_resolve(ClientSession& s, const ctl::ResolveRequest& req) {
    if (s.resolve || (req.family != 4 && req.family != 6)) return reply_status(s, req.h, ctl::Status::bad_request);
    wire::IpAddr dst{req.family == 4 ? wire::IpFamily::v4 : wire::IpFamily::v6, {}};
    std::memcpy(dst.bytes.data(), req.addr, dst.size());
    const auto hop = ctx_.data_path.next_hop(dst);
    if (!hop) return reply_status(s, req.h, ctl::Status::no_route);
    if (try_resolve(s, req.h.seq, *hop)) return;
    // The kernel is resolving it; look again on every tick, for up to a second.
    s.resolve = PendingResolve{req.h.seq, *hop, std::chrono::steady_clock::now() + kResolveWait};
    arm_tick_timer();
}

bool ControlServer::try_resolve(ClientSession& s, std::uint32_t seq, const wire::IpAddr& next_hop) {
    wire::MacAddr mac;
    switch (ctx_.data_path.neighbour(next_hop, mac)) {
        case netlink::NeighbourState::pending: return false;
        case netlink::NeighbourState::failed:
            reply_status(s, ctl::Header{.op = ctl::Op::resolve, .seq = seq}, ctl::Status::unreachable);
            return true;
        case netlink::NeighbourState::reachable: break;
    }
    ctl::ResolveReply rep;
    rep.h.seq = seq;
    std::memcpy(rep.mac, mac.octets.data(), 6);
    rep.next_hop_family = static_cast<std::uint8_t>(next_hop.family);
    std::memcpy(rep.next_hop, next_hop.bytes.data(), 16);
    reply(s, rep);
    return true;
}

void ControlServer::retry_resolve(ClientSession& s) {
    const PendingResolve r = *s.resolve;
    if (try_resolve(s, r.seq, r.next_hop)) {
        s.resolve.reset();
    } else if (std::chrono::steady_clock::now() >= r.deadline) {
        reply_status(s, ctl::Header{.op = ctl::Op::resolve, .seq = r.seq}, ctl::Status::unreachable);
        s.resolve.reset();
    }
}

}  // namespace ms::daemon
