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

ClaimHolder ClaimTable::find(const PackedClaimKey& key) const {
    for (std::uint64_t i = key.hash() & mask_;; i = (i + 1) & mask_) {
        const Cell& s = cells_[i];
        const std::uint32_t state = s.state.load(std::memory_order_acquire);
        if (state == kEmpty) return {};  // used slots <= 1/2: an empty slot exists
        if (state == kTombstone || !(s.key == key)) continue;
        if (state == kShared) return {kNoPort, s.group.load(std::memory_order_acquire)};
        return {static_cast<PortId>(state), nullptr};
    }
}

ClaimTable::Cell* ClaimTable::cell_of(const PackedClaimKey& key) {
    for (std::uint64_t i = key.hash() & mask_;; i = (i + 1) & mask_) {
        Cell& s = cells_[i];
        const std::uint32_t state = s.state.load(std::memory_order_relaxed);
        if (state == kEmpty) return nullptr;
        if (state != kTombstone && s.key == key) return &s;
    }
}

void ClaimTable::insert(const ClaimKey& key, const ClaimHolder& holder) {
    const PackedClaimKey packed(key);
    std::uint64_t i = packed.hash() & mask_;
    while (cells_[i].state.load(std::memory_order_relaxed) != kEmpty) i = (i + 1) & mask_;
    cells_[i].key = packed;
    cells_[i].group.store(holder.group, std::memory_order_relaxed);
    cells_[i].state.store(holder.group ? kShared : holder.port, std::memory_order_release);
    ++used_;
}

void ClaimTable::share(const ClaimKey& key, PortGroup* group) {
    Cell* c = cell_of(PackedClaimKey(key));
    if (!c) return;
    c->group.store(group, std::memory_order_release);
    c->state.store(kShared, std::memory_order_release);
}

bool ClaimTable::erase(const ClaimKey& key) {
    Cell* c = cell_of(PackedClaimKey(key));
    if (!c) return false;
    c->state.store(kTombstone, std::memory_order_release);
    return true;
}

bool ClaimTable::is_local(const wire::IpAddr& addr) const {
    return std::find(local_.begin(), local_.end(), addr) != local_.end();
}

ClaimHolder ClaimTable::lookup(std::uint8_t protocol, const wire::IpAddr& addr, std::uint16_t port) const {
    const ClaimHolder exact = find(PackedClaimKey(protocol, addr, port));
    if (exact || !is_local(addr)) return exact;
    return find(PackedClaimKey(protocol, wire::IpAddr::any(addr.family), port));
}

namespace {
constexpr std::size_t kMinCapacity = 16;
}  // namespace

Registry::Registry(Qsbr& qsbr)
    : qsbr_(qsbr),
      writable_(std::make_shared<ClaimTable>(kMinCapacity, std::vector<wire::IpAddr>{})),
      table_(qsbr, writable_) {}

void Registry::rebuild(std::vector<wire::IpAddr> local) {
    const std::size_t capacity = std::bit_ceil(std::max(kMinCapacity, (by_order_.size() + 1) * 4));
    auto next = std::make_shared<ClaimTable>(capacity, std::move(local));
    for (const auto& [order, r] : by_order_) next->insert(r.key, r.holder());
    writable_ = next;
    table_.update([&](const ClaimTable&) { return next; });
}

base::Result<base::Done, ClaimError> Registry::add(const ClaimKey& key, PortId port, MemberRole role) {
    if (key.protocol != IPPROTO_TCP && key.protocol != IPPROTO_UDP) return ClaimError::bad_protocol;
    if (key.port == 0 || port == kNoPort) return ClaimError::bad_port;
    std::lock_guard lock(mutex_);
    // A wildcard and an exact claim of the same protocol and port may coexist here;
    // the kernel socket each claim holds (docs/DESIGN.md §3) is what rules that out.
    if (writable_->find_exact(key)) return ClaimError::conflict;
    if (!writable_->has_room()) rebuild(writable_->local_addresses());
    writable_->insert(key, {port, nullptr});
    const std::uint64_t order = next_order_++;
    by_order_.emplace(order, Record{key, port, role, nullptr});
    order_of_.emplace(PackedClaimKey(key), order);
    return base::Done{};
}

namespace {
ClaimError claim_error_for(GroupError e) {
    switch (e) {
        case GroupError::full: return ClaimError::group_full;
        case GroupError::already_member: return ClaimError::already_member;
        case GroupError::not_member: return ClaimError::not_found;
        case GroupError::no_memory: return ClaimError::no_memory;
    }
    return ClaimError::not_found;
}
}  // namespace

base::Result<base::Done, ClaimError> Registry::join(const ClaimKey& key, PortId port, MemberRole role,
                                                    std::size_t max_flows) {
    if (port == kNoPort) return ClaimError::bad_port;
    std::lock_guard lock(mutex_);
    const auto found = order_of_.find(PackedClaimKey(key));
    if (found == order_of_.end()) return ClaimError::not_found;
    Record& r = by_order_.at(found->second);
    if (!r.group) {
        if (r.port == port) return ClaimError::already_member;
        auto made = PortGroup::create(qsbr_, r.port, r.role, max_flows);
        if (!made) return ClaimError::no_memory;
        r.group = std::move(made).value();
        writable_->share(key, r.group.get());
    }
    if (auto joined = r.group->join(port, role); !joined) return claim_error_for(joined.error());
    return base::Done{};
}

