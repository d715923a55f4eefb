// Contract: one TCP connection, RFC 9293, as a state machine that does no I/O and reads
// no clock (docs/DESIGN.md §7). The stack hands it segments that belong to it (on_segment) and
// timer expiries (on_timer), each with `now`; the connection updates its TCB, queues
// events for the application, and marks itself dirty. Once per batch the stack calls
// output(), which emits what is due through a SegmentSink: new data, retransmissions,
// and at most one pure ACK, so that ACKs are coalesced across the batch.
//
// The application side (send, recv, shutdown, close, abort, options) is called between
// batches. The connection is owned by the stack; the application's reference is valid
// until the `closed` event has been delivered.
//
// LISTEN and TIME_WAIT are not connections here: listeners are a table in the stack,
// and TIME_WAIT is a compact record (time_wait.hpp).
//
// The connection is the state machine, the handshake and its options, the timers and
// output; each concern below it has its own part: the send half (sender.hpp), the receive
// half with the ACK policy (receiver.hpp), loss recovery (recovery.hpp), RTT sampling
// (rtt_sampler.hpp, rtt.hpp) and congestion control (congestion.hpp).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "base/result.hpp"
#include "utcp/clock.hpp"
#include "utcp/congestion.hpp"
#include "utcp/connection_state.hpp"
#include "utcp/fast_open.hpp"
#include "utcp/pacer.hpp"
#include "utcp/path.hpp"
#include "utcp/receiver.hpp"
#include "utcp/recovery.hpp"
#include "utcp/rtt.hpp"
#include "utcp/rtt_sampler.hpp"
#include "utcp/segment.hpp"
#include "utcp/sender.hpp"
#include "utcp/timer_wheel.hpp"
#include "utcp/timestamps.hpp"
#include "wire/icmp.hpp"

