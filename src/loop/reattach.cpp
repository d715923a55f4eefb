// EventLoop, the outages' part (event_loop.hpp; docs/DESIGN.md §6, "Restarts and
// upgrades"): when multistackd goes away, the loop keeps its stack and tries to attach
// again on the library's schedule (client::ReattachSchedule) for the daemon's outage
// limit. Attaching again is a new session and a new port, with the claims proved again
// by the proofs the session kept (ControlSession::reattach). Output written to the old
// port meanwhile is lost, and TCP sends it again. The old port stays mapped for the send
// buffers that still lie in its data area.
#include <netinet/in.h>
#include <poll.h>

#include <algorithm>
#include <iostream>

#include "loop/event_loop.hpp"

namespace ms::loop {

namespace {

std::string ms_text(std::uint64_t ms) { return std::to_string(ms) + " ms"; }

}  // namespace

void EventLoop::log(const std::string& line) const {
    if (log_) return log_(line);
    std::cerr << "multistack: " << line << "\n";
}

void EventLoop::begin_outage(std::uint64_t now_ms) {
    if (outage_ || daemon_gone_) return;
    if (client::ControlSession::stopped_for_good(socket_path_)) {
        return give_up("multistackd stopped (its control socket is gone): UTCP sockets fail from now on");
    }
    outage_.emplace(now_ms, control_.outage_limit_ms());
    log("multistackd went away: attaching again for up to " + ms_text(outage_->limit_ms()) +
        " (its outage limit); connections wait");
}

void EventLoop::give_up(const std::string& why) {
    log(why);
    outage_.reset();
    control_.forget_proofs();
    daemon_gone_ = true;
    stop();
}

void EventLoop::reattach_if_due(std::uint64_t now_ms) {
    client::ReattachSchedule& o = *outage_;
    if (!o.due(now_ms)) return;
    if (o.expired(now_ms)) {
        return give_up("multistackd did not come back within " + ms_text(o.limit_ms()) + ": UTCP sockets fail from now on");
    }
    std::vector<std::pair<client::Claim, client::Failure>> refused;
    auto next = control_.reattach(socket_path_, data_area_bytes_, refused);
    if (!next) return o.failed(now_ms);
    const client::ReattachSchedule ended = o;
    switch_to(std::move(next).value(), now_ms);
    const auto restored = control_.restore_flows(connection_flows());
    std::string line = "attached again to multistackd after " + ms_text(now_ms - ended.since_ms()) + " (" +
                       std::to_string(ended.tries() + 1) + " tries), port " + std::to_string(port_->id()) + ", " +
                       (restored ? std::to_string(*restored) : "no") + " connections steered to it";
    for (const auto& [claim, why] : refused) {
        line += "; the claim of port " + std::to_string(claim.port) + " was not proved again: " + why.message();
    }
    log(line);
}

std::vector<ctl::RestoredFlow> EventLoop::connection_flows() const {
    std::vector<ctl::RestoredFlow> flows;
    stack_->for_each_connection([&](const utcp::Connection& c) {
        const utcp::FourTuple& t = c.tuple();
        ctl::RestoredFlow f;
        f.local = ctl::to_tuple(client::Claim{IPPROTO_TCP, t.local, t.local_port});
        f.remote_family = static_cast<std::uint8_t>(t.remote.family);
        f.remote_port = t.remote_port;
        std::copy(t.remote.bytes.begin(), t.remote.bytes.end(), f.remote);
        flows.push_back(f);
    });
    return flows;
}

void EventLoop::switch_to(client::ControlSession next, std::uint64_t now_ms) {
    retired_ports_.push_back(control_.take_port());
    control_ = std::move(next);
    port_ = control_.port();
    link_->rebind(port_->tx(), port_->region());
    publisher_.rebind(port_->region().base() + port_->region().layout().sockets_offset);
    // New send buffers come from the new port's data area; those in the old one stay
    // where they are, mapped, and their bytes are copied into slots until they go.
    if (data_area_bytes_ > 0) stack_->buffers().move_shared_area(port_->region().data_area());
    stack_->path_restored(utcp::us_from_ms(now_ms));
    outage_.reset();
    ++attachments_;
}

// Sleeps to the µs: a timer due in less than a millisecond (a RACK or pacing deadline)
// keeps its time during an outage too. `due_us` is the stack's poll_at(), read by the
// caller while it may still touch the stack (the preload's stack thread sleeps unlocked).
void EventLoop::sleep_while_detached(std::uint64_t now_us, std::uint64_t due_us, int max_sleep_ms) {
    // A deadline already past is output that waits for the old port's ring: it waits on.
    std::uint64_t until = utcp::us_from_ms(outage_->next_try_ms());
    if (due_us > now_us) until = std::min(until, due_us);
    if (max_sleep_ms >= 0) until = std::min(until, now_us + utcp::us_from_ms(static_cast<std::uint64_t>(max_sleep_ms)));
    if (until <= now_us) return;
    const std::uint64_t sleep_us = std::min<std::uint64_t>(until - now_us, utcp::us_from_ms(100));
    const timespec limit{.tv_sec = 0, .tv_nsec = static_cast<long>(sleep_us * 1000)};
    (void)::ppoll(nullptr, 0, &limit, nullptr);
}

}  // namespace ms::loop
