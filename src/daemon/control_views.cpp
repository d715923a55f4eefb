// The control plane's operations that show the daemon and its ports (control_server.hpp):
// info, status, the lists of ports and claims, applications' socket tables, captures
// and next-hop resolution, with the tick that drives captures and resolves. Split from
// control_server.cpp (transport, sessions and claims); the same class.
#include <sys/socket.h>
#include <time.h>

#include <chrono>
#include <cstring>
#include <iostream>
#include <memory>

#include "ctl/claim.hpp"
#include "daemon/control_server.hpp"
#include "daemon/descriptors.hpp"

namespace ms::daemon {
namespace {

static_assert(sw::kDropReasonCount <= ctl::kDropSlots);
static_assert(ring::kRingFaultCount <= ctl::kFaultSlots);

// The send buffer of a session that captures: some 400 frames of the largest size.
constexpr int kCaptureSocketBytes = 1 << 20;

template <std::size_t N>
void copy_counts(std::uint64_t (&out)[N], const auto& in) {
    for (std::size_t i = 0; i < in.size() && i < N; ++i) out[i] = in[i];
}

}  // namespace

void ControlServer::on_info(Session& s, const ctl::Header& req) {
    ctl::InfoReply rep;
    rep.h.seq = req.seq;
    std::memcpy(rep.mac, ctx_.iface.mac.octets.data(), 6);
    // A port's frames are bounded by ring::kMaxFrameSize: an untagged frame of the MTU
    // plus its 14-byte header and room for one 4-byte VLAN tag.
    constexpr unsigned kLargestMtu = ring::kMaxFrameSize - 18;
    rep.mtu = static_cast<std::uint16_t>(std::min(ctx_.iface.mtu, kLargestMtu));
    rep.ifindex = ctx_.iface.ifindex;
    for (const netlink::InterfaceAddress& a : ctx_.iface.addresses) {
        if (rep.address_count == ctl::InfoReply::kMaxAddresses) break;
        std::memcpy(rep.addresses[rep.address_count], a.addr.bytes.data(), 16);
        rep.address_families[rep.address_count] = static_cast<std::uint8_t>(a.addr.family);
        rep.prefix_lengths[rep.address_count] = a.prefix_length;
        ++rep.address_count;
    }
    if (ctx_.iface.gateway) {
        rep.gateway_family = 4;
        std::memcpy(rep.gateway, ctx_.iface.gateway->bytes.data(), 16);
    }
    reply(s, rep);
}

void ControlServer::on_status(Session& s, const ctl::Header& req) {
    ctl::StatusReply rep;
    rep.h.seq = req.seq;
    std::strncpy(rep.ifname, ctx_.iface.name.c_str(), sizeof rep.ifname - 1);
    rep.ifindex = ctx_.iface.ifindex;
    const DataPathStatus dp = ctx_.data_path.status();
    rep.xdp_native = dp.xdp_native;
    rep.zero_copy = dp.zero_copy;
    rep.queues = static_cast<std::uint16_t>(dp.queues);
    rep.workers = static_cast<std::uint16_t>(ctx_.sw.config().workers);
    rep.ports = static_cast<std::uint16_t>(ctx_.sw.port_ids().size());
    rep.claims = static_cast<std::uint32_t>(ctx_.sw.registry().size());
    rep.pid = static_cast<std::uint32_t>(::getpid());
    const sw::StatsSnapshot nic = ctx_.sw.nic_stats();
    rep.nic_rx_frames = nic.rx_frames;
    rep.nic_tx_frames = nic.tx_frames;
    rep.xdp_claimed = dp.to_switch;
    rep.xdp_passed = dp.to_kernel;
    copy_counts(rep.nic_drops, nic.drops);
    copy_counts(rep.handoff_drops, ctx_.sw.handoff_stats().drops);
    rep.sessions = static_cast<std::uint32_t>(sessions_.size());
    rep.open_descriptors = open_descriptor_count();
    rep.bad_requests = counters_.bad_requests;
    rep.slow_clients = counters_.slow_clients;
    rep.claims_refused = counters_.claims_refused;
    rep.claims_revoked = counters_.claims_revoked;
    rep.limits_reached = counters_.limits_reached;
    rep.descriptors_exhausted = counters_.descriptors_exhausted;
    rep.nic_tx_offloaded = nic.tx_super;
    rep.segmentation_offload = dp.segmentation_offload;
    reply(s, rep);
}

const ControlServer::Session* ControlServer::owner_of(sw::PortId port) const {
    for (const auto& [fd, s] : sessions_) {
        if (s.port == port) return &s;
    }
    return nullptr;
}

bool ControlServer::may_inspect(const Session& s, sw::PortId port) const {
    if (s.peer.privileged) return true;
    const Session* owner = owner_of(port);
    return owner && owner->peer.uid == s.peer.uid;
}

void ControlServer::on_list_ports(Session& s, const ctl::Header& req) {
    for (sw::PortId id : ctx_.sw.port_ids()) {
        ctl::PortEntry e;
        e.h.seq = req.seq;
        e.port_id = id;
        sw::Port& port = ctx_.sw.port(id);
        e.ring_pairs = static_cast<std::uint32_t>(port.rings.size());
        e.failed = port.is_failed();
        const Session* owner = owner_of(id);
        if (owner && may_inspect(s, id)) {
            e.shown = 1;
            e.pid = owner->peer.pid;
            e.uid = owner->peer.uid;
            e.claims = static_cast<std::uint32_t>(owner->claims.size());
            const sw::StatsSnapshot st = ctx_.sw.port_stats(id);
            e.rx_frames = st.rx_frames;
            e.rx_bytes = st.rx_bytes;
            e.tx_frames = st.tx_frames;
            e.tx_bytes = st.tx_bytes;
            e.tx_super = st.tx_super;
            e.tx_segmented = st.tx_segmented;
            copy_counts(e.drops, st.drops);
            copy_counts(e.faults, st.faults);
        }
        reply(s, e);
    }
    reply_status(s, ctl::Header{.op = ctl::Op::list_end, .seq = req.seq}, ctl::Status::ok);
}

void ControlServer::on_list_claims(Session& s, const ctl::Header& req) {
    for (const auto& entry : ctx_.sw.registry().entries()) {
        ctl::ClaimEntry e;
        e.h.seq = req.seq;
        e.port_id = entry.port;
        e.tuple = ctl::to_tuple({entry.key.protocol, entry.key.addr, entry.key.port});
        reply(s, e);
    }
    reply_status(s, ctl::Header{.op = ctl::Op::list_end, .seq = req.seq}, ctl::Status::ok);
}

// The application's socket table is hostile memory: ring::read_page copies a page under
// its sequence lock and validates every record before any is shown.
void ControlServer::on_sockets(Session& s, const ctl::SocketsRequest& req) {
    if (req.port_id >= sw::kNoPort || !ctx_.sw.has_port(static_cast<sw::PortId>(req.port_id))) {
        return reply_status(s, req.h, ctl::Status::not_found);
    }
    const auto id = static_cast<sw::PortId>(req.port_id);
    if (!may_inspect(s, id)) return reply_status(s, req.h, ctl::Status::permission_denied);
    sw::Port& port = ctx_.sw.port(id);
    std::uint8_t* table = port.region.base() + port.region.layout().sockets_offset;
    ctl::SocketsReply rep;
    rep.h.seq = req.h.seq;
    rep.port_id = req.port_id;
    rep.first = req.first;
    if (req.refresh) {
        ring::request_sockets(table);
        port.rings.front()->to_app.notify();  // the application may be asleep
        return reply(s, rep);
    }
    ring::SocketPage page;
    std::size_t kept = 0;
    if (ring::read_page(table, req.first, rep.record, page, kept) == ring::PageRead::busy) {
        return reply_status(s, req.h, ctl::Status::busy);
    }
    const auto now_ms = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
    rep.generation = page.generation;
    rep.count = page.count;
    rep.total = page.total;
    rep.age_ms = now_ms > page.published_ms ? now_ms - page.published_ms : 0;
    rep.records = static_cast<std::uint32_t>(kept);
    rep.invalid = page.invalid;
    reply(s, rep);
}

void ControlServer::on_capture(Session& s, const ctl::CaptureRequest& req) {
    if (s.capture) return reply_status(s, req.h, ctl::Status::busy);
    if (req.port_id >= sw::kNoPort || !ctx_.sw.has_port(static_cast<sw::PortId>(req.port_id))) {
        return reply_status(s, req.h, ctl::Status::not_found);
    }
    const auto port = static_cast<sw::PortId>(req.port_id);
    // Defends other users' traffic: only the owner's uid, or a privileged peer, may see it.
    if (!may_inspect(s, port)) return reply_status(s, req.h, ctl::Status::permission_denied);
    const auto ticket = ctx_.sw.start_capture(port);
    if (!ticket) return reply_status(s, req.h, ctl::Status::busy);
    // Room for a burst of frames between two ticks; the client's own receive buffer is its
    // business. Beyond this a capture loses frames (counted), never stalls the daemon.
    const int room = kCaptureSocketBytes;
    (void)::setsockopt(s.fd, SOL_SOCKET, SO_SNDBUFFORCE, &room, sizeof room);
    Capture cap{*ticket, req.h.seq, req.max_frames ? req.max_frames : UINT64_MAX, std::nullopt};
    if (req.milliseconds) cap.deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(req.milliseconds);
    s.capture = cap;
    arm_tick_timer();
    std::cerr << "multistackd: capture of port " << port << " started by pid " << s.peer.pid << " uid " << s.peer.uid
              << "\n";
}

void ControlServer::tick() {
    resume_paused_sessions();
    for (auto& [fd, s] : sessions_) {
        if (s.doomed) continue;
        if (s.capture) pump_capture(s);
        if (s.resolve) {
            const Resolve r = *s.resolve;
            if (try_resolve(s, r.seq, r.next_hop)) {
                s.resolve.reset();
            } else if (std::chrono::steady_clock::now() >= r.deadline) {
                reply_status(s, ctl::Header{.op = ctl::Op::resolve, .seq = r.seq}, ctl::Status::unreachable);
                s.resolve.reset();
            }
        }
        update_interest(s);
    }
    close_doomed_sessions();
    arm_tick_timer();
}

void ControlServer::pump_capture(Session& s) {
    Capture& cap = *s.capture;
    auto frame = std::make_unique<ctl::CaptureFrame>();
    timespec now{};
    ::clock_gettime(CLOCK_REALTIME, &now);
    ctx_.sw.drain_capture(cap.ticket, [&](wire::Bytes f, sw::TapDirection d) {
        if (cap.remaining == 0) return;
        frame->h.seq = cap.seq;
        frame->timestamp_ns = static_cast<std::uint64_t>(now.tv_sec) * 1'000'000'000ull + static_cast<std::uint64_t>(now.tv_nsec);
        frame->len = static_cast<std::uint16_t>(f.size());  // at most ring::kMaxFrameSize (FrameCell)
        frame->from_application = d == sw::TapDirection::from_application;
        std::memcpy(frame->data, f.data(), f.size());
        // A client that cannot keep up loses frames; it never stalls the daemon.
        if (!s.out.offer(frame.get(), sizeof *frame)) {
            ++cap.lost;
            return;
        }
        ++cap.sent;
        if (cap.remaining != UINT64_MAX) --cap.remaining;
    });
    const bool done = cap.remaining == 0 || !ctx_.sw.capture_running(cap.ticket) ||
                      (cap.deadline && std::chrono::steady_clock::now() >= *cap.deadline);
    if (done) end_capture(s);
}

void ControlServer::on_resolve(Session& s, const ctl::ResolveRequest& req) {
    if (s.resolve || (req.family != 4 && req.family != 6)) return reply_status(s, req.h, ctl::Status::bad_request);
    wire::IpAddr dst{req.family == 4 ? wire::IpFamily::v4 : wire::IpFamily::v6, {}};
    std::memcpy(dst.bytes.data(), req.addr, dst.size());
    const auto hop = ctx_.data_path.next_hop(dst);
    if (!hop) return reply_status(s, req.h, ctl::Status::no_route);
    if (try_resolve(s, req.h.seq, *hop)) return;
    // The kernel is resolving it; look again on every tick, for up to a second.
    s.resolve = Resolve{req.h.seq, *hop, std::chrono::steady_clock::now() + std::chrono::seconds(1)};
    arm_tick_timer();
}

bool ControlServer::try_resolve(Session& s, std::uint32_t seq, const wire::IpAddr& next_hop) {
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

void ControlServer::end_capture(Session& s) {
    Capture& cap = *s.capture;
    ctl::CaptureEnd end;
    end.h.seq = cap.seq;
    end.frames = cap.sent;
    end.lost = cap.lost + ctx_.sw.capture_overflows(cap.ticket);
    ctx_.sw.stop_capture(cap.ticket);
    reply(s, end);
    std::cerr << "multistackd: capture of port " << cap.ticket.port << " ended: " << cap.sent << " frames\n";
    s.capture.reset();
}

}  // namespace ms::daemon
