// Contract: one UTCP stack: IPv4 and IPv6 (RFC 8200) with TCP and UDP for one
// application on one link
// (a MultiStack port, or memory in tests). It is the paper's raw batch API: the caller
// feeds received frames with input(frame, now), then calls flush(now) once per batch,
// which runs every connection's output (ACKs coalesced: one per connection per batch),
// writes the frames into the Link, delivers events, and reaps finished connections.
// advance(now) fires timers; poll_at() says when it next must run. Nothing here reads a
// clock or blocks; `now` is microseconds from an epoch the caller chooses (clock.hpp).
//
// Demultiplexing (RFC 9293 §3.10.7): an established connection by 4-tuple, then a
// TIME_WAIT record, then a listener by port; anything else gets a RST (§3.10.7.1).
// IP fragments are dropped and counted: UTCP does not reassemble, and never delivers a
// part of a datagram (it sends with DF set, so its own traffic is never fragmented).
// ICMP errors that quote a segment of a connection go to it (path MTU discovery, soft
// and hard errors: path.hpp); every other ICMP message is counted and left alone.
// Next hops come from the `resolve` callback (the daemon's resolve call), cached per
// address; UTCP never speaks ARP.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "base/result.hpp"
#include "utcp/connection.hpp"
#include "utcp/fast_open.hpp"
#include "utcp/isn.hpp"
#include "utcp/link.hpp"
#include "utcp/moved_tuples.hpp"
#include "utcp/path.hpp"
#include "utcp/syn_cookie.hpp"
#include "utcp/time_wait.hpp"
#include "wire/icmp.hpp"

