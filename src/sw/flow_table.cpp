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
           (std::uint64_t{f.stamp & 0x3fffu} << 32);
}

FlowTable::RecordedFlow FlowTable::unpack(std::uint64_t s) {
    return {static_cast<PortId>(s >> 48), static_cast<Phase>((s >> 46) & 3), static_cast<std::uint16_t>((s >> 32) & 0x3fff)};
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

// ---- EmbryoCache --------------------------------------------------------------------

std::unique_ptr<EmbryoCache> EmbryoCache::create(std::size_t slots) {
    const std::size_t sets = std::bit_ceil(std::max<std::size_t>(4, slots / kWays));
    auto* memory = static_cast<EmbryoSlot*>(std::calloc(sets * kWays, sizeof(EmbryoSlot)));
    if (!memory) return nullptr;
    return std::unique_ptr<EmbryoCache>(new EmbryoCache(memory, sets));
}

namespace {
std::uint64_t load_word(const std::uint64_t& w, std::memory_order order = std::memory_order_relaxed) {
    return std::atomic_ref<const std::uint64_t>(w).load(order);
}
void store_word(std::uint64_t& w, std::uint64_t v, std::memory_order order = std::memory_order_relaxed) {
    std::atomic_ref<std::uint64_t>(w).store(v, order);
}
}  // namespace

bool EmbryoCache::find(const FlowKey& key, Embryo& out) const {
    const EmbryoSlot* set = set_of(key);
    for (std::size_t way = 0; way < kWays; ++way) {
        const EmbryoSlot& slot = set[way];
        const std::uint64_t before = load_word(slot.version, std::memory_order_acquire);
        if (before & 1) continue;
        FlowKey seen;
        for (int i = 0; i < 5; ++i) seen.words[i] = load_word(slot.key.words[i]);
        const std::uint64_t state = load_word(slot.state);
        std::atomic_thread_fence(std::memory_order_acquire);
        if (load_word(slot.version) != before || state == 0 || !(seen == key)) continue;
        out = {static_cast<PortId>((state >> 32) - 1), static_cast<std::uint32_t>(state)};
        return true;
    }
    return false;
}

void EmbryoCache::write(EmbryoSlot& slot, const FlowKey& key, std::uint64_t state) {
    const std::uint64_t v = load_word(slot.version);
    store_word(slot.version, v + 1);
    std::atomic_thread_fence(std::memory_order_release);
    for (int i = 0; i < 5; ++i) store_word(slot.key.words[i], key.words[i]);
    store_word(slot.state, state);
    store_word(slot.version, v + 2, std::memory_order_release);
}

void EmbryoCache::put(const FlowKey& key, const Embryo& e) {
    EmbryoSlot* set = set_of(key);
    EmbryoSlot* chosen = &set[0];
    for (std::size_t way = 0; way < kWays; ++way) {
        EmbryoSlot& slot = set[way];
        if (slot.state != 0 && slot.key == key) {
            chosen = &slot;
            break;
        }
        if (chosen->state != 0 && (slot.state == 0 || slot.age < chosen->age)) chosen = &slot;
    }
    chosen->age = ++puts_;
    write(*chosen, key, ((std::uint64_t{e.port} + 1) << 32) | e.syn_ack_seq);
}

void EmbryoCache::forget(const FlowKey& key) {
    EmbryoSlot* set = set_of(key);
    for (std::size_t way = 0; way < kWays; ++way) {
        if (set[way].state != 0 && set[way].key == key) write(set[way], key, 0);
    }
}

void EmbryoCache::forget_port(PortId port) {
    for (std::uint64_t i = 0; i < (set_mask_ + 1) * kWays; ++i) {
        EmbryoSlot& slot = slots_[i];
        if (slot.state != 0 && static_cast<PortId>((slot.state >> 32) - 1) == port) write(slot, slot.key, 0);
    }
}

}  // namespace ms::sw
