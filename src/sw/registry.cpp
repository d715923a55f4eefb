#include "sw/registry.hpp"

#include <netinet/in.h>

#include <algorithm>
#include <bit>

namespace ms::sw {

std::uint64_t PackedClaimKey::hash() const {
    // Multiply-xorshift (the splitmix64 finaliser) over the three words: cheap, and
    // good enough for a table kept at most half full.
    std::uint64_t h = addr0 * 0x9e3779b97f4a7c15ull ^ addr1 ^ (meta << 7);
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    return h ^ (h >> 31);
}

ClaimTable::ClaimTable(std::size_t capacity, std::vector<wire::IpAddr> local_addresses)
    : cells_(std::make_unique<Cell[]>(capacity)), mask_(capacity - 1), local_(std::move(local_addresses)) {}

PortId ClaimTable::find(const PackedClaimKey& key) const {
    for (std::uint64_t i = key.hash() & mask_;; i = (i + 1) & mask_) {
        const Cell& s = cells_[i];
        const std::uint32_t state = s.state.load(std::memory_order_acquire);
        if (state == kEmpty) return kNoPort;  // used slots <= 1/2: an empty slot exists
        if (state != kTombstone && s.key == key) return static_cast<PortId>(state);
    }
}

void ClaimTable::insert(const ClaimKey& key, PortId port) {
    const PackedClaimKey packed(key);
    std::uint64_t i = packed.hash() & mask_;
    while (cells_[i].state.load(std::memory_order_relaxed) != kEmpty) i = (i + 1) & mask_;
    cells_[i].key = packed;
    cells_[i].state.store(port, std::memory_order_release);
    ++used_;
}

bool ClaimTable::erase(const ClaimKey& key, PortId port) {
    const PackedClaimKey packed(key);
    for (std::uint64_t i = packed.hash() & mask_;; i = (i + 1) & mask_) {
        Cell& s = cells_[i];
        const std::uint32_t state = s.state.load(std::memory_order_relaxed);
        if (state == kEmpty) return false;
        if (state != kTombstone && s.key == packed) {
            if (state != port) return false;
            s.state.store(kTombstone, std::memory_order_release);
            return true;
        }
    }
}

bool ClaimTable::is_local(const wire::IpAddr& addr) const {
    return std::find(local_.begin(), local_.end(), addr) != local_.end();
}

PortId ClaimTable::lookup(std::uint8_t protocol, const wire::IpAddr& addr, std::uint16_t port) const {
    const PortId exact = find(PackedClaimKey(protocol, addr, port));
    if (exact != kNoPort || !is_local(addr)) return exact;
    return find(PackedClaimKey(protocol, wire::IpAddr::any(addr.family), port));
}

namespace {
constexpr std::size_t kMinCapacity = 16;
}  // namespace

Registry::Registry(Qsbr& qsbr)
    : writable_(std::make_shared<ClaimTable>(kMinCapacity, std::vector<wire::IpAddr>{})), table_(qsbr, writable_) {}

void Registry::rebuild(std::vector<wire::IpAddr> local) {
    const std::size_t capacity = std::bit_ceil(std::max(kMinCapacity, (by_order_.size() + 1) * 4));
    auto next = std::make_shared<ClaimTable>(capacity, std::move(local));
    for (const auto& [order, e] : by_order_) next->insert(e.key, e.port);
    writable_ = next;
    table_.update([&](const ClaimTable&) { return next; });
}

base::Result<base::Done, ClaimError> Registry::add(const ClaimKey& key, PortId port) {
    if (key.protocol != IPPROTO_TCP && key.protocol != IPPROTO_UDP) return ClaimError::bad_protocol;
    if (key.port == 0 || port == kNoPort) return ClaimError::bad_port;
    std::lock_guard lock(mutex_);
    // A wildcard and an exact claim of the same protocol and port may coexist here;
    // the kernel socket each claim holds (docs/DESIGN.md §3) is what rules that out.
    if (writable_->find_exact(key) != kNoPort) return ClaimError::conflict;
    if (!writable_->has_room()) rebuild(writable_->local_addresses());
    writable_->insert(key, port);
    const std::uint64_t order = next_order_++;
    by_order_.emplace(order, ClaimTable::Entry{key, port});
    order_of_.emplace(PackedClaimKey(key), order);
    return base::Done{};
}

base::Result<base::Done, ClaimError> Registry::remove(const ClaimKey& key, PortId port) {
    std::lock_guard lock(mutex_);
    if (!writable_->erase(key, port)) return ClaimError::not_found;
    const auto it = order_of_.find(PackedClaimKey(key));
    by_order_.erase(it->second);
    order_of_.erase(it);
    return base::Done{};
}

std::size_t Registry::remove_port(PortId port) {
    std::lock_guard lock(mutex_);
    std::size_t removed = 0;
    for (auto it = by_order_.begin(); it != by_order_.end();) {
        if (it->second.port != port) {
            ++it;
            continue;
        }
        (void)writable_->erase(it->second.key, port);
        order_of_.erase(PackedClaimKey(it->second.key));
        it = by_order_.erase(it);
        ++removed;
    }
    return removed;
}

void Registry::set_local_addresses(std::vector<wire::IpAddr> addresses) {
    std::lock_guard lock(mutex_);
    rebuild(std::move(addresses));
}

std::vector<ClaimTable::Entry> Registry::entries() const {
    std::lock_guard lock(mutex_);
    std::vector<ClaimTable::Entry> out;
    out.reserve(by_order_.size());
    for (const auto& [order, e] : by_order_) out.push_back(e);
    return out;
}

std::size_t Registry::size() const {
    std::lock_guard lock(mutex_);
    return by_order_.size();
}

}  // namespace ms::sw
