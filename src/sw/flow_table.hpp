// Contract: a shared claim's record of its members' TCP connections (port_group.hpp,
// docs/DESIGN.md §4.2): which member holds each connection, keyed exactly by the peer's
// address and port and the local address. Open addressing, at most half full; lock-free
// readers and one writer at a time (the caller serialises writers).
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "wire/bytes.hpp"

namespace ms::sw {

using PortId = std::uint16_t;
inline constexpr PortId kNoPort = 0xffff;

// One connection of a group, seen from the switch: the peer's address and port and the
// local address (the local port is the claim's).
struct FlowKey {
    std::uint64_t words[5] = {};

    FlowKey() = default;
    FlowKey(const wire::IpAddr& remote, std::uint16_t remote_port, const wire::IpAddr& local, std::uint16_t local_port);
    [[nodiscard]] std::uint64_t hash() const;
    friend bool operator==(const FlowKey&, const FlowKey&) = default;
};

// The group's recorded connections: open addressing with exact keys, at most half full.
// Lock-free readers; one writer at a time (the group's mutex). A cell is written once (its
// key, then its state with a release store) and only ever changes state afterwards, so a
// reader that sees a state sees its key; a removed cell stays a tombstone until the
// control thread compacts the table into a new one.
class FlowTable {
    struct FlowSlot;

public:
    enum class Phase : std::uint8_t { embryonic = 1, established = 2, closing = 3 };
    struct RecordedFlow {
        PortId port = kNoPort;
        Phase phase = Phase::embryonic;
        std::uint16_t stamp = 0;        // the group clock (ticks, 14 bits) when the phase began
        std::uint32_t syn_ack_seq = 0;  // the SYN-ACK's sequence number, while embryonic
    };

    // An empty table for `max_flows` flows, or nothing if memory is short.
    [[nodiscard]] static std::unique_ptr<FlowTable> create(std::size_t max_flows);
    [[nodiscard]] std::size_t max_flows() const { return max_flows_; }
    [[nodiscard]] std::size_t live() const { return live_; }
    [[nodiscard]] std::size_t tombstones() const { return used_ - live_; }

    // Reader side.
    [[nodiscard]] bool find(const FlowKey& key, RecordedFlow& out) const;

    // Writer side (the group's mutex held). put() adds or replaces; false if the table
    // has no room (live flows at the bound, or too many tombstones until compaction).
    bool put(const FlowKey& key, const RecordedFlow& flow);
    bool erase(const FlowKey& key);
    // Visits every live flow; `keep` returns false to remove it.
    template <class Keep>
    std::size_t erase_unless(Keep keep);
    // A new table with the live flows and no tombstones; nothing if memory is short.
    [[nodiscard]] std::unique_ptr<FlowTable> compacted() const;

private:
    FlowTable(FlowSlot* cells, std::size_t cell_count, std::size_t max_flows);

    static constexpr std::uint64_t kEmpty = 0;
    static constexpr std::uint64_t kTombstone = 1;
    // All zeros is an empty cell, so the array comes from calloc: the kernel backs its
    // pages only when a flow first lands on them, and an idle group costs no memory.
    struct FlowSlot {
        FlowKey key;
        std::uint64_t state;  // kEmpty, kTombstone or a packed RecordedFlow; accessed through atomic_ref
    };
    struct FreeCells {
        void operator()(FlowSlot* c) const { std::free(c); }
    };
    static std::uint64_t pack(const RecordedFlow& f);
    static RecordedFlow unpack(std::uint64_t s);
    static std::uint64_t load(const FlowSlot& c, std::memory_order order) {
        return std::atomic_ref<const std::uint64_t>(c.state).load(order);
    }
    static void store(FlowSlot& c, std::uint64_t s) {
        std::atomic_ref<std::uint64_t>(c.state).store(s, std::memory_order_release);
    }
    FlowSlot* slot_of(const FlowKey& key);

    std::unique_ptr<FlowSlot[], FreeCells> cells_;
    std::uint64_t mask_;
    std::size_t max_flows_;
    std::size_t used_ = 0;  // cells that left kEmpty
    std::size_t live_ = 0;
};

template <class Keep>
std::size_t FlowTable::erase_unless(Keep keep) {
    std::size_t removed = 0;
    for (std::uint64_t i = 0; i <= mask_; ++i) {
        const std::uint64_t s = load(cells_[i], std::memory_order_relaxed);
        if (s == kEmpty || s == kTombstone || keep(unpack(s))) continue;
        store(cells_[i], kTombstone);
        --live_;
        ++removed;
    }
    return removed;
}

}  // namespace ms::sw
