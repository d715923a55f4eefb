// The control plane's captures (control_server.hpp, docs/DESIGN.md §6): one port's frames,
// both ways, streamed to a client that its owner's uid or a privileged peer holds. The
// switch names the capture by a ticket; each tick forwards what the workers queued, and
// a client too slow to take a frame loses it (counted), never stalls the daemon.
#include <sys/socket.h>
#include <time.h>

#include <chrono>
#include <cstring>
#include <iostream>
#include <memory>

#include "daemon/control_server.hpp"

namespace ms::daemon {
namespace {

// The send buffer of a session that captures: some 400 frames of the largest size.
constexpr int kCaptureSocketBytes = 1 << 20;

}  // namespace

void ControlServer::on_capture(ClientSession& s, const ctl::CaptureRequest& req) {
    if (s.capture) return reply_status(s, req.h, ctl::Status::busy);
    const auto port = inspectable_port(s, req.port_id);
    if (!port) return reply_status(s, req.h, port.error());
    const auto ticket = ctx_.sw.start_capture(*port);
    if (!ticket) return reply_status(s, req.h, ctl::Status::busy);
    // Room for a burst of frames between two ticks; the client's own receive buffer is its
    // business. Beyond this a capture loses frames (counted), never stalls the daemon.
    const int room = kCaptureSocketBytes;
    (void)::setsockopt(s.fd, SOL_SOCKET, SO_SNDBUFFORCE, &room, sizeof room);
    CaptureStream cap{*ticket, req.h.seq, req.max_frames ? req.max_frames : UINT64_MAX, std::nullopt};
    if (req.milliseconds) cap.deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(req.milliseconds);
    s.capture = cap;
    arm_tick_timer();
    std::cerr << "multistackd: capture of port " << *port << " started by pid " << s.peer.pid << " uid " << s.peer.uid
              << "\n";
}

void ControlServer::pump_capture(ClientSession& s) {
    CaptureStream& cap = *s.capture;
    auto frame = std::make_unique<ctl::CaptureFrame>();
    timespec now{};
    ::clock_gettime(CLOCK_REALTIME, &now);
    ctx_.sw.drain_capture(cap.ticket, [&](wire::Bytes f, sw::TapDirection d) {
        if (cap.remaining == 0) return;
        frame->h.seq = cap.seq;
        frame->timestamp_ns = static_cast<std::uint64_t>(now.tv_sec) * 1'000'000'000ull +
                              static_cast<std::uint64_t>(now.tv_nsec);
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

void ControlServer::end_capture(ClientSession& s) {
    CaptureStream& cap = *s.capture;
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