namespace ms::utcp {

enum class State : std::uint8_t {
    closed,
    listen,
    syn_sent,
    syn_received,
    established,
    fin_wait_1,
    fin_wait_2,
    close_wait,
    closing,
    last_ack,
    time_wait,
};
[[nodiscard]] const char* to_string(State s);

// What went wrong, for the `error` event.
// The last four come from ICMP errors (path.hpp): a hard one in SYN_SENT, or a soft one
// that was the last word on the path when the connection timed out.
enum class ConnError : std::uint8_t {
    none,
    refused,
    reset,
    timed_out,
    aborted,
    net_unreachable,
    host_unreachable,
    protocol_error,
};
[[nodiscard]] const char* to_string(ConnError e);

// Options the application may change at run time (per connection), or set as the
// defaults of a stack or a listener. Buffer sizes apply when a connection is made.
struct ConnOptions {
    bool nodelay = false;                   // RFC 9293 §3.7.4: turn Nagle's algorithm off
    std::uint32_t min_rto_ms = 200;         // RFC 6298 §2.4 allows a lower minimum than 1 s
    std::uint32_t max_rto_ms = 60000;       // RFC 6298 §2.5
    std::uint32_t delayed_ack_ms = 40;      // RFC 1122 §4.2.3.2: under 500 ms
    std::uint32_t quick_acks = 16;          // segments ACKed at once at the start (slow start)
    std::uint32_t ack_every = 8;            // in a batch, an ACK at least every this many segments
    std::uint32_t max_retransmits = 15;     // RFC 1122 §4.2.3.5 R2, then the connection fails
    std::uint32_t max_syn_retransmits = 6;
    bool keepalive = false;                 // RFC 1122 §4.2.3.6: off unless asked
    std::uint32_t keepalive_idle_ms = 7'200'000;
    std::uint32_t keepalive_interval_ms = 75'000;
    std::uint32_t keepalive_probes = 9;
    std::uint32_t fin_wait_2_timeout_ms = 60'000;
    std::uint32_t send_buffer = 256 * 1024;
    std::uint32_t recv_buffer = 256 * 1024;
    bool sack = true;                       // RFC 2018: offer SACK, and use it if the peer does
    bool timestamps = true;                 // RFC 7323 §3: offer timestamps, and use them if the peer does
    bool ecn = true;                        // RFC 3168: ask for ECN, and accept it when asked
    // RFC 7413: an active open sends its first data in the SYN with a cached cookie (or
    // asks for one); a listener takes data in SYNs that carry a valid cookie.
    bool fast_open = false;
    std::string congestion{CongestionRegistry::kDefault};  // a name in the stack's CongestionRegistry
    // Pace segments for an algorithm that sets no rate of its own (CUBIC, NewReno) as Linux
    // does under fq: twice cwnd per SRTT in slow start, 1.2 times after. An algorithm with a
    // rate (BBR) is always paced.
    bool pacing = false;
    IpMarks marks;  // every segment's DSCP and IPv6 flow label
};

// What the peer's SYN offered (or a SYN cookie remembered of it).
struct PeerSynOptions {
    std::uint16_t mss = 536;  // RFC 9293 §3.7.1: the default when the SYN names none
    std::optional<std::uint8_t> window_scale;
    bool sack = false;
    std::optional<std::uint32_t> tsval;
    bool ecn = false;  // the SYN asked for ECN (or the SYN,ACK agreed)
};

// RFC 7323 §2.3: the smallest shift that lets the window field cover `buffer` bytes.
[[nodiscard]] std::uint8_t window_shift_for(std::size_t buffer);

// Events for the application, as bits; the stack delivers and clears them.
namespace event {
inline constexpr std::uint8_t established = 0x01;  // active open done, or accepted
inline constexpr std::uint8_t readable = 0x02;
inline constexpr std::uint8_t writable = 0x04;
inline constexpr std::uint8_t peer_closed = 0x08;  // FIN received: no more data will come
inline constexpr std::uint8_t error = 0x10;
inline constexpr std::uint8_t closed = 0x20;       // final; the handle dies after delivery
}  // namespace event

class Connection;
class Handler;
class Listener;
struct ConnectionImage;
enum class ImageError : std::uint8_t;

// The services a connection needs from its stack.
class ConnectionHost {
public:
    virtual ~ConnectionHost() = default;
    // The connection has output or events due; the stack runs output() and delivers
    // events at the end of the batch, and reaps connections in TIME_WAIT or CLOSED.
    virtual void mark_dirty(Connection& c) = 0;
    virtual TimerWheel& timers() = 0;
    // Where the connection's buffers take their memory while they hold bytes.
    virtual BufferPool& buffers() = 0;
    // The algorithms ConnOptions::congestion may name.
    [[nodiscard]] virtual const CongestionRegistry& congestion() const = 0;
    // RFC 5961 §7: a stack-wide budget of challenge ACKs per second.
    virtual bool challenge_ack_allowed(std::uint64_t now_us) = 0;
    // RFC 9293 §3.10.7.1-style reset for an unacceptable segment (<SEQ=SEG.ACK><CTL=RST>).
    virtual void reply_rst(const Route& route, const Segment& seg) = 0;
    // RFC 7413 §4.1.3: a server's SYN,ACK gave a Fast Open cookie.
    virtual void remember_fast_open(const wire::IpAddr& server, const FastOpenEntry& entry) = 0;
    // Whether new data may leave as super-segments (OutSegment::gso_size).
    [[nodiscard]] virtual bool super_segments() const = 0;
    // RFC 1191 §5: a believed "packet too big" says the path to `remote` takes `mss`.
    virtual void remember_path_mss(const wire::IpAddr& remote, std::uint16_t mss) = 0;
};

// Counters kept per connection (the stack keeps its own drop counters).
struct ConnStats {
    std::uint64_t segments_in = 0, segments_out = 0;
    std::uint64_t bytes_in = 0, bytes_out = 0;
    std::uint64_t retransmits = 0, fast_retransmits = 0, timeouts = 0;
    std::uint64_t dup_acks_in = 0, out_of_order = 0, ooo_dropped = 0;
    std::uint64_t challenge_acks = 0, window_probes = 0, keepalive_probes = 0;
    std::uint64_t lost_segments = 0, loss_probes = 0, reordering = 0;  // loss recovery (recovery.hpp)
    std::uint64_t paws_rejected = 0;  // RFC 7323 §5: segments older than TS.Recent
    std::uint64_t ce_received = 0, ecn_reductions = 0;  // RFC 3168
    // ICMP errors taken (path.hpp), and the MSS lowered by "packet too big" (RFC 1191) or
    // by black-hole detection after timeouts (RFC 4821).
    std::uint64_t icmp_errors = 0, mss_lowered_by_icmp = 0, mss_lowered_by_timeouts = 0;
    // RFC 4821's search after a black hole: probes acknowledged (each raised the MSS) and lost.
    std::uint64_t mss_probes_acked = 0, mss_probes_lost = 0;
};

class Connection {
public:
    Connection(ConnectionHost& host, const Route& route, const ConnOptions& options, std::uint16_t local_mss);
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    // Active open (RFC 9293 §3.10.1): SYN_SENT with `iss`. With ConnOptions::fast_open,
    // `cached` is what the stack knows of the server: the SYN carries its cookie and the
    // first data queued before output runs (RFC 7413 §4.2.1), or asks for a cookie.
    void open_active(Seq32 iss, std::uint64_t now_us, const std::optional<FastOpenEntry>& cached = std::nullopt);
    // Passive open from a SYN that a listener accepted (§3.10.7.2): SYN_RECEIVED.
    void open_passive(const Segment& syn, Seq32 iss, std::uint64_t now_us);
    // Passive open from the ACK that returned a valid SYN cookie (syn_cookie.hpp): the
    // SYN,ACK with `iss` went without state; `peer` is what the cookie carried.
    void open_from_cookie(const Segment& ack, Seq32 iss, const PeerSynOptions& peer, std::uint64_t now_us);
    // RFC 7413 §4.2.2, after open_passive: the SYN's cookie was valid; its data is the
    // application's now, and the connection is announced before the handshake completes.
    void accept_syn_data(const Segment& syn);
    // Our SYN,ACK gives the client this cookie (it asked, or sent an invalid one).
    void offer_fast_open_cookie(const wire::FastOpenCookie& cookie);

