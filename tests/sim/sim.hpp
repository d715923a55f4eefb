// Contract: two UTCP stacks over a lossy link, in virtual time and deterministic by
// seed (docs/DESIGN.md §9). Each direction of the link is the switch's own fault injector
// (src/sw/fault.hpp: loss, duplication, reordering, corruption, delay), driven by
// the virtual clock instead of the steady clock. Every step is one millisecond, or as many
// microseconds as the simulation is made with (a path of tens of microseconds): frames
// sent in the last step cross the link, then both stacks run their timers and flush,
// so ACKs coalesce per step as they do per batch on a real port.
//
// A Transfer runs one connection from A (the client) to B (a server on port 80): A
// sends N bytes of a known stream and closes; B checks every byte and a SHA-256 of the
// whole stream against the sender's.
#pragma once

#include <deque>
#include <memory>
#include <optional>
#include <set>
#include <vector>

#include "sw/fault.hpp"
#include "utcp/stack.hpp"

namespace ms::utcp::sim {

struct LinkConfig {
    sw::FaultSpec faults;
    std::set<std::uint64_t> drop;  // also drop these frames (1-based count in this direction)
    // A bottleneck before the faults: frames leave at this rate (bytes per second; 0: none)
    // from a FIFO of `buffer_bytes`, dropped at its tail when full.
    std::uint64_t rate = 0;
    std::uint64_t buffer_bytes = 0;
};

enum class Side : std::uint8_t { a, b };

class Simulation {
public:
    // `super_segments`: the stacks send super-segments, which the links cut into frames
    // with the switch's segmenter before the faults apply.
    Simulation(const LinkConfig& a_to_b, const LinkConfig& b_to_a, const ConnOptions& options = {},
               bool super_segments = false, std::uint64_t step_us = 1000);
    ~Simulation();

    [[nodiscard]] Stack& a() { return *a_; }
    [[nodiscard]] Stack& b() { return *b_; }
    // Virtual milliseconds, and microseconds, as the stacks count them.
    [[nodiscard]] std::uint64_t now() const { return ms_from_us(now_us_); }
    [[nodiscard]] std::uint64_t now_us() const { return now_us_; }
    void step();
    // Every connection of one side moves to a new stack on the same link and address, as
    // when a process hands its connections to another (connection_image.hpp): written
    // out, encoded, decoded and taken up with the same handlers. The old stack stays,
    // cut off from the link. The number of connections that moved.
    std::size_t move_connections(Side side);
    [[nodiscard]] std::uint64_t frames_a_to_b() const { return ab_.count; }
    // A to B's bottleneck: how long a frame joining its queue now would wait (µs), sampled
    // at every step; and the frames its full queue dropped.
    [[nodiscard]] const std::vector<std::uint64_t>& queue_delays_a_to_b() const { return ab_.queue_delays; }
    [[nodiscard]] std::uint64_t bottleneck_drops_a_to_b() const { return ab_.bottleneck_drops; }
    [[nodiscard]] std::uint64_t super_segments_a_to_b() const { return a_link_.super_segments(); }

private:
    struct Direction {
        std::unique_ptr<sw::FaultInjector> injector;
        std::set<std::uint64_t> drop;
        std::uint64_t count = 0;
        std::uint64_t rate = 0;
        std::uint64_t buffer_bytes = 0;
        std::deque<std::pair<std::uint64_t, std::vector<std::uint8_t>>> queue;  // (departure, frame)
        std::uint64_t queued_bytes = 0;
        std::uint64_t next_free_us = 0;
        std::uint64_t bottleneck_drops = 0;
        std::vector<std::uint64_t> queue_delays;
    };
    // Through `dir`'s bottleneck, if it has one; false if its queue was full.
    bool enqueue(Direction& dir, const std::vector<std::uint8_t>& frame);
    void cross(MemoryLink& from, Direction& dir, Stack& to);

    std::uint64_t now_us_ = us_from_ms(1'000'000);
    std::uint64_t step_us_;
    StackConfig a_config_;
    StackConfig b_config_;
    std::vector<std::unique_ptr<Stack>> retired_;  // stacks whose connections moved
    MemoryLink a_link_;
    MemoryLink b_link_;  // both declared before the stacks that hold them
    std::unique_ptr<Stack> a_;
    std::unique_ptr<Stack> b_;
    Direction ab_;
    Direction ba_;
};

struct TransferResult {
    bool completed = false;        // both sides closed, every byte checked
    bool bytes_match = false;      // every byte and the SHA-256 equal
    std::uint64_t received = 0;
    std::uint64_t virtual_ms = 0;
    ConnStats sender;              // the client's connection, as it closed
    ConnStats receiver;
    std::string error;
    std::uint64_t pins_alive = 0;  // blocks sent by reference that the sender still holds at the end
    std::size_t moved = 0;         // connections that moved (MoveAt)
};

// Moves one side's connections to a new stack `after_ms` into the transfer.
struct MoveAt {
    Side side = Side::b;
    std::uint64_t after_ms = 0;
};

// Sends `bytes` from A to B and waits up to `limit_ms` of virtual time. `by_reference`:
// every other chunk goes by Connection::send_reference from a block the sender pins.
// `family`: over IPv4 or IPv6 (both stacks have an address of each).
TransferResult transfer(Simulation& sim, std::uint64_t bytes, std::uint64_t limit_ms, bool by_reference = false,
                        wire::IpFamily family = wire::IpFamily::v4, std::optional<MoveAt> move = std::nullopt);

}  // namespace ms::utcp::sim
