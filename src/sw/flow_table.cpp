#include "sw/flow_table.hpp"

#include <algorithm>
#include <bit>

namespace ms::sw {

FlowKey::FlowKey(const wire::IpAddr& remote, std::uint16_t remote_port, const wire::IpAddr& local, std::uint16_t local_port)
    : words{remote.word(0), remote.word(1), local.word(0), local.word(1),
            (std::uint64_t{static_cast<std::uint8_t>(remote.family)} << 32) | (std::uint64_t{remote_port} << 16) |
                local_port} {}

std::uint64_t FlowKey::hash() const {
    // The splitmix64 finaliser over a multiply-xor fold of the words: the table is kept
    // at most half full, and its keys are exact, so a weak spread only costs probes.
    std::uint64_t h = words[4];
    for (int i = 0; i < 4; ++i) h = (h ^ words[i]) * 0x9e3779b97f4a7c15ull;
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    return h ^ (h >> 31);
}

// ---- FlowTable ----------------------------------------------------------------------

namespace {
std::size_t cells_for(std::size_t max_flows) { return std::bit_ceil(std::max<std::size_t>(16, max_flows * 3)); }
}  // namespace

std::unique_ptr<FlowTable> FlowTable::create(std::size_t max_flows) {
    const std::size_t n = cells_for(max_flows);
    auto* cells = static_cast<FlowSlot*>(std::calloc(n, sizeof(FlowSlot)));
    if (!cells) return nullptr;
    return std::unique_ptr<FlowTable>(new FlowTable(cells, n, max_flows));
}

FlowTable::FlowTable(FlowSlot* cells, std::size_t cell_count, std::size_t max_flows)
    : cells_(cells), mask_(cell_count - 1), max_flows_(max_flows) {}

std::uint64_t FlowTable::pack(const RecordedFlow& f) {
    return (std::uint64_t{f.port} << 48) | (std::uint64_t{static_cast<std::uint8_t>(f.phase)} << 46) |
           (std::uint64_t{f.stamp & 0x3fffu} << 32) | f.syn_ack_seq;
}

FlowTable::RecordedFlow FlowTable::unpack(std::uint64_t s) {
    return {static_cast<PortId>(s >> 48), static_cast<Phase>((s >> 46) & 3), static_cast<std::uint16_t>((s >> 32) & 0x3fff),
            static_cast<std::uint32_t>(s)};
}

bool FlowTable::find(const FlowKey& key, RecordedFlow& out) const {
    for (std::uint64_t i = key.hash() & mask_;; i = (i + 1) & mask_) {
        const FlowSlot& c = cells_[i];
        const std::uint64_t s = load(c, std::memory_order_acquire);
        if (s == kEmpty) return false;  // at most half the cells are used: an empty one exists
        if (s != kTombstone && c.key == key) {
            out = unpack(s);
            return true;
        }
    }
}

FlowTable::FlowSlot* FlowTable::slot_of(const FlowKey& key) {
    for (std::uint64_t i = key.hash() & mask_;; i = (i + 1) & mask_) {
        FlowSlot& c = cells_[i];
        const std::uint64_t s = load(c, std::memory_order_relaxed);
        if (s == kEmpty) return nullptr;
        if (s != kTombstone && c.key == key) return &c;
    }
}

bool FlowTable::put(const FlowKey& key, const RecordedFlow& flow) {
    if (FlowSlot* c = slot_of(key)) {
        store(*c, pack(flow));
        return true;
    }
    if (live_ >= max_flows_ || (used_ + 1) * 2 > mask_ + 1) return false;
    // A new key goes to an empty cell, never a tombstone: a reader may be probing past
    // that tombstone for another key, and must not see a key change under it.
    std::uint64_t i = key.hash() & mask_;
    while (load(cells_[i], std::memory_order_relaxed) != kEmpty) i = (i + 1) & mask_;
    cells_[i].key = key;
    store(cells_[i], pack(flow));
    ++used_;
    ++live_;
    return true;
}

bool FlowTable::erase(const FlowKey& key) {
    FlowSlot* c = slot_of(key);
    if (!c) return false;
    store(*c, kTombstone);
    --live_;
    return true;
}

std::unique_ptr<FlowTable> FlowTable::compacted() const {
    auto next = create(max_flows_);
    if (!next) return nullptr;
    for (std::uint64_t i = 0; i <= mask_; ++i) {
        const std::uint64_t s = load(cells_[i], std::memory_order_relaxed);
        if (s != kEmpty && s != kTombstone) (void)next->put(cells_[i].key, unpack(s));
    }
    return next;
}

}  // namespace ms::sw
