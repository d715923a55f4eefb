// The control plane's dispatch (control_server.hpp): a request's header is checked (magic,
// version, size of its type) and the request handed to its handler; anything else is
// answered version_mismatch or bad_request and counted. Also what the handlers share:
// the count and log of a limit reached.
#include <cstring>
#include <iostream>

#include "daemon/control_server.hpp"

namespace ms::daemon {

void ControlServer::dispatch(ClientSession& s, const std::uint8_t* buf, std::size_t n, std::vector<int>& fds) {
    ctl::Header h;
    if (n < sizeof h) {
        ++counters_.bad_requests;
        return;
    }
    std::memcpy(&h, buf, sizeof h);
    const auto fits = [&](std::size_t size) { return n == size; };
    const auto as = [&]<class Req>(Req& req) {
        std::memcpy(&req, buf, sizeof req);
        return req;
    };
    if (h.magic != ctl::kMagic || h.version != ctl::kVersion) {
        ++counters_.bad_requests;
        reply_status(s, h, ctl::Status::version_mismatch);
    } else if (h.op == ctl::Op::attach && fits(sizeof(ctl::AttachRequest))) {
        ctl::AttachRequest req;
        on_attach(s, as(req));
    } else if (h.op == ctl::Op::claim && fits(sizeof(ctl::ClaimRequest))) {
        on_claim(s, h, fds);
    } else if (h.op == ctl::Op::release && fits(sizeof(ctl::ReleaseRequest))) {
        ctl::ReleaseRequest req;
        on_release(s, as(req));
    } else if (h.op == ctl::Op::info && fits(sizeof h)) {
        on_info(s, h);
    } else if (h.op == ctl::Op::status && fits(sizeof h)) {
        on_status(s, h);
    } else if (h.op == ctl::Op::list_ports && fits(sizeof h)) {
        on_list_ports(s, h);
    } else if (h.op == ctl::Op::list_claims && fits(sizeof h)) {
        on_list_claims(s, h);
    } else if (h.op == ctl::Op::resolve && fits(sizeof(ctl::ResolveRequest))) {
        ctl::ResolveRequest req;
        on_resolve(s, as(req));
    } else if (h.op == ctl::Op::capture && fits(sizeof(ctl::CaptureRequest))) {
        ctl::CaptureRequest req;
        on_capture(s, as(req));
    } else if (h.op == ctl::Op::sockets && fits(sizeof(ctl::SocketsRequest))) {
        ctl::SocketsRequest req;
        on_sockets(s, as(req));
    } else {
        ++counters_.bad_requests;
        reply_status(s, h, ctl::Status::bad_request);
    }
}

void ControlServer::count_limit(const ClientSession& s, LimitHit hit) {
    ++counters_.limits_reached;
    std::cerr << "multistackd: pid " << s.peer.pid << " uid " << s.peer.uid << " refused: " << to_string(hit)
              << " limit reached\n";
}

}  // namespace ms::daemon