    // What the stack knows of the path to the peer from earlier connections (RFC 1191 §5):
    // the MSS never exceeds it. Before the handshake completes.
    void limit_path_mss(std::uint16_t mss) { mss_.path = std::min(mss_.path, mss); }
    // A segment for this connection, checksum already verified (§3.10.7.3 and .4).
    void on_segment(const Segment& seg, std::uint64_t now_us);
    // A segment that continues a train (Stack::Train): the same ACK, window and options
    // as the segment before it, which on_segment() took, and in order after it; only its
    // text is new. False (nothing done) if the connection cannot take it this way: the
    // caller then gives it to on_segment().
    [[nodiscard]] bool on_train_segment(const Segment& seg, std::uint64_t now_us);
    // True if it is ESTABLISHED and has taken every byte before `end` (a train may start).
    [[nodiscard]] bool in_order_through(Seq32 end) const { return state_ == State::established && rcv().nxt == end; }
    void on_timer(TimerKind kind, std::uint64_t now_us);
    // The path is back after an outage (the switch came back): a pending retransmission
    // or probe goes now instead of after its backed-off timeout.
    void retry_now(std::uint64_t now_us) {
        if (timing_.rtx.pending() && timing_.rtx.deadline() > now_us) arm(timing_.rtx, now_us);
    }
    // An ICMP error quoting a segment of this connection (its checksum and tuple checked
    // by the stack). Taken only if the quoted sequence number is in flight (RFC 5927
    // §4.1); false, with nothing done, if not. "Packet too big" lowers the MSS; a hard
    // error aborts SYN_SENT; any other is remembered as the soft error (path.hpp).
    [[nodiscard]] bool on_icmp_error(const wire::IcmpError& e, std::uint64_t now_us);
    // Emits what is due; false if the sink filled up (the stack calls again later).
    bool output(std::uint64_t now_us, SegmentSink& sink);

