// The control plane's views (control_server.hpp): info, status, the lists of ports and
// claims, and applications' socket tables. Read-only; a port's details are shown only to
// its owner's uid or a privileged peer (may_inspect).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "ctl/claim.hpp"
#include "daemon/control_server.hpp"
#include "daemon/descriptors.hpp"

namespace ms::daemon {
namespace {

static_assert(sw::kDropReasonCount <= ctl::kDropSlots);
static_assert(ring::kRingFaultCount <= ctl::kFaultSlots);

template <std::size_t N>
void copy_counts(std::uint64_t (&out)[N], const auto& in) {
    for (std::size_t i = 0; i < in.size() && i < N; ++i) out[i] = in[i];
}

}  // namespace

void ControlServer::on_info(ClientSession& s, const ctl::Header& req) {
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

void ControlServer::on_status(ClientSession& s, const ctl::Header& req) {
    ctl::StatusReply rep;
    rep.h.seq = req.seq;
    std::strncpy(rep.ifname, ctx_.iface.name.c_str(), sizeof rep.ifname - 1);
    rep.ifindex = ctx_.iface.ifindex;
    rep.workers = static_cast<std::uint16_t>(ctx_.sw.config().workers);
    rep.ports = static_cast<std::uint16_t>(ctx_.sw.port_ids().size());
    rep.claims = static_cast<std::uint32_t>(ctx_.sw.registry().size());
    rep.pid = static_cast<std::uint32_t>(::getpid());
    rep.sessions = static_cast<std::uint32_t>(sessions_.size());
    rep.open_descriptors = open_descriptor_count();
    fill_data_path_status(rep);
    fill_control_counters(rep);
    reply(s, rep);
}

void ControlServer::fill_data_path_status(ctl::StatusReply& rep) const {
    const DataPathStatus dp = ctx_.data_path.status();
    rep.xdp_native = dp.xdp_native;
    rep.zero_copy = dp.zero_copy;
    rep.queues = static_cast<std::uint16_t>(dp.queues);
    rep.xdp_claimed = dp.to_switch;
    rep.xdp_passed = dp.to_kernel;
    rep.segmentation_offload = dp.segmentation_offload;
    rep.started_s = started_s_;
    rep.first_start_s = dp.first_start_s != 0 ? dp.first_start_s : started_s_;
    rep.restarts = dp.restarts;
    rep.upgrades = dp.upgrades;
    rep.held_frames = dp.held;
    rep.adopted_waiting = dp.adopted_waiting;
    rep.outage_limit_ms = ctx_.outage_limit_ms;
    const sw::StatsSnapshot nic = ctx_.sw.nic_stats();
    rep.nic_rx_frames = nic.rx_frames;
    rep.nic_tx_frames = nic.tx_frames;
    rep.nic_tx_offloaded = nic.tx_super;
    copy_counts(rep.nic_drops, nic.drops);
    copy_counts(rep.handoff_drops, ctx_.sw.handoff_stats().drops);
    const std::size_t shown = std::min({dp.queues, ctx_.sw.nic_queue_count(), ctl::kQueueSlots});
    for (std::size_t q = 0; q < shown; ++q) {
        const sw::StatsSnapshot one = ctx_.sw.nic_queue_stats(q);
        rep.queue_workers[q] = static_cast<std::uint16_t>(ctx_.sw.nic_queue_worker(q));
        rep.queue_rx_frames[q] = one.rx_frames;
        rep.queue_tx_frames[q] = one.tx_frames;
    }
}

void ControlServer::fill_control_counters(ctl::StatusReply& rep) const {
    rep.bad_requests = counters_.bad_requests;
    rep.slow_clients = counters_.slow_clients;
    rep.claims_refused = counters_.claims_refused;
    rep.handoffs_waiting = static_cast<std::uint32_t>(parcels_.size());
    rep.handoffs_taken = counters_.handoffs_taken;
    rep.handoffs_reclaimed = counters_.handoffs_reclaimed;
    rep.handoffs_dropped = counters_.handoffs_dropped;
    rep.claims_revoked = counters_.claims_revoked;
    rep.limits_reached = counters_.limits_reached;
    rep.descriptors_exhausted = counters_.descriptors_exhausted;
}

const ControlServer::ClientSession* ControlServer::owner_of(sw::PortId port) const {
    for (const auto& [fd, s] : sessions_) {
        if (s.port == port) return &s;
    }
    return nullptr;
}

bool ControlServer::may_inspect(const ClientSession& s, sw::PortId port) const {
    if (s.peer.privileged) return true;
    const ClientSession* owner = owner_of(port);
    return owner && owner->peer.uid == s.peer.uid;
}

void ControlServer::on_list_ports(ClientSession& s, const ctl::Header& req) {
    for (sw::PortId id : ctx_.sw.port_ids()) {
        ctl::PortEntry e;
        e.h.seq = req.seq;
        e.port_id = id;
        sw::Port& port = ctx_.sw.port(id);
        e.ring_pairs = static_cast<std::uint32_t>(port.rings.size());
        e.failed = port.is_failed();
        const ClientSession* owner = owner_of(id);
        if (owner && may_inspect(s, id)) show_port_details(e, *owner, id);
        reply(s, e);
    }
    reply_status(s, ctl::Header{.op = ctl::Op::list_end, .seq = req.seq}, ctl::Status::ok);
}

void ControlServer::show_port_details(ctl::PortEntry& e, const ClientSession& owner, sw::PortId id) const {
    e.shown = 1;
    e.pid = owner.peer.pid;
    e.uid = owner.peer.uid;
    e.claims = static_cast<std::uint32_t>(owner.claims.size());
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

void ControlServer::on_list_claims(ClientSession& s, const ctl::Header& req) {
    for (const auto& claim : ctx_.sw.registry().entries()) {
        for (const auto& member : claim.members) {
            ctl::ClaimEntry e;
            e.h.seq = req.seq;
            e.port_id = member.port;
            e.tuple = ctl::to_tuple({claim.key.protocol, claim.key.addr, claim.key.port});
            e.shared = claim.shared ? 1 : 0;
            e.founder = member.founder ? 1 : 0;
            e.role = member.role == sw::MemberRole::serving   ? ctl::ClaimRole::serving
                     : member.role == sw::MemberRole::standby ? ctl::ClaimRole::standby
                                                              : ctl::ClaimRole::draining;
            e.members = static_cast<std::uint32_t>(claim.members.size());
            e.new_connections = member.new_connections;
            e.group_flows = claim.flows;
            reply(s, e);
        }
    }
    reply_status(s, ctl::Header{.op = ctl::Op::list_end, .seq = req.seq}, ctl::Status::ok);
}

// The application's socket table is hostile memory: ring::read_page copies a page under
// its sequence lock and validates every record before any is shown.
void ControlServer::on_sockets(ClientSession& s, const ctl::SocketsRequest& req) {
    const auto id = inspectable_port(s, req.port_id);
    if (!id) return reply_status(s, req.h, id.error());
    sw::Port& port = ctx_.sw.port(*id);
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
    reply_socket_page(s, req.h, table, rep);
}

void ControlServer::reply_socket_page(ClientSession& s, const ctl::Header& req, const std::uint8_t* table,
                                      ctl::SocketsReply& rep) {
    ring::SocketPage page;
    std::size_t kept = 0;
    if (ring::read_page(table, rep.first, rep.record, page, kept) == ring::PageRead::busy) {
        return reply_status(s, req, ctl::Status::busy);
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

base::Result<sw::PortId, ctl::Status> ControlServer::inspectable_port(const ClientSession& s, std::uint32_t port_id) const {
    if (port_id >= sw::kNoPort || !ctx_.sw.has_port(static_cast<sw::PortId>(port_id))) return ctl::Status::not_found;
    const auto id = static_cast<sw::PortId>(port_id);
    // Defends other users' traffic and tables: only the owner's uid, or a privileged peer.
    if (!may_inspect(s, id)) return ctl::Status::permission_denied;
    return id;
}

}  // namespace ms::daemon
