// Contract: the packet-script language for UTCP tests, in virtual time (docs/DESIGN.md §9). A
// script drives one Stack over a MemoryLink, as the remote peer and as the local
// application, one command per line:
//
//   < FLAGS [seq=N] [ack=N] [win=N] [len=N] [mss=N] [ws=N] [sackok] [sack=L-R,...] [tsval=N [tsecr=N]]
//           [tfo | tfo=HEX | tfo=learned]
//                                       inject a segment, then flush
//   << FLAGS ...                        inject without flushing (the batch goes on)
//   > FLAGS [seq=N] [ack=N] [win=N] [len=N] [mss=N] [ws=N] [nows] [sackok] [nosackok]
//           [sack=L-R,...] [nosack] [ts] [tsecr=N] [nots] [learn_isn]
//           [tfo=req | tfo=learn | tfo=HEX | notfo]
//                                       expect the next segment sent (sack: exactly these blocks)
//   > none                              expect that nothing more was sent
//   +N | +Nus                           advance the clock N ms, or N µs (timers fire), then flush
//   flush                               end the batch
//   listen PORT [raw] | connect PORT [send=N]
//                                       open passively or actively (event API; raw: the
//                                       raw API, where connections wait to be accepted;
//                                       send: N bytes queued before the SYN goes)
//   peer_port N                         the peer's port for what follows
//   app send N | app recv N | app close | app shutdown | app abort | app nodelay on|off
//   app keepalive IDLE INTERVAL PROBES | app min_rto MS
//   state NAME                          the connection's state (TIME_WAIT: a record; NONE: gone)
//   event NAME                          the application was told NAME (accepted, connected,
//                                       readable, writable, peer_closed, error, closed)
//   peer_isn N | our_isn N              the ISNs that relative numbers count from
//   icmp KIND seq=N [mtu=N] [bad_checksum]
//                                       a router's ICMP error quoting our segment with
//                                       relative SEQ N (KIND: too_big, port_unreachable,
//                                       host_unreachable, time_exceeded), then flush
//   # comment
//
// FLAGS are letters: S syn, . ack, F fin, R rst, P psh, E ece, W cwr (P, E and W are
// checked only when written). `ce` on an injected segment marks its IP header
// Congestion Experienced; `ect` / `noect` check an expected one's ECN field.
// seq is relative to the peer's ISN on injected segments and to ours on expected ones;
// ack and SACK blocks the other way round; `abs:N` gives an absolute number. `learn_isn`
// takes an expected segment's SEQ as our ISN (a SYN cookie); `tsecr=echo` on an injected
// segment echoes the TSval we sent last. Fast Open (RFC 7413): `tfo` injects a cookie
// request, `tfo=HEX` a cookie; `tfo=learn` keeps the cookie of an expected segment, which
// `tfo=learned` sends back; `tfo=req` expects a request. Injected data is a known
// pattern of the stream offset, which `app recv` checks byte by byte. A mismatch fails
// the GoogleTest with the script's line number.
#pragma once

#include <algorithm>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "utcp/stack.hpp"

namespace ms::utcp::test {

struct ScriptConfig {
    std::uint32_t time_wait_ms = 60'000;
    std::uint32_t max_time_wait = 262'144;
    std::uint32_t challenge_acks_per_second = 1000;
    ConnOptions options;
    std::uint32_t backlog = 128;
    std::uint32_t syn_queue = 1024;
    std::uint32_t fast_open_queue = 256;
    std::uint32_t max_connections = 1'000'000;
    bool syn_cookies = true;
};

// Records what the application was told.
class RecordingHandler final : public Handler {
public:
    void on_accepted(Connection&) override { events.push_back("accepted"); }
    void on_connected(Connection&) override { events.push_back("connected"); }
    void on_readable(Connection&) override { events.push_back("readable"); }
    void on_writable(Connection&) override { events.push_back("writable"); }
    void on_peer_closed(Connection&) override { events.push_back("peer_closed"); }
    void on_error(Connection&, ConnError e) override {
        std::string name = std::string("error:") + to_string(e);
        std::replace(name.begin(), name.end(), ' ', '_');
        events.push_back(name);
    }
    void on_closed(Connection&) override { events.push_back("closed"); }
    std::vector<std::string> events;
};

class PacketScript {
public:
    explicit PacketScript(ScriptConfig config = {});
    ~PacketScript();

    // Runs the commands; every failure is reported with its line.
    void run(std::string_view script);