    // Application calls.
    std::size_t send(wire::Bytes data);           // queues what fits in the send buffer
    // Queues what fits by reference, without a copy: `data` must not change while `pin`
    // lives; the connection holds `pin` until those bytes are acknowledged. In the port's
    // data area (BufferPool::take_block) the bytes leave by reference all the way.
    std::size_t send_reference(wire::Bytes data, std::shared_ptr<const void> pin);
    std::size_t recv(wire::MutBytes out);         // copies readable bytes out
    [[nodiscard]] SplitBytes peek() const { return receiver_.buffer().peek(); }
    void consume(std::size_t n);                  // after peek(): drops n readable bytes
    void shutdown_write();                        // FIN after the queued data (half close)
    void close();                                 // no more sends or reads; FIN
    void abort();                                 // RST now (§3.10.5)
    void set_options(const ConnOptions& options); // nodelay, RTO, ACK and keepalive knobs, IP marks
    // Moving to another stack (connection_image.hpp): the connection written out, or
    // not_movable; then, in the new stack, a fresh connection on the image's route and
    // options takes it up (connection_move.cpp).
    [[nodiscard]] base::Result<ConnectionImage, ImageError> write_image() const;
    void restore(const ConnectionImage& image, std::uint64_t now_us);
    // Leaves the stack without a word to the peer: its timers stop.
    void detach();
    // Switches to another congestion control algorithm, which starts afresh from the
    // current window (as Linux's TCP_CONGESTION does); false if the stack has none of
    // that name.
    bool set_congestion(std::string_view name);

    [[nodiscard]] State state() const { return state_; }
    [[nodiscard]] const Route& route() const { return route_; }
    [[nodiscard]] const FourTuple& tuple() const { return route_.tuple; }
    [[nodiscard]] const ConnOptions& options() const { return options_; }
    [[nodiscard]] ConnStats stats() const;
    [[nodiscard]] ConnError error() const { return error_; }
    // The last soft ICMP error since the peer last acknowledged new data (none if none).
    [[nodiscard]] ConnError soft_error() const { return soft_error_; }
    [[nodiscard]] std::size_t readable() const { return receiver_.buffer().readable(); }
    [[nodiscard]] std::size_t send_room() const { return can_send() ? sender_.buffer().room() : 0; }
    [[nodiscard]] std::size_t unsent_or_unacked() const { return sender_.buffer().size(); }
    [[nodiscard]] bool peer_closed() const { return receiver_.fin_received(); }
    [[nodiscard]] bool user_closed() const { return app_.user_closed; }
    [[nodiscard]] std::uint32_t cwnd() const { return cc_->cwnd(); }
    [[nodiscard]] const CongestionControl& congestion_control() const { return *cc_; }
    // Bytes per second the pacer holds sends to; 0: none (pacer.hpp).
    [[nodiscard]] std::uint64_t pacing_rate() const;
    [[nodiscard]] std::uint32_t ssthresh() const { return cc_->ssthresh(); }
    [[nodiscard]] const RttEstimator& rtt() const { return rtt_; }
    [[nodiscard]] std::uint16_t send_mss() const { return mss_.smss; }
    [[nodiscard]] bool in_recovery() const { return recovery_->in_recovery(); }
    [[nodiscard]] bool sack_enabled() const { return agreed_.sack; }
    [[nodiscard]] bool timestamps_enabled() const { return agreed_.ts.enabled(); }
    [[nodiscard]] std::optional<std::uint32_t> ts_recent() const { return agreed_.ts.recent(); }
    [[nodiscard]] bool ecn_enabled() const { return ecn_.on; }
    [[nodiscard]] FastOpen fast_open() const { return tfo_.stage; }
    // Whether a buffer holds memory now: only while it holds bytes (buffers.hpp).
    [[nodiscard]] bool holds_buffer_memory() const {
        return sender_.buffer().holds_memory() || receiver_.buffer().holds_memory();
    }
    [[nodiscard]] std::uint8_t take_events() { return std::exchange(app_.events, 0); }
    [[nodiscard]] std::uint8_t pending_events() const { return app_.events; }

