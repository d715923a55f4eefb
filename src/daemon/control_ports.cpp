// The control plane's port operations (control_server.hpp): attach, which checks the
// requested geometry and the user's budget before the switch makes the port and sends
// its memory and eventfds, and the detach when the session ends.
#include <iostream>
#include <stdexcept>

#include "daemon/control_server.hpp"

namespace ms::daemon {

void ControlServer::on_attach(ClientSession& s, const ctl::AttachRequest& req) {
    if (s.port) return reply_status(s, req.h, ctl::Status::already_attached);
    const auto layout = port_layout(req);
    if (!layout) return reply_status(s, req.h, ctl::Status::bad_request);
    const std::uint32_t port_fds = port_descriptors(req.ring_pairs);
    if (auto charged = users_.add_port(s.peer, layout->region_size, port_fds); !charged) {
        count_limit(s, charged.error());
        return reply_status(s, req.h, ctl::Status::limit_reached);
    }
    const auto id = attach_to_switch(req);
    if (!id) {
        users_.remove_port(s.peer, layout->region_size, port_fds);
        return reply_status(s, req.h, id.error());
    }
    s.port = *id;
    s.port_bytes = layout->region_size;
    s.port_fds = port_fds;
    reply_attached(s, req, *id);
}

std::optional<ring::Layout> ControlServer::port_layout(const ctl::AttachRequest& req) const {
    ring::Layout layout;
    if (req.ring_pairs == 0 || req.ring_pairs > ctx_.sw.config().max_ring_pairs || req.slots_per_ring < 2 ||
        req.slots_per_ring > ctx_.max_slots_per_ring ||
        !ring::Layout::compute(req.ring_pairs, req.slots_per_ring, req.data_bytes, layout)) {
        return std::nullopt;
    }
    return layout;
}

// A full port table is the client's to hear of; a failed allocation is logged too.
base::Result<sw::PortId, ctl::Status> ControlServer::attach_to_switch(const ctl::AttachRequest& req) {
    auto attached = ctx_.sw.attach_port({req.ring_pairs, req.slots_per_ring, req.data_bytes});
    if (attached) return *attached;
    if (attached.error().error == sw::SwitchError::full) return ctl::Status::switch_full;
    std::cerr << "multistackd: attach failed: " << attached.error().detail << "\n";
    return ctl::Status::no_resources;
}

void ControlServer::reply_attached(ClientSession& s, const ctl::AttachRequest& req, sw::PortId id) {
    sw::Port& port = ctx_.sw.port(id);
    std::vector<int> fds{port.region.fd()};
    for (const auto& r : port.rings) {
        fds.push_back(r->to_switch.fd());
        fds.push_back(r->to_app.fd());
    }
    ctl::AttachReply rep;
    rep.h.seq = req.h.seq;
    rep.port_id = id;
    rep.ring_pairs = req.ring_pairs;
    rep.outage_limit_ms = ctx_.outage_limit_ms;
    reply(s, rep, fds);
    std::cerr << "multistackd: port " << id << " attached by pid " << s.peer.pid << " uid " << s.peer.uid << " ("
              << req.ring_pairs << " ring pairs of " << req.slots_per_ring << " slots)\n";
}

void ControlServer::detach_port(ClientSession& s) {
    if (!s.port) return;
    ctx_.sw.detach_port(*s.port);
    users_.remove_port(s.peer, s.port_bytes, s.port_fds);
    std::cerr << "multistackd: port " << *s.port << " detached (pid " << s.peer.pid << ")\n";
}

}  // namespace ms::daemon
