#include "switch/registry.hpp"

#include <netinet/in.h>

#include <algorithm>
#include <bit>
#include <thread>

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

ClaimTable::ClaimTable(const std::vector<Entry>& claims, std::vector<wire::IpAddr> local_addresses)
    : entries_(claims), local_(std::move(local_addresses)) {
    const std::size_t size = std::bit_ceil(std::max<std::size_t>(16, claims.size() * 2));
    slots_.resize(size);
    mask_ = size - 1;
    for (const Entry& e : claims) {
        const PackedClaimKey key(e.key);
        std::uint64_t i = key.hash() & mask_;
        while (slots_[i].port != kNoPort) i = (i + 1) & mask_;
        slots_[i] = Slot{key, e.port};
    }
}

PortId ClaimTable::find(const PackedClaimKey& key) const {
    for (std::uint64_t i = key.hash() & mask_;; i = (i + 1) & mask_) {
        const Slot& s = slots_[i];
        if (s.port == kNoPort) return kNoPort;  // load factor <= 1/2: an empty slot exists
        if (s.key == key) return s.port;
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

Registry::Registry(std::size_t reader_count)
    : current_owner_(std::make_shared<const ClaimTable>(std::vector<ClaimTable::Entry>{}, std::vector<wire::IpAddr>{})),
      current_(current_owner_.get()),
      readers_(std::make_unique<ReaderState[]>(reader_count)),
      reader_count_(reader_count) {}

Registry::~Registry() = default;

ClaimError Registry::add(const ClaimKey& key, PortId port) {
    if (key.protocol != IPPROTO_TCP && key.protocol != IPPROTO_UDP) return ClaimError::bad_protocol;
    if (key.port == 0 || port == kNoPort) return ClaimError::bad_port;
    std::lock_guard lock(writer_);
    // A wildcard and an exact claim of the same protocol and port may coexist, as two
    // kernel sockets bound to 0.0.0.0:p and a:p cannot: the kernel socket each claim
    // holds (DESIGN §3) is what rules that out in the daemon.
    if (current_owner_->find_exact(key) != kNoPort) return ClaimError::conflict;
    auto claims = current_owner_->entries();
    claims.push_back({key, port});
    publish(std::move(claims), current_owner_->local_addresses());
    return ClaimError::ok;
}

ClaimError Registry::remove(const ClaimKey& key, PortId port) {
    std::lock_guard lock(writer_);
    auto claims = current_owner_->entries();
    auto it = std::find_if(claims.begin(), claims.end(),
                           [&](const ClaimTable::Entry& e) { return e.key == key && e.port == port; });
    if (it == claims.end()) return ClaimError::not_found;
    claims.erase(it);
    publish(std::move(claims), current_owner_->local_addresses());
    return ClaimError::ok;
}

std::size_t Registry::remove_port(PortId port) {
    std::lock_guard lock(writer_);
    auto claims = current_owner_->entries();
    const std::size_t removed = std::erase_if(claims, [port](const ClaimTable::Entry& e) { return e.port == port; });
    if (removed) publish(std::move(claims), current_owner_->local_addresses());
    return removed;
}

void Registry::set_local_addresses(std::vector<wire::IpAddr> addresses) {
    std::lock_guard lock(writer_);
    publish(current_owner_->entries(), std::move(addresses));
}

std::shared_ptr<const ClaimTable> Registry::snapshot() const {
    std::lock_guard lock(writer_);
    return current_owner_;
}

const ClaimTable& Registry::read(std::size_t reader) {
    readers_[reader].seen.store(epoch_.load(std::memory_order_acquire), std::memory_order_seq_cst);
    return *current_.load(std::memory_order_seq_cst);
}

void Registry::offline(std::size_t reader) { readers_[reader].seen.store(0, std::memory_order_release); }

void Registry::publish(std::vector<ClaimTable::Entry> claims, std::vector<wire::IpAddr> local) {
    auto next = std::make_shared<const ClaimTable>(claims, std::move(local));
    current_.store(next.get(), std::memory_order_seq_cst);
    const std::uint64_t epoch = epoch_.fetch_add(1, std::memory_order_seq_cst) + 1;
    // A reader that announced `epoch` or later loaded `next`; one that is offline holds
    // nothing. Only then may the old table go.
    wait_for_readers(epoch);
    current_owner_ = std::move(next);
}

void Registry::wait_for_readers(std::uint64_t epoch) const {
    for (std::size_t r = 0; r < reader_count_; ++r) {
        for (;;) {
            const std::uint64_t seen = readers_[r].seen.load(std::memory_order_seq_cst);
            if (seen == 0 || seen >= epoch) break;
            std::this_thread::yield();
        }
    }
}

}  // namespace ms::sw