std::vector<ClaimState> Registry::hand_over_claims() const {
    std::lock_guard lock(mutex_);
    std::vector<ClaimState> out;
    for (const auto& [order, r] : by_order_) {
        ClaimState c{r.key, {}, r.group != nullptr, 0, {}};
        if (!r.group) {
            c.members.push_back({r.port, r.role, true, 0});
        } else {
            c.members = r.group->members_view();
            // The founder first, where restore() makes it founder again.
            std::stable_partition(c.members.begin(), c.members.end(), [](const auto& m) { return m.founder; });
            c.max_flows = r.group->max_flows();
            c.flows = r.group->recorded_flows();
        }
        out.push_back(std::move(c));
    }
    return out;
}

base::Result<std::size_t, ClaimError> Registry::restore(const ClaimState& claim) {
    if (claim.members.empty()) return ClaimError::bad_port;
    const GroupMemberView& first = claim.members.front();
    if (auto added = add(claim.key, first.port, first.role); !added) return added.error();
    auto undo = [&](ClaimError e) -> base::Result<std::size_t, ClaimError> {
        for (const auto& m : claim.members) (void)remove(claim.key, m.port);
        return e;
    };
    if (!claim.shared) return std::size_t{0};
    const std::size_t max_flows = std::clamp<std::size_t>(claim.max_flows, 16, std::size_t{1} << 22);
    for (std::size_t i = 1; i < claim.members.size(); ++i) {
        if (auto joined = join(claim.key, claim.members[i].port, claim.members[i].role, max_flows); !joined) {
            return undo(joined.error());
        }
    }
    std::lock_guard lock(mutex_);
    PortGroup* group = by_order_.at(order_of_.at(PackedClaimKey(claim.key))).group.get();
    if (!group && claim.members.size() == 1) {  // a group whose other members had left: one again
        auto made = PortGroup::create(qsbr_, first.port, first.role, max_flows);
        if (!made) {
            end_claim(by_order_.find(order_of_.at(PackedClaimKey(claim.key))));
            return ClaimError::no_memory;
        }
        Record& r = by_order_.at(order_of_.at(PackedClaimKey(claim.key)));
        r.group = std::move(made).value();
        writable_->share(claim.key, r.group.get());
        group = r.group.get();
    }
    std::size_t lost = 0;
    for (const auto& [flow, recorded] : claim.flows) lost += group->restore_flow(flow, recorded) ? 0 : 1;
    return lost;
}

base::Result<base::Done, ClaimError> Registry::move_flow(const ClaimKey& key, const FlowKey& flow, PortId port) {
    std::lock_guard lock(mutex_);
    const auto found = order_of_.find(PackedClaimKey(key));
    if (found == order_of_.end()) return ClaimError::not_found;
    const Record& r = by_order_.at(found->second);
    if (!r.group || !r.group->has_member(port)) return ClaimError::not_found;
    if (!r.group->record_moved(flow, port)) return ClaimError::no_memory;
    return base::Done{};
}

base::Result<base::Done, ClaimError> Registry::set_role(const ClaimKey& key, PortId port, MemberRole role) {
    std::lock_guard lock(mutex_);
    const auto found = order_of_.find(PackedClaimKey(key));
    if (found == order_of_.end()) return ClaimError::not_found;
    Record& r = by_order_.at(found->second);
    if (r.group) {
        if (auto set = r.group->set_role(port, role); !set) return claim_error_for(set.error());
        return base::Done{};
    }
    if (r.port != port) return ClaimError::not_found;
    r.role = role;  // for the group it may found later
    return base::Done{};
}

void Registry::end_claim(std::map<std::uint64_t, Record>::iterator it) {
    (void)writable_->erase(it->second.key);
    order_of_.erase(PackedClaimKey(it->second.key));
    std::unique_ptr<PortGroup> group = std::move(it->second.group);
    by_order_.erase(it);
    if (group) qsbr_.synchronize();  // no worker can still be steering through it
}

base::Result<ClaimLeft, ClaimError> Registry::remove(const ClaimKey& key, PortId port) {
    std::lock_guard lock(mutex_);
    const auto found = order_of_.find(PackedClaimKey(key));
    if (found == order_of_.end()) return ClaimError::not_found;
    const auto it = by_order_.find(found->second);
    Record& r = it->second;
    if (r.group) {
        const auto left = r.group->leave(port);
        if (!left) return claim_error_for(left.error());
        if (*left > 0) return ClaimLeft::others;
    } else if (r.port != port) {
        return ClaimError::not_found;
    }
    end_claim(it);
    return ClaimLeft::nothing;
}

std::size_t Registry::remove_port(PortId port) {
    std::lock_guard lock(mutex_);
    std::size_t removed = 0;
    for (auto it = by_order_.begin(); it != by_order_.end();) {
        Record& r = it->second;
        const auto next = std::next(it);
        if (r.group) {
            if (const auto left = r.group->leave(port); left) {
                ++removed;
                if (*left == 0) end_claim(it);
            }
        } else if (r.port == port) {
            ++removed;
            end_claim(it);
        }
        it = next;
    }
    return removed;
}

void Registry::sweep_groups(std::uint32_t now_ticks) {
    std::lock_guard lock(mutex_);
    for (auto& [order, r] : by_order_) {
        if (r.group) r.group->sweep(now_ticks);
    }
}

void Registry::set_local_addresses(std::vector<wire::IpAddr> addresses) {
    std::lock_guard lock(mutex_);
    rebuild(std::move(addresses));
}

std::vector<ClaimListing> Registry::entries() const {
    std::lock_guard lock(mutex_);
    std::vector<ClaimListing> out;
    out.reserve(by_order_.size());
    for (const auto& [order, r] : by_order_) {
        if (r.group) {
            out.push_back({r.key, r.group->members_view(), true, r.group->flows()});
        } else {
            out.push_back({r.key, {{r.port, r.role, true, 0}}, false, 0});
        }
    }
    return out;
}

std::size_t Registry::size() const {
    std::lock_guard lock(mutex_);
    return by_order_.size();
}

}  // namespace ms::sw