    [[nodiscard]] Stack& stack() { return *stack_; }
    // The connection under test (null once it is gone).
    [[nodiscard]] Connection* conn() const;
    [[nodiscard]] std::uint64_t now() const { return now_; }
    [[nodiscard]] FourTuple tuple() const;
    [[nodiscard]] const RecordingHandler& handler() const { return handler_; }
    // The absolute sequence numbers behind relative ones.
    [[nodiscard]] std::uint32_t peer_isn() const { return peer_isn_; }
    [[nodiscard]] std::uint32_t our_isn() const { return our_isn_; }

private:
    struct Line;
    void execute(const Line& line);
    void inject(const Line& line, bool flush);
    void inject_icmp(const Line& line);
    void expect(const Line& line);
    void app(const Line& line);
    void check_state(const Line& line);
    void check_event(const Line& line);
    void send_pattern(Connection& c, std::size_t len);
    void expect_fast_open(const Line& line, const std::optional<wire::FastOpenCookie>& got);
    void collect();

    ScriptConfig config_;
    MemoryLink link_;
    std::unique_ptr<Stack> stack_;
    RecordingHandler handler_;
    std::uint64_t now_ = us_from_ms(1'000'000);  // µs, as the stack counts
    std::uint32_t peer_isn_ = 1000;
    std::uint32_t our_isn_ = 5000;
    std::uint32_t last_tsval_ = 0;
    wire::FastOpenCookie learned_cookie_;  // `tfo=learn`  // the TSval of the last segment we sent (`tsecr=echo`)
    std::uint16_t local_port_ = 80;
    std::uint16_t peer_port_ = 40000;
    std::uint64_t peer_stream_ = 0;  // offset of the next byte `app recv` expects
    std::uint64_t app_stream_ = 0;   // offset of the next byte `app send` writes
    std::deque<std::vector<std::uint8_t>> sent_;
    Connection* active_ = nullptr;
};

// The byte at `offset` of a test stream: data is checked by position, not just length.
[[nodiscard]] inline std::uint8_t pattern_byte(std::uint64_t offset) {
    return static_cast<std::uint8_t>((offset * 7 + offset / 251) & 0xff);
}

}  // namespace ms::utcp::test

namespace ms::utcp::test {

// The usual openings, shared by the tests of later states. The peer offers a window of
// 512 << 7 = 65536 bytes and an MSS of 1460; we announce MSS 1460 (MTU 1500) and a
// window scale of 3 (a 256 KB receive buffer).
inline constexpr const char* kPassiveOpen = R"(
listen 80
< S seq=0 win=65535 mss=1460 ws=7
> S. seq=0 ack=1 win=65535 mss=1460 ws=3
< . seq=1 ack=1 win=512
state ESTABLISHED
event accepted
)";

// Script lines that expect `count` full segments of `len` bytes from relative SEQ `first`.
inline std::string segments_out(std::uint32_t first, int count, std::uint32_t len = 1460) {
    std::string lines;
    for (int k = 0; k < count; ++k) {
        lines += "> . seq=" + std::to_string(first + len * static_cast<std::uint32_t>(k)) + " len=" + std::to_string(len) +
                 "\n";
    }
    return lines;
}

// The passive open with SACK negotiated both ways (RFC 2018 §2).
inline constexpr const char* kSackOpen = R"(
listen 80
< S seq=0 win=65535 mss=1460 ws=7 sackok
> S. seq=0 ack=1 win=65535 mss=1460 ws=3 sackok
< . seq=1 ack=1 win=512
state ESTABLISHED
event accepted
)";

// kSackOpen's active twin with a 10 ms RTT sample from the handshake (SRTT 10 ms, RTO
// 200 ms) and Nagle off: the opening of the RACK, TLP and PRR scripts.
inline constexpr const char* kSackOpenRtt10 = R"(
connect 80
> S seq=0 sackok
+10
< S. seq=0 ack=1 win=65535 mss=1460 sackok
> . seq=1 ack=1
state ESTABLISHED
app nodelay on
)";

// kSackOpenRtt10 on a datacenter path: a 100 µs RTT sample from the handshake.
inline constexpr const char* kSackOpenRtt100us = R"(
connect 80
> S seq=0 sackok
+100us
< S. seq=0 ack=1 win=65535 mss=1460 sackok
> . seq=1 ack=1
state ESTABLISHED
app nodelay on
)";

// Two full segments and an 80-byte tail in flight (after kSackOpenRtt10 or kSackOpenRtt100us).
inline constexpr const char* kTwoSegmentsAndATail = R"(
app send 3000
> . seq=1 len=1460
> . seq=1461 len=1460
> . seq=2921 len=80
)";

// Two full segments in flight (after kSackOpen or kPassiveOpen).
inline constexpr const char* kTwoSegmentsOut = R"(
app send 2920
> . seq=1 len=1460
> . seq=1461 len=1460
)";

inline constexpr const char* kActiveOpen = R"(
connect 80
> S seq=0 mss=1460 ws=3
< S. seq=0 ack=1 win=65535 mss=1460 ws=7
> . seq=1 ack=1
state ESTABLISHED
event connected
)";

}  // namespace ms::utcp::test
