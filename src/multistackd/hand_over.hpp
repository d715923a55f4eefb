// Contract: the hand-over between two daemons on one interface (docs/DESIGN.md §6,
// "Hand-over"). The running daemon describes everything the next one takes up: the
// interface lock, the AF_XDP sockets with their UMEMs, the ports, the claims and the
// control plane. The description is one versioned record (CBOR, through nlohmann-json)
// whose descriptors travel beside it, over the taker's control session, at most
// ctl::kMaxFdsPerMessage to a message. The record is bounded (kMaxRecordBytes,
// kMaxRecordDescriptors) and checked whole before any of it is used: every descriptor
// it names arrived and is named once, every index and count is within its bound. A
// reader takes any version up to its own and ignores keys it does not know, so a newer
// daemon takes over from an older one. Until the taker answers, the giver owns
// everything; if the taker refuses or goes, the giver serves on.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "daemon/control_server.hpp"
#include "nic/af_xdp_nic.hpp"
#include "sw/registry.hpp"
#include "sw/switch.hpp"

namespace ms::multistackd {

inline constexpr std::uint32_t kHandOverVersion = 1;
inline constexpr std::size_t kMaxRecordBytes = std::size_t{64} << 20;
inline constexpr std::size_t kMaxRecordDescriptors = std::size_t{1} << 20;

// Everything the next daemon takes up. Its descriptors are owned by whoever holds it:
// the giver's own, or the taker's once decoded (close_descriptors() gives them up).
struct HandOverState {
    std::uint32_t version = kHandOverVersion;
    int lock_fd = -1;  // the interface lock: the flock passes with the descriptor
    std::vector<nic::XskQueueState> queues;
    std::vector<sw::PortState> ports;
    std::vector<sw::ClaimState> claims;
    daemon::ControlState control;
};

// Closes every descriptor the state names.
void close_descriptors(HandOverState& state);

enum class HandOverError {
    unsupported,  // the running daemon does not hand over (it predates hand-overs)
    busy,         // the running daemon has connections in hand-off between processes: ask again soon
    refused,      // the running daemon would not (not asked by root), or the taker would not
    transport,    // the session failed or timed out
    malformed,    // the record is truncated, corrupt, out of its bounds, or of a newer version
};
struct HandOverFailure {
    HandOverError error;
    std::string detail;
};

// The record and the descriptors it names, in the order it names them.
struct EncodedState {
    std::vector<std::uint8_t> bytes;
    std::vector<int> fds;
};
[[nodiscard]] EncodedState encode(const HandOverState& state);
// The state `bytes` describe, owning the descriptors it names; any descriptor of `fds`
// it does not name is closed, and all of them on failure.
[[nodiscard]] base::Result<HandOverState, HandOverFailure> decode(std::span<const std::uint8_t> bytes, std::vector<int> fds);

// The giver: sends the record over the taker's session, waits up to `timeout_ms` for its
// answer, and says that it lets go: Done once it has (this daemon exits now), or why not
// (the taker refused or went, or could not be told; this daemon serves on).
[[nodiscard]] base::Result<base::Done, HandOverFailure> give(int session, const EncodedState& state, int timeout_ms);
// The giver, when it cannot hand over: tells the taker why (a ctl::Status).
void decline(int session, ctl::Status why);

// The taker's session with the running daemon: a connection to its control socket.
[[nodiscard]] base::Result<int, HandOverFailure> connect_to_daemon(const std::string& path);
// The taker: asks the daemon on `session` (a connected control socket) to hand over,
// and receives its state within `timeout_ms`.
[[nodiscard]] base::Result<HandOverState, HandOverFailure> request(int session, int timeout_ms);
// The taker's refusal: the giver serves on.
void refuse(int session);
// The taker's commitment: says it takes over, and waits up to `timeout_ms` for the giver
// to say it lets go. Only then may the taker use what it received: Done, or why not (the
// giver timed out and serves on, or went); the taker then closes it all and exits.
[[nodiscard]] base::Result<base::Done, HandOverFailure> take(int session, int timeout_ms);

}  // namespace ms::multistackd
