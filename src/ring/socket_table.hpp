// Contract: the socket table of a port (docs/DESIGN.md §5), where an application's stack publishes
// its connections for `msctl sockets`, as Onload's stack dump reads a stack's shared
// state. It is the last area of the port region (Layout::sockets_offset):
//   [SocketTableHeader][SocketRecord x kSocketSlots]
// The application writes a whole snapshot under a sequence lock: `generation` is odd
// while it writes and even when the snapshot is complete. The daemon asks for a fresh one
// by bumping `requested` (and kicking the port); the application publishes when it sees
// the change, and at least every kPublishIntervalMs while a connection exists.
//
// Ownership: generation, count, total and published_ms belong to the application;
// requested to the daemon. The daemon trusts nothing here: it copies a page, checks the
// generation did not move, and validates every record (read_page) before it shows one.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <type_traits>

namespace ms::ring {

inline constexpr std::uint32_t kSocketSlots = 4096;  // records a snapshot holds; more connections are counted, not shown
inline constexpr std::uint32_t kPublishIntervalMs = 1000;

struct SocketTableHeader {
    std::uint32_t generation;    // owner: application; odd while it writes
    std::uint32_t count;         // owner: application; records in the snapshot, at most kSocketSlots
    std::uint64_t total;         // owner: application; connections the stack has (may exceed count)
    std::uint64_t published_ms;  // owner: application; CLOCK_MONOTONIC milliseconds of the snapshot
    std::uint32_t requested;     // owner: daemon; bumped to ask for a fresh snapshot
    std::uint8_t pad[36];
};
static_assert(sizeof(SocketTableHeader) == 64);

// TCP states, numbered as in RFC 9293 §3.3.2's list (CLOSED first).
inline constexpr std::array<std::string_view, 11> kTcpStateNames = {"CLOSED",      "LISTEN",     "SYN_SENT",   "SYN_RECEIVED",
                                                                    "ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2", "CLOSE_WAIT",
                                                                    "CLOSING",     "LAST_ACK",   "TIME_WAIT"};
// What a connection's Fast Open did (RFC 7413), numbered as utcp::FastOpen.
inline constexpr std::array<std::string_view, 7> kFastOpenNames = {
    "none", "cookie_requested", "data_sent", "data_acked", "data_refused", "cookie_sent", "data_accepted"};

// SocketRecord::options bits: what the SYNs negotiated, and Fast Open's setting.
namespace sockopt {
inline constexpr std::uint8_t sack = 0x01;
inline constexpr std::uint8_t timestamps = 0x02;
inline constexpr std::uint8_t ecn = 0x04;
inline constexpr std::uint8_t window_scale = 0x08;
inline constexpr std::uint8_t fast_open = 0x10;  // RFC 7413 is on (a listener takes cookies; a client sends them)
inline constexpr std::uint8_t all = 0x1f;
}  // namespace sockopt

inline constexpr std::size_t kCongestionNameBytes = 16;
inline constexpr std::size_t kPhaseNameBytes = 12;

struct SocketRecord {
    std::uint8_t state;      // index into kTcpStateNames
    std::uint8_t family;     // 4 or 6
    std::uint8_t options;    // sockopt bits
    std::uint8_t fast_open;  // index into kFastOpenNames
    std::uint16_t local_port, remote_port;
    std::uint8_t local[16], remote[16];
    std::uint32_t mss, cwnd, ssthresh, srtt_us, rto_us, snd_wnd, rcv_wnd, unacked;
    std::uint64_t retransmits, timeouts, recoveries, bytes_in, bytes_out;
    char congestion[kCongestionNameBytes];  // NUL-terminated: [a-z0-9_-]
    // A model-based algorithm's view of the path (utcp::CcModel); zeros and "" otherwise.
    std::uint64_t pacing_rate, bandwidth;   // bytes per second
    std::uint32_t min_rtt_us;
    char phase[kPhaseNameBytes];            // NUL-terminated: [a-z0-9_-], may be empty
};
static_assert(sizeof(SocketRecord) == 160);
static_assert(std::is_trivially_copyable_v<SocketRecord> && std::is_trivially_copyable_v<SocketTableHeader>);

inline constexpr std::size_t kSocketTableBytes = sizeof(SocketTableHeader) + std::size_t{kSocketSlots} * sizeof(SocketRecord);

// Whether a record read from an application is one the daemon may show: a known state,
// family and Fast Open value, known option bits, and a printable, terminated name.
[[nodiscard]] bool valid_record(const SocketRecord& r);

// The application's side: writes `records` (at most kSocketSlots are kept) as the new
// snapshot, and notes that `requested` was answered.
void publish_sockets(std::uint8_t* table, std::span<const SocketRecord> records, std::uint64_t total, std::uint64_t now_ms);
[[nodiscard]] std::uint32_t sockets_requested(const std::uint8_t* table);

// The daemon's side.
enum class PageRead : std::uint8_t {
    ok,
    busy,  // the application was writing, or wrote meanwhile: try again
};
struct SocketPage {
    std::uint32_t generation = 0;
    std::uint32_t count = 0;   // records in the snapshot (as the application claims, capped)
    std::uint64_t total = 0;
    std::uint64_t published_ms = 0;
    std::uint32_t invalid = 0;  // records of the page that failed valid_record (left out)
};
// Copies records [first, first + out.size()) of the snapshot, keeps the valid ones at the
// front of `out`, and returns how many; `page` describes the snapshot.
[[nodiscard]] PageRead read_page(const std::uint8_t* table, std::uint32_t first, std::span<SocketRecord> out,
                                 SocketPage& page, std::size_t& kept);
// Asks the application for a fresh snapshot.
void request_sockets(std::uint8_t* table);

}  // namespace ms::ring
