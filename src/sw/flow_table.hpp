// Contract: a shared claim's record of its members' TCP connections (port_group.hpp,
// docs/DESIGN.md §4.2), keyed exactly by the peer's address and port and the local
// address. FlowTable holds the established ones (which member holds each), bounded;
// EmbryoCache the SYN-ACKs not yet acknowledged, in fixed memory that a new SYN-ACK
// overwrites, so that a SYN flood evicts embryos instead of filling anything. Lock-free
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
    enum class Phase : std::uint8_t { established = 1, closing = 2 };
    struct RecordedFlow {
        PortId port = kNoPort;
        Phase phase = Phase::established;
        std::uint16_t stamp = 0;  // the group clock (ticks, 14 bits) when the phase began
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
    // Visits every live flow (its key and record); the writer's side.
    template <class Visit>
    void for_each(Visit visit) const {
        for (std::uint64_t i = 0; i <= mask_; ++i) {
            const std::uint64_t s = load(cells_[i], std::memory_order_relaxed);
            if (s != kEmpty && s != kTombstone) visit(cells_[i].key, unpack(s));
        }
    }
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

// The SYN-ACKs that members sent and their peers have not acknowledged: a set-associative
// cache (a key's hash picks a set of kWays slots), where a new SYN-ACK takes its key's own
// slot, an empty one, or else the oldest of the set. Its memory is fixed at creation, so a
// flood of SYNs only evicts the oldest embryos. A slot carries a version (a sequence
// lock): a reader that sees it change, or odd, across its reads takes the slot as empty.
class EmbryoCache {
public:
    struct Embryo {
        PortId port = kNoPort;
        std::uint32_t syn_ack_seq = 0;
    };
    // A cache of `slots` slots (rounded up to a power of two), or nothing if memory is short.
    [[nodiscard]] static std::unique_ptr<EmbryoCache> create(std::size_t slots);

    // Reader side.
    [[nodiscard]] bool find(const FlowKey& key, Embryo& out) const;
    // Writer side.
    void put(const FlowKey& key, const Embryo& e);
    void forget(const FlowKey& key);
    void forget_port(PortId port);

private:
    static constexpr std::size_t kWays = 4;
    struct EmbryoSlot {
        std::uint64_t version;  // odd while a writer changes the slot
        FlowKey key;
        std::uint64_t state;  // 0: empty; else port + 1 << 32 | SYN-ACK sequence
        std::uint64_t age;    // the writer's count of puts when it was written (writer only)
    };
    struct FreeSlots {
        void operator()(EmbryoSlot* s) const { std::free(s); }
    };
    EmbryoCache(EmbryoSlot* slots, std::size_t sets) : slots_(slots), set_mask_(sets - 1) {}
    [[nodiscard]] EmbryoSlot* set_of(const FlowKey& key) const { return &slots_[(key.hash() & set_mask_) * kWays]; }
    void write(EmbryoSlot& slot, const FlowKey& key, std::uint64_t state);

    std::unique_ptr<EmbryoSlot[], FreeSlots> slots_;
    std::uint64_t set_mask_;
    std::uint64_t puts_ = 0;
};

}  // namespace ms::sw