namespace ms::utcp {

class Listener;

// Why a connection could not be made.
enum class ConnectError : std::uint8_t {
    no_route,              // the next hop cannot be resolved
    in_time_wait,          // the 4-tuple's TIME_WAIT record still holds
    in_use,                // a connection with the 4-tuple exists
    too_many_connections,  // StackConfig::max_connections reached
};
[[nodiscard]] const char* to_string(ConnectError e);

// A connection made, or why none was.
using ConnectResult = base::Result<Connection*, ConnectError>;

// Callbacks of the event API. A listener's handler is inherited by the connections it
// accepts; the application may replace it per connection (Connection::handler).
class Handler {
public:
    virtual ~Handler() = default;
    virtual void on_accepted(Connection&) {}     // passive open completed
    virtual void on_connected(Connection&) {}    // active open completed
    virtual void on_readable(Connection&) {}
    virtual void on_writable(Connection&) {}
    virtual void on_peer_closed(Connection&) {}  // FIN: the peer sends no more
    virtual void on_error(Connection&, ConnError) {}
    virtual void on_closed(Connection&) {}       // last call: the handle dies after it
};

class UdpHandler {
public:
    virtual ~UdpHandler() = default;
    // `payload` lives only for the call.
    virtual void on_datagram(const wire::IpAddr& from, std::uint16_t from_port, std::uint16_t to_port,
                             wire::Bytes payload) = 0;
};

struct StackConfig {
    wire::MacAddr mac;
    wire::IpAddr address;                  // the IPv4 address the stack owns (its claims' address); any(): none
    std::optional<wire::IpAddr> address6;  // the IPv6 address it owns, if any
    std::uint16_t mtu = 1500;
    ConnOptions defaults;                  // for new connections; listeners may override
    std::uint32_t time_wait_ms = 60'000;   // 2*MSL; Linux uses 60 s
    // At most this many TIME_WAIT records; past it a closing connection skips TIME_WAIT,
    // as Linux does past tcp_max_tw_buckets (same default). Bounds memory and lookups
    // when a server closes tens of thousands of connections a second.
    std::uint32_t max_time_wait = 262'144;
    std::uint32_t challenge_acks_per_second = 1000;  // RFC 5961 §7
    std::uint32_t max_connections = 1'000'000;
    // RFC 4987 §3.6: answer SYNs beyond a listener's SYN queue with SYN cookies.
    bool syn_cookies = true;
    // Next-hop MAC for an address, or nothing if it cannot be resolved.
    std::function<std::optional<wire::MacAddr>(const wire::IpAddr&)> resolve;
    IsnSource isn;                         // defaults to an RFC 6528 IsnGenerator
    // Send bulk data as TCP super-segments (up to 64 KB, cut by the switch or the
    // interface) when the link takes them; false: one frame per segment.
    bool super_segments = true;
};

struct StackStats {
    std::uint64_t frames_in = 0, frames_out = 0;
    std::uint64_t super_segments_out = 0;  // each also counts once in frames_out
    std::uint64_t super_segments_by_reference = 0;  // of those, payload referred to in the data area
    std::uint64_t tcp_segments_in = 0, udp_datagrams_in = 0;
    // Of tcp_segments_in, those taken as the continuation of a train (GRO-like: no
    // lookup, no ACK processing, only their text appended).
    std::uint64_t train_segments_in = 0;
    // Drops, one counter per reason.
    std::uint64_t not_ip = 0, malformed = 0, bad_checksum = 0, fragments = 0, not_our_address = 0;
    std::uint64_t no_connection = 0;       // answered with a RST
    std::uint64_t syn_queue_full = 0, backlog_full = 0, too_many_connections = 0, no_route = 0;
    // Segments for a paused listener left unanswered, and handshakes it completed reset.
    std::uint64_t listener_paused = 0;
    std::uint64_t syn_cookies_sent = 0, syn_cookies_accepted = 0, syn_cookies_rejected = 0;
    std::uint64_t challenge_acks_limited = 0;
    // RFC 7413: cookies given (asked for, or replacing an invalid one), SYNs whose data was
    // taken, invalid cookies, and valid ones refused because the listener's queue was full.
    std::uint64_t fast_open_cookies_sent = 0, fast_open_accepted = 0, fast_open_invalid = 0, fast_open_queue_full = 0;
    std::uint64_t time_wait_reused = 0, time_wait_acks = 0, time_wait_overflow = 0;
    std::uint64_t udp_no_socket = 0;
    // ICMP (path.hpp): messages in, and of those the ones no connection took: not an error
    // about a TCP segment of ours (echo, UDP), for no connection, or quoting a sequence
    // number not in flight (RFC 5927 §4.1: forged or stale). Bad checksums count in bad_checksum.
    std::uint64_t icmp_in = 0, icmp_ignored = 0, icmp_no_connection = 0, icmp_out_of_window = 0;
    std::uint64_t tx_ring_full = 0;
    std::uint64_t connections_opened = 0, connections_closed = 0;
    // Connections that moved to another stack and came from one, and segments dropped
    // because their connection had moved away.
    std::uint64_t connections_exported = 0, connections_imported = 0, moved_away = 0;
    // Segments of no connection dropped, not reset, just after an outage (Stack::path_restored).
    std::uint64_t outage_quiet = 0;
};

class Listener {
public:
    std::uint16_t port = 0;
    ConnOptions options;
    Handler* handler = nullptr;   // null: raw API, connections wait in accept_queue
    std::uint32_t backlog = 128;  // established connections not yet accepted
    std::uint32_t syn_queue = 1024;  // connections in SYN_RECEIVED
    std::uint32_t half_open = 0;
    std::deque<Connection*> accept_queue;
    std::optional<std::uint64_t> last_cookie_us;  // when the last SYN cookie went (ACKs are checked for two ticks)
    // RFC 7413 §5.1: at most this many Fast Open connections still in SYN_RECEIVED
    // (Linux's TCP_FASTOPEN queue length); past it a SYN's data waits for the handshake.
    std::uint32_t fast_open_queue = 256;
    std::uint32_t fast_open_pending = 0;
    // Its socket is going to a new program image (exec), or it closed while the claim's
    // other members serve (the switch steers no new connection here): SYNs go unanswered,
    // the peer's next one reaching the new image or another member, and a handshake it had
    // begun is reset when it completes.
    bool paused = false;
};

class Stack final : public ConnectionHost, private SegmentSink {
public:
    // `secrets` come from draw_secrets() (secrets.hpp), the one fallible step.
    Stack(StackConfig config, Link& link, std::uint64_t now_us, const StackSecrets& secrets);
    ~Stack() override;
    Stack(const Stack&) = delete;
    Stack& operator=(const Stack&) = delete;

