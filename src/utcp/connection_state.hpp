// Contract: the parts of a connection's state that are not a half of their own (sender.hpp,
// receiver.hpp, recovery.hpp, rtt.hpp, congestion.hpp), each a small aggregate of plain
// values grouped by concern, so that the connection reads as a list of concerns and a
// whole connection can be written out and read back. Only the timers hold links (into
// the stack's wheel), which are re-armed rather than copied.
#pragma once

#include <cstdint>
#include <optional>

#include "utcp/path.hpp"
#include "utcp/seq.hpp"
#include "utcp/timer_wheel.hpp"
#include "utcp/timestamps.hpp"
#include "wire/transport.hpp"

namespace ms::utcp {

class Connection;

// Segment sizes (RFC 9293 §3.7.1) and what the path allows (path.hpp).
struct MssState {
    std::uint16_t local = 536;           // what we announce: our MTU less the headers
    std::uint16_t smss = 536;            // the default when the peer sends no MSS
    std::uint16_t path = UINT16_MAX;     // what the path carries, once it told
    MssSearch search;                    // RFC 4821, after black-hole detection
};

// What both SYNs agreed on besides the MSS and ECN.
struct AgreedOptions {
    bool window_scale = false;  // RFC 7323 §2
    bool sack = false;          // both SYNs carried SACK-permitted (RFC 2018 §2)
    TimestampOption ts;         // RFC 7323 §3-5
    Seq32 last_ack_sent;        // Last.ACK.sent (RFC 7323 §4.3)
};

// ECN (RFC 3168 §6.1): negotiated in the SYNs; ECE on our ACKs from a CE mark until the
// peer's CWR; our CWR on the first new data after we backed off, once a window.
struct EcnState {
    bool on = false;
    bool ece_due = false;
    bool cwr_due = false;
    Seq32 recover;
};

// Where a connection stands with TCP Fast Open (RFC 7413).
enum class FastOpen : std::uint8_t {
    none,              // not used
    cookie_requested,  // client: our SYN asked for a cookie (none was cached)
    data_sent,         // client: our SYN carried data and a cookie; no SYN,ACK yet
    data_acked,        // client: the SYN,ACK acknowledged that data
    data_refused,      // client: it did not; the data went again after the handshake
    cookie_sent,       // server: our SYN,ACK gave a cookie (asked for, or the SYN's was invalid)
    data_accepted,     // server: a valid cookie; the SYN's data went to the application at once
};
[[nodiscard]] const char* to_string(FastOpen f);

// RFC 7413: the cookie our SYN carries (client) or our SYN,ACK gives (server), and the
// server's MSS the SYN's data must fit.
struct FastOpenState {
    FastOpen stage = FastOpen::none;
    std::optional<wire::FastOpenCookie> cookie;
    std::uint16_t mss = 536;
};

// What output() owes besides data and ACKs.
struct OutputDue {
    bool rst = false;
    bool probe = false;
    bool force_send = false;  // the SWS override timer fired
    bool keepalive = false;
    bool loss_probe = false;  // the tail loss probe's timer fired
};

// The application's side of the connection.
struct AppSide {
    std::uint8_t events = 0;    // event:: bits not yet delivered
    bool announced = false;     // the application was told of the open (Fast Open tells early)
    bool write_closed = false;
    bool user_closed = false;
};

enum class TimerKind : std::uint8_t { retransmit, delayed_ack, idle, pace };

// A timer of the stack's wheel that knows its connection.
struct ConnTimer : Timer {
    Connection* owner = nullptr;
    TimerKind kind = TimerKind::retransmit;
};

// What the retransmission timer does when it fires: RFC 6298 retransmission while data
// is in flight, or the persist timer (RFC 9293 §3.8.6.1) while data waits on the window.
// RACK's reorder timer and the tail loss probe share it too (RFC 8985 §8).
enum class RtxMode : std::uint8_t { retransmit, persist, reorder, loss_probe };

// The timers and the counts that drive them.
struct ConnTiming {
    RtxMode rtx_mode = RtxMode::retransmit;
    std::uint64_t rtx_deadline_us = 0;
    std::uint32_t retransmits_in_row = 0;
    std::uint32_t keepalive_sent = 0;
    std::uint64_t last_recv_us = 0;
    ConnTimer rtx;     // retransmission, or its other modes (rtx_mode)
    ConnTimer delack;
    ConnTimer idle;    // keepalive, or the FIN_WAIT_2 timeout
    ConnTimer pace;    // the pacer's next departure (pacer.hpp)
};

}  // namespace ms::utcp
