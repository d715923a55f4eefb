// The control plane's dispatch (control_server.hpp): a request's header is checked (magic,
// version, size of its type) and the request handed to its handler; anything else is
// answered version_mismatch or bad_request and counted. Also what the handlers share:
// the count and log of a limit reached.
#include <cstring>
#include <iostream>
#include <span>

#include "daemon/control_server.hpp"

namespace ms::daemon {

namespace {

// Copies the request out of `message` and hands it to `handler`; false if the message is
// not exactly the request's size.
template <class Req, class Handler>
bool decode_into(std::span<const std::uint8_t> message, Handler&& handler) {
    if (message.size() != sizeof(Req)) return false;
    Req req;
    std::memcpy(&req, message.data(), sizeof req);
    handler(req);
    return true;
}

}  // namespace

void ControlServer::dispatch(ClientSession& s, const std::uint8_t* buf, std::size_t n, std::vector<int>& fds) {
    ctl::Header h;
    if (n < sizeof h) {
        ++counters_.bad_requests;
        return;
    }
    std::memcpy(&h, buf, sizeof h);
    // A newer daemon may take over from this one: its request is read whatever its version.
    if (h.magic == ctl::kMagic && h.op == ctl::Op::hand_over && n == sizeof h && h.version >= 10) return on_hand_over(s, h);
    if (h.magic != ctl::kMagic || h.version != ctl::kVersion) {
        ++counters_.bad_requests;
        return reply_status(s, h, ctl::Status::version_mismatch);
    }
    if (!route(s, h, {buf, n}, fds)) {
        ++counters_.bad_requests;
        reply_status(s, h, ctl::Status::bad_request);
    }
}

bool ControlServer::route(ClientSession& s, const ctl::Header& h, std::span<const std::uint8_t> message,
                          std::vector<int>& fds) {
    switch (h.op) {
        case ctl::Op::attach: return decode_into<ctl::AttachRequest>(message, [&](const auto& r) { on_attach(s, r); });
        case ctl::Op::claim: return decode_into<ctl::ClaimRequest>(message, [&](const auto& r) { on_claim(s, r, fds); });
        case ctl::Op::release: return decode_into<ctl::ReleaseRequest>(message, [&](const auto& r) { on_release(s, r); });
        case ctl::Op::drain: return decode_into<ctl::DrainRequest>(message, [&](const auto& r) { on_drain(s, r); });
        case ctl::Op::hand_off:
            return decode_into<ctl::HandOffRequest>(message, [&](const auto& r) { on_hand_off(s, r, fds); });
        case ctl::Op::reclaim: return decode_into<ctl::ReclaimRequest>(message, [&](const auto& r) { on_reclaim(s, r); });
        case ctl::Op::take_over:
            return decode_into<ctl::TakeOverRequest>(message, [&](const auto& r) { on_take_over(s, r, fds); });
        case ctl::Op::proof_copy:
            return decode_into<ctl::ProofCopyRequest>(message, [&](const auto& r) { on_proof_copy(s, r); });
        case ctl::Op::restore_flows:
            return decode_into<ctl::RestoreFlowsRequest>(message, [&](const auto& r) { on_restore_flows(s, r); });
        case ctl::Op::info: return decode_into<ctl::Header>(message, [&](const auto& r) { on_info(s, r); });
        case ctl::Op::status: return decode_into<ctl::Header>(message, [&](const auto& r) { on_status(s, r); });
        case ctl::Op::list_ports: return decode_into<ctl::Header>(message, [&](const auto& r) { on_list_ports(s, r); });
        case ctl::Op::list_claims: return decode_into<ctl::Header>(message, [&](const auto& r) { on_list_claims(s, r); });
        case ctl::Op::resolve: return decode_into<ctl::ResolveRequest>(message, [&](const auto& r) { on_resolve(s, r); });
        case ctl::Op::capture: return decode_into<ctl::CaptureRequest>(message, [&](const auto& r) { on_capture(s, r); });
        case ctl::Op::sockets: return decode_into<ctl::SocketsRequest>(message, [&](const auto& r) { on_sockets(s, r); });
        default: return false;  // a reply's type, or none known
    }
}

void ControlServer::count_limit(const ClientSession& s, LimitHit hit) {
    ++counters_.limits_reached;
    std::cerr << "multistackd: pid " << s.peer.pid << " uid " << s.peer.uid << " refused: " << to_string(hit)
              << " limit reached\n";
}

}  // namespace ms::daemon