    // Raw batch API.
    void input(wire::Bytes frame, std::uint64_t now_us);
    void flush(std::uint64_t now_us);
    // Fires due timers (their output waits for the next flush).
    void advance(std::uint64_t now_us);
    // The next time advance() has work, or UINT64_MAX.
    [[nodiscard]] std::uint64_t poll_at() const;
    // The soonest time advance() or flush() gained work since the last call (timers
    // scheduled, or output pending: 0), in O(1). TIME_WAIT expiries are not included.
    [[nodiscard]] std::uint64_t take_soonest_work() { return dirty_.empty() ? wheel_.take_soonest_scheduled() : 0; }

    // TCP. listen() returns null if the port has a listener already.
    Listener* listen(std::uint16_t port, Handler* handler = nullptr, const ConnOptions* options = nullptr);
    void unlisten(std::uint16_t port);
    // Active open; the error names why none was made.
    ConnectResult connect(std::uint16_t local_port, const wire::IpAddr& remote, std::uint16_t remote_port,
                          Handler* handler = nullptr, const ConnOptions* options = nullptr);
    // Raw API: the next accepted connection, or null.
    Connection* accept(Listener& l);

    // UDP.
    bool udp_bind(std::uint16_t port, UdpHandler& handler);
    void udp_unbind(std::uint16_t port);
    // False if the next hop is unknown, the payload exceeds the MTU, or the tx ring is
    // full. The datagram goes out with the next flush(), its IP header marked as `marks` asks.
    bool udp_send(std::uint16_t from_port, const wire::IpAddr& to, std::uint16_t to_port, wire::Bytes payload,
                  const IpMarks& marks = {});

    [[nodiscard]] const StackStats& stats() const { return stats_; }
    [[nodiscard]] const StackConfig& config() const { return config_; }
    [[nodiscard]] std::size_t connection_count() const { return conns_.size(); }
    [[nodiscard]] std::size_t listener_count() const { return listeners_.size(); }
    [[nodiscard]] const TimeWaitTable& time_wait() const { return time_wait_; }
    [[nodiscard]] Connection* find(const FourTuple& t) const;
    // True while a connection from local `port` lives, or waits in TIME-WAIT: its
    // 3-tuple is still in use after its listener is gone.
    [[nodiscard]] bool port_in_use(std::uint16_t port) const;
    // True while a connection the application closed still has data or its FIN to be
    // acknowledged (what Linux keeps sending for an orphaned socket).
    [[nodiscard]] bool orphans_sending() const;

    // Connections that move to another stack (connection_image.hpp, stack_move.cpp).
    // export_connection() writes the connection out and takes it from this stack without
    // a word to the peer; its segments are dropped from then on (StackStats::moved_away,
    // MovedTuples), never answered with a RST. import_connection() takes one up, after
    // checking that it fits this stack; the peer's next segments go to it.
    [[nodiscard]] base::Result<ConnectionImage, ImageError> export_connection(const FourTuple& t);
    [[nodiscard]] base::Result<Connection*, ImageError> import_connection(const ConnectionImage& image, Handler* handler,
                                                                          std::uint64_t now_us);
    // The link is back after an outage (multistackd restarted): every connection's pending
    // retransmission or probe goes at the next advance (Connection::retry_now). For
    // kQuietAfterOutageUs, a segment of no connection is dropped (StackStats::outage_quiet)
    // rather than reset: the switch may steer another process's connection here while
    // the processes of a shared claim attach again one by one.
    void path_restored(std::uint64_t now_us) {
        for (const auto& [t, c] : conns_) c->retry_now(now_us);
        quiet_until_us_ = now_us + kQuietAfterOutageUs;
    }
    static constexpr std::uint64_t kQuietAfterOutageUs = us_from_ms(2000);
    // Every connection and every listener, in no particular order (introspection).
    template <class F>
    void for_each_connection(F&& f) const {
        for (const auto& [t, c] : conns_) f(static_cast<const Connection&>(*c));
    }
    template <class F>
    void for_each_listener(F&& f) const {
        for (const auto& [port, l] : listeners_) f(static_cast<const Listener&>(*l));
    }
    // What we announce: the MTU less the IP and TCP headers of the family.
    [[nodiscard]] std::uint16_t local_mss(wire::IpFamily family) const;
    // The stack's address of a family, if it has one.
    [[nodiscard]] std::optional<wire::IpAddr> local_address(wire::IpFamily family) const;
    // Called when a local port stops being used by any connection or record (so that
    // the event loop can release its claim).
    std::function<void(std::uint16_t local_port)> on_port_free;

