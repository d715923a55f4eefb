// Contract: a live TCP connection written out of one stack and read back into another, as
// when a process hands a connection to another process (docs/DESIGN.md §7, "Connections
// that move"). The record is versioned and bounded, and reading one is hostile input:
// decode() checks the header, every length and every field's range, and
// Stack::import_connection() checks that the connection fits the importing stack (its
// address, no connection on the tuple, its limits).
//
// What moves: the tuple; the state (ESTABLISHED or CLOSE_WAIT: the application has not
// shut down its writing); the sequence space, the windows and their scaling; the agreed options (MSS,
// SACK, timestamps with our TSval clock and TS.Recent, ECN); the RTT estimate; cwnd and
// ssthresh; the connection's options; the bytes sent and not yet acknowledged, the bytes
// not yet sent, the bytes received and not yet read, and those received out of order.
// What does not: the SACK scoreboard, RACK's transmit times, timers and statistics. The
// importing stack sends everything in flight again (as after a timeout, without backing
// off), and the peer's next ACKs rebuild the rest.
//
// The record stays on one host (a memfd between processes), so numbers are in the host's
// byte order.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "utcp/connection.hpp"

namespace ms::utcp {

// Why a connection cannot be written out, or an image not read back.
enum class ImageError : std::uint8_t {
    not_movable,       // export: a handshake, our FIN sent, or closed
    truncated,         // the record ends inside a field
    bad_magic,         // not a connection image
    bad_version,       // an image version this stack does not read
    bad_field,         // a value out of its range (state, family, scale, MSS, options)
    too_large,         // a byte section over its bound
    wrong_address,     // the tuple's local address is not the importing stack's
    tuple_in_use,      // the importing stack has a connection on that tuple
    too_many_connections,
    no_route,          // the importing stack cannot reach the peer
};
[[nodiscard]] const char* to_string(ImageError e);

// One stretch of bytes received out of order: its distance past RCV.NXT.
struct ImageRange {
    std::uint32_t offset = 0;
    std::vector<std::uint8_t> bytes;
};

struct ConnectionImage {
    static constexpr std::uint32_t kMagic = 0x4943534d;  // "MSCI"
    static constexpr std::uint16_t kVersion = 2;  // 2: the estimates count microseconds
    // Bounds on what a record may carry: the largest buffers a connection may have.
    static constexpr std::uint32_t kMaxBuffer = 64u << 20;
    static constexpr std::size_t kMaxRanges = 16;
    static constexpr std::size_t kMaxCongestionName = 32;

    FourTuple tuple;
    State state = State::established;
    // Sequence space (RFC 9293 §3.3.1) and windows.
    std::uint32_t iss = 0, snd_una = 0, snd_max = 0, snd_wnd = 0, snd_wl1 = 0, snd_wl2 = 0, snd_max_wnd = 0;
    std::uint32_t irs = 0, rcv_nxt = 0, rcv_adv_edge = 0;
    std::uint8_t snd_shift = 0, rcv_shift = 0;
    bool window_scale = false;
    bool fin_received = false;   // CLOSE_WAIT: the peer's FIN is in rcv_nxt
    // Agreed options.
    std::uint16_t mss_local = 0, smss = 0, mss_path = 0;
    bool sack = false;
    bool timestamps = false;
    std::uint32_t ts_offset = 0, ts_recent = 0, last_ack_sent = 0;
    bool ecn = false;
    // Estimates.
    bool has_rtt = false;
    std::int64_t srtt8 = 0, rttvar4 = 0;  // RttEstimator's: eighths and quarters of a microsecond
    std::uint32_t cwnd = 0, ssthresh = 0;
    // The connection's options that a socket sets.
    bool nodelay = false, keepalive = false;
    std::uint32_t min_rto_ms = 0, max_rto_ms = 0, delayed_ack_ms = 0;
    std::uint32_t keepalive_idle_ms = 0, keepalive_interval_ms = 0, keepalive_probes = 0;
    std::uint32_t send_buffer = 0, recv_buffer = 0;
    std::string congestion;
    // Bytes: from SND.UNA (sent or not), readable from the first unread one, out of order.
    std::vector<std::uint8_t> unacknowledged;
    std::vector<std::uint8_t> readable;
    std::vector<ImageRange> out_of_order;
};

// The record's bytes.
[[nodiscard]] std::vector<std::uint8_t> encode(const ConnectionImage& image);
// An image read from untrusted bytes, every field checked.
[[nodiscard]] base::Result<ConnectionImage, ImageError> decode(std::span<const std::uint8_t> bytes);

}  // namespace ms::utcp