    // RFC 9293 names (§3.3.1), for tests and for the TIME_WAIT record.
    [[nodiscard]] const SendVars& snd() const { return sender_.vars(); }
    [[nodiscard]] const RecvVars& rcv() const { return receiver_.vars(); }

    // Stack bookkeeping, and the application's handle on the connection.
    bool dirty = false;                 // in the stack's list for this batch's output
    Handler* handler = nullptr;         // event API callbacks (stack.hpp)
    Listener* accepted_from = nullptr;  // set while a passive open is unannounced
    Listener* fast_open_from = nullptr; // set while a Fast Open connection is in SYN_RECEIVED
    void* context = nullptr;            // the application's own pointer

private:
    // Segment arrival, split as RFC 9293 §3.10.7 lays it out.
    // What every arriving segment tells the connection: the time, and that the peer lives.
    void note_arrival(std::uint64_t now_us);
    void on_segment_syn_sent(const Segment& seg, std::uint64_t now_us);
    void on_rst(const Segment& seg, std::uint64_t now_us);
    bool check_ack(const Segment& seg, std::uint64_t now_us);
    void process_ack(const Segment& seg, std::uint64_t now_us);
    [[nodiscard]] bool is_duplicate_ack(const Segment& seg) const;
    void update_send_window(const Segment& seg);
    void on_our_fin_acked(std::uint64_t now_us);
    void process_text(const Segment& seg);
    void take_text(const Segment& seg);
    void process_fin(std::uint64_t now_us);
    void learn_peer_options(const Segment& syn);
    void send_challenge_ack(std::uint64_t now_us);
    void process_ecn(const Segment& seg, std::uint64_t now_us);
    void apply_peer_options(const PeerSynOptions& peer);
    void owe_ack() {
        receiver_.owe_ack();
        wake();
    }

    // Output.
    // Our SYN (or SYN,ACK), with Fast Open data when it may carry some.
    bool emit_syn(std::uint64_t now_us, SegmentSink& sink);
    [[nodiscard]] std::uint32_t syn_data_len(const wire::TcpOptions& options) const;
    void on_fast_open_reply(const Segment& syn_ack);
    bool emit_data(std::uint64_t now_us, SegmentSink& sink, bool& sent);
    // `segment_len`: the most one wire segment carries (0: payload_room()); a probe is one
    // segment larger than the MSS.
    bool emit_new_data(std::uint32_t len, bool with_fin, std::uint64_t now_us, SegmentSink& sink,
                       std::uint32_t segment_len = 0);
    // Sends again what `r` names (at most one segment); false if the sink is full.
    bool emit_resend(const Resend& r, std::uint64_t now_us, SegmentSink& sink);
    bool emit_loss_probe(std::uint64_t now_us, SegmentSink& sink);
    bool emit_ack(SegmentSink& sink);
    bool emit_dup_acks(SegmentSink& sink);
    bool emit_ack_points(SegmentSink& sink);
    bool emit_rst(SegmentSink& sink);
    bool emit_probe(std::uint64_t now_us, SegmentSink& sink);
    [[nodiscard]] bool window_update_due() const;
    // Payload bytes a segment may carry: the MSS less the options it will carry (RFC 9293 §3.7.1).
    [[nodiscard]] std::uint32_t payload_room() const;
    // The most new data one emission may carry: a super-segment of whole segments when
    // the host takes them, else one segment.
    [[nodiscard]] std::uint32_t emission_room() const;
    // SACK blocks that fit beside the other options: 4, or 3 with timestamps (RFC 2018 §3).
    [[nodiscard]] std::size_t max_sack_blocks() const { return agreed_.ts.enabled() ? 3 : 4; }
    // Whether a segment reports SACK blocks: an ACK point of a batch does not.
    enum class Sacks : std::uint8_t { report, omit };
    [[nodiscard]] OutSegment header(Seq32 seq, std::uint8_t flags, Sacks sacks = Sacks::report);
    void after_send(Seq32 seq, std::uint32_t len, std::uint64_t now_us);
    void arm_timers(std::uint64_t now_us);