    // ConnectionHost.
    void mark_dirty(Connection& c) override;
    TimerWheel& timers() override { return wheel_; }
    BufferPool& buffers() override { return buffers_; }
    [[nodiscard]] const BufferPool& buffer_pool() const { return buffers_; }
    [[nodiscard]] const CongestionRegistry& congestion() const override { return congestion_; }
    // Where the application adds its own algorithms (before connections name them).
    [[nodiscard]] CongestionRegistry& congestion() { return congestion_; }
    bool challenge_ack_allowed(std::uint64_t now_us) override;
    void reply_rst(const Route& route, const Segment& seg) override;
    void remember_fast_open(const wire::IpAddr& server, const FastOpenEntry& entry) override;
    [[nodiscard]] bool super_segments() const override { return config_.super_segments && link_.takes_super_segments(); }
    void remember_path_mss(const wire::IpAddr& remote, std::uint16_t mss) override {
        path_mss_.remember(remote, mss, now_us_);
    }
    [[nodiscard]] const PathMssCache& path_mss_cache() const { return path_mss_; }
    [[nodiscard]] const FastOpenCache& fast_open_cache() const { return fast_open_cache_; }

private:
    struct IpPacket {
        wire::IpAddr src;
        wire::IpAddr dst;
        wire::Bytes l4;
        std::uint8_t ecn = 0;  // the IP header's ECN field
    };
    void input_ipv4(wire::Bytes packet, std::uint64_t now_us);
    void input_ipv6(wire::Bytes packet, std::uint64_t now_us);
    void input_transport(std::uint8_t protocol, const IpPacket& ip, std::uint64_t now_us);
    void input_tcp(const IpPacket& ip, std::uint64_t now_us);
    // A train (GRO-like receive coalescing): back-to-back in-order data segments of one
    // connection with the same ACK, window and options, and no flag but ACK (PSH ends
    // one). The first goes through TCP input in full; each next one only appends its
    // text. It never outlives a batch: flush() and advance() end it.
    struct Train {
        Connection* conn = nullptr;
        Seq32 next;  // the sequence number that continues it
        Seq32 ack;
        std::uint16_t wnd = 0;
        wire::TcpOptions options;
    };
    [[nodiscard]] bool continues_train(const FourTuple& t, const Segment& seg) const;
    void start_train(Connection& c, const Segment& seg);
    void input_udp(const IpPacket& ip);
    // ICMP and ICMPv6 errors go to the connection whose segment they quote
    // (Connection::on_icmp_error).
    void input_icmp(const IpPacket& ip, std::uint64_t now_us);
    void input_icmp_error(const base::Result<wire::IcmpError, wire::ParseError>& error, std::uint64_t now_us);
    // `iss` is set when a SYN reopens a TIME_WAIT 4-tuple.
    void on_listen(Listener& l, const Route& route, const Segment& seg, std::uint64_t now_us,
                   std::optional<Seq32> iss = std::nullopt);
    [[nodiscard]] bool may_reopen(const TimeWaitRecord& r, const Segment& syn_seg, const ConnOptions& listener) const;
    bool on_time_wait(const FourTuple& t, const Segment& seg, std::uint64_t now_us, std::optional<Seq32>& reuse_iss);
    ConnectResult create(const Route& route, const ConnOptions& options, Handler* handler);
    // RFC 4987 §3.6: a stateless SYN,ACK whose ISS is a cookie.
    void send_cookie(Listener& l, const Route& route, const Segment& request, std::uint64_t now_us);
    // A connection from an ACK that returns a valid cookie; false if it returns none.
    bool accept_cookie(Listener& l, const Route& route, const Segment& ack, std::uint64_t now_us);
    // RFC 7413 §4.2.2: a SYN with the Fast Open option, just opened as `c`.
    void on_fast_open_syn(Listener& l, Connection& c, const Segment& syn_seg);
    void deliver_events(Connection& c);
    void reap(Connection& c, std::uint64_t now_us);
    [[nodiscard]] std::optional<wire::MacAddr> next_hop(const wire::IpAddr& addr);
    bool emit(const Route& route, const OutSegment& seg) override;
    // A super-segment, handed to the link as its headers and payload (link.hpp).
    bool emit_super(const Route& route, const OutSegment& seg);
    // Writes Ethernet and IPv4 or IPv6 headers (by the family of `flow`'s addresses; `ecn`
    // in the ECN field beside the DSCP of `marks`, and in IPv6 the label `marks` asks for or
    // the flow's own), lets `write_l4` fill the transport segment, and computes its checksum.
    template <class WriteL4>
    bool emit_ip(const wire::MacAddr& dst_mac, const FourTuple& flow, std::uint8_t protocol, std::size_t l4_len,
                 std::uint8_t ecn, const IpMarks& marks, const WriteL4& write_l4);
    // Returns emit(ethernet, ip) with the Ethernet and IP headers of `flow`'s family (IPv4
    // with the next identification), marked as emit_ip says.
    template <class Emit>
    std::size_t with_ip_header(const wire::MacAddr& dst_mac, const FourTuple& flow, std::uint8_t protocol, std::uint8_t ecn,
                               const IpMarks& marks, const Emit& emit);
    // A UDP datagram from flow.local to flow.remote.
    bool emit_datagram(const wire::MacAddr& dst_mac, const FourTuple& flow, wire::Bytes payload, const IpMarks& marks);
    // RFC 6437 §3: a flow's label, from its 4-tuple and a per-stack secret (never 0).
    [[nodiscard]] std::uint32_t flow_label(const FourTuple& flow) const;
    void release_port_if_free(std::uint16_t port);

