#include "switch/registry.hpp"

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

Registry::Registry(Qsbr& qsbr)
    : table_(qsbr, std::make_shared<const ClaimTable>(std::vector<ClaimTable::Entry>{}, std::vector<wire::IpAddr>{})) {}

ClaimError Registry::add(const ClaimKey& key, PortId port) {
    if (key.protocol != IPPROTO_TCP && key.protocol != IPPROTO_UDP) return ClaimError::bad_protocol;
    if (key.port == 0 || port == kNoPort) return ClaimError::bad_port;
    ClaimError result = ClaimError::ok;
    table_.update([&](const ClaimTable& t) -> std::shared_ptr<const ClaimTable> {
        // A wildcard and an exact claim of the same protocol and port may coexist here;
        // the kernel socket each claim holds (DESIGN §3) is what rules that out.
        if (t.find_exact(key) != kNoPort) {
            result = ClaimError::conflict;
            return nullptr;
        }
        auto claims = t.entries();
        claims.push_back({key, port});
        return std::make_shared<const ClaimTable>(claims, t.local_addresses());
    });
    return result;
}

ClaimError Registry::remove(const ClaimKey& key, PortId port) {
    ClaimError result = ClaimError::ok;
    table_.update([&](const ClaimTable& t) -> std::shared_ptr<const ClaimTable> {
        auto claims = t.entries();
        auto it = std::find_if(claims.begin(), claims.end(),
                               [&](const ClaimTable::Entry& e) { return e.key == key && e.port == port; });
        if (it == claims.end()) {
            result = ClaimError::not_found;
            return nullptr;
        }
        claims.erase(it);
        return std::make_shared<const ClaimTable>(claims, t.local_addresses());
    });
    return result;
}

std::size_t Registry::remove_port(PortId port) {
    std::size_t removed = 0;
    table_.update([&](const ClaimTable& t) -> std::shared_ptr<const ClaimTable> {
        auto claims = t.entries();
        removed = std::erase_if(claims, [port](const ClaimTable::Entry& e) { return e.port == port; });
        if (removed == 0) return nullptr;
        return std::make_shared<const ClaimTable>(claims, t.local_addresses());
    });
    return removed;
}

void Registry::set_local_addresses(std::vector<wire::IpAddr> addresses) {
    table_.update([&](const ClaimTable& t) { return std::make_shared<const ClaimTable>(t.entries(), std::move(addresses)); });
}

}  // namespace ms::sw