    // Timers.
    void on_retransmit_timeout(std::uint64_t now_us);
    void on_persist_timeout(std::uint64_t now_us);
    void on_reorder_timeout(std::uint64_t now_us);
    void note_verdict(const AckVerdict& v);
    void on_idle_timeout(std::uint64_t now_us);
    void arm(ConnTimer& t, std::uint64_t deadline_us) { host_.timers().schedule(t, deadline_us); }
    void disarm(ConnTimer& t) { host_.timers().cancel(t); }

    void enter(State s, std::uint64_t now_us);
    void fail(ConnError e);
    // Gives up after timeouts: with the soft error if the path reported one.
    void time_out() { fail(soft_error_ != ConnError::none ? soft_error_ : ConnError::timed_out); }
    // The path carries segments of at most `mss` (path.hpp): larger ones in flight are
    // lost and go again cut to size.
    void lower_mss(std::uint16_t mss);
    // RFC 4821: a probe of the search's next size, as one segment of new data, if one is
    // due and may go now; false if the sink is full.
    bool emit_mss_probe(std::uint64_t now_us, SegmentSink& sink);
    // After an ACK or a timeout: whether the probe out was acknowledged or lost.
    void settle_mss_probe(bool timed_out);
    void finish();
    void wake() { host_.mark_dirty(*this); }
    void app_read();
    [[nodiscard]] AckContext ack_context(std::uint64_t now_us) const;
    // The algorithm `name` names, or the default if none does (names are checked where
    // they come in: set_congestion, the application's flags).
    [[nodiscard]] std::unique_ptr<CongestionControl> make_congestion(std::string_view name) const;
    void take_rtt_sample(std::uint32_t ms);
    [[nodiscard]] std::uint32_t flight() const { return sender_.flight(); }
    [[nodiscard]] bool synchronized() const;
    [[nodiscard]] bool receiving() const {
        return state_ == State::established || state_ == State::fin_wait_1 || state_ == State::fin_wait_2;
    }
    [[nodiscard]] bool can_send() const {
        return !app_.write_closed && state_ != State::closed && state_ != State::time_wait;
    }

    ConnectionHost& host_;
    Route route_;
    ConnOptions options_;
    State state_ = State::closed;
    ConnError error_ = ConnError::none;
    ConnError soft_error_ = ConnError::none;
    std::uint64_t now_us_ = 0;  // the time of the call in progress (segments carry it as TSval)

    // The handshake's outcome.
    MssState mss_;
    AgreedOptions agreed_;
    EcnState ecn_;
    FastOpenState tfo_;

    // The halves, and what drives sending.
    Sender sender_;
    Receiver receiver_;
    std::unique_ptr<CongestionControl> cc_;
    std::unique_ptr<LossRecovery> recovery_;
    RttEstimator rtt_;
    RttSampler rtt_sampler_;
    Pacer pacer_;

    AppSide app_;
    OutputDue due_;
    ConnTiming timing_;
    ConnStats stats_;
};

}  // namespace ms::utcp