    StackConfig config_;
    Link& link_;
    // 8192 ticks of 32 µs: a turn of 262 ms holds RTOs, probes and delayed ACKs without a
    // second turn, and a tick is finer than the shortest loss-probe timeout.
    static constexpr std::uint32_t kTimerSlots = 8192, kTimerTickUs = 32;
    TimerWheel wheel_;
    CongestionRegistry congestion_;
    SynCookies cookies_;
    BufferPool buffers_;  // before the connections, which give their arrays back to it
    FastOpenCookies fast_open_cookies_;
    FastOpenCache fast_open_cache_;
    PathMssCache path_mss_;
    std::unordered_map<FourTuple, std::unique_ptr<Connection>, FourTupleHash> conns_;
    std::unordered_map<std::uint16_t, std::unique_ptr<Listener>> listeners_;
    std::unordered_map<std::uint16_t, UdpHandler*> udp_;
    std::unordered_map<wire::IpAddr, wire::MacAddr, wire::IpAddrHash> next_hops_;
    std::unordered_map<std::uint16_t, std::uint32_t> port_users_;  // connections and records per local port
    TimeWaitTable time_wait_;
    MovedTuples moved_;
    std::uint64_t quiet_until_us_ = 0;  // path_restored()
    Train train_;
    std::vector<Connection*> dirty_;
    std::vector<Connection*> work_;
    std::uint64_t challenge_window_start_ = 0;
    std::uint32_t challenge_acks_ = 0;
    std::uint16_t ip_ident_ = 0;
    std::uint64_t flow_label_key_;
    std::uint64_t now_us_;  // the latest time the caller gave us
    StackStats stats_;
};

}  // namespace ms::utcp
