// Contract: the claim registry (docs/DESIGN.md §2, §4). It maps a claim, a 3-tuple of
// (protocol, address, port), to the switch port that owns it, or to the group of ports
// that share it (port_group.hpp), and knows the switch's
// local addresses, so that a wildcard claim (0.0.0.0 or ::) matches only traffic to or
// from an address of ours. Lookup tries the exact address first, then the wildcard.
//
// Concurrency: the writer (the control thread) changes the ClaimTable in place, slot by
// slot, and the switch workers read it lock-free (see ClaimTable). When the table fills,
// the writer publishes a new one with one atomic store (Published<T>) and the old one is
// freed once every worker has passed a quiescent point (qsbr.hpp).
// Lookups are expected O(1), by open addressing, and never allocate; so are claims,
// amortised.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "base/result.hpp"
#include "sw/port_group.hpp"
#include "sw/qsbr.hpp"
#include "wire/bytes.hpp"

namespace ms::sw {

inline constexpr std::size_t kMaxPorts = 4096;

struct ClaimKey {
    std::uint8_t protocol = 0;  // IPPROTO_TCP or IPPROTO_UDP
    wire::IpAddr addr;          // any() is the wildcard
    std::uint16_t port = 0;
    friend bool operator==(const ClaimKey&, const ClaimKey&) = default;
};

// A claim key as three words: compared and hashed without memcmp.
struct PackedClaimKey {
    std::uint64_t addr0 = 0;
    std::uint64_t addr1 = 0;
    std::uint64_t meta = 0;  // protocol, family and port

    PackedClaimKey() = default;
    PackedClaimKey(std::uint8_t protocol, const wire::IpAddr& addr, std::uint16_t port)
        : addr0(addr.word(0)),
          addr1(addr.word(1)),
          meta((std::uint64_t{protocol} << 32) | (std::uint64_t{static_cast<std::uint8_t>(addr.family)} << 16) | port) {}
    explicit PackedClaimKey(const ClaimKey& k) : PackedClaimKey(k.protocol, k.addr, k.port) {}
    [[nodiscard]] std::uint64_t hash() const;
    friend bool operator==(const PackedClaimKey&, const PackedClaimKey&) = default;
};

struct PackedClaimKeyHash {
    std::size_t operator()(const PackedClaimKey& k) const { return static_cast<std::size_t>(k.hash()); }
};

// Who holds a claim: one port, or a group of ports.
struct ClaimHolder {
    PortId port = kNoPort;
    PortGroup* group = nullptr;

    explicit operator bool() const { return port != kNoPort || group != nullptr; }
    [[nodiscard]] bool held_by(PortId p) const { return group ? group->has_member(p) : port == p; }
};

// The claims and the local addresses, as the switch workers read them. One writer (the
// Registry, under its lock) changes the table in place while readers look up lock-free:
// a slot is written once (its key, then its port with a release store), a removal leaves
// a tombstone, and a slot is never reused, so a reader that sees a port in a slot also
// sees that slot's key. When used slots would pass half the capacity, the writer builds a
// new table of the live claims and publishes it; adding a claim is amortised O(1).
class ClaimTable {
public:
    // An empty table with room for `capacity` / 2 claims (capacity: a power of two).
    ClaimTable(std::size_t capacity, std::vector<wire::IpAddr> local_addresses);
    ClaimTable(const ClaimTable&) = delete;
    ClaimTable& operator=(const ClaimTable&) = delete;

    // Who owns traffic for (protocol, addr, port): exact claim first, then the wildcard
    // if `addr` is local. Empty if no one.
    [[nodiscard]] ClaimHolder lookup(std::uint8_t protocol, const wire::IpAddr& addr, std::uint16_t port) const;
    [[nodiscard]] ClaimHolder find_exact(const ClaimKey& key) const { return find(PackedClaimKey(key)); }
    [[nodiscard]] bool is_local(const wire::IpAddr& addr) const;
    [[nodiscard]] const std::vector<wire::IpAddr>& local_addresses() const { return local_; }

    // Writer side (the Registry's lock held).
    [[nodiscard]] bool has_room() const { return (used_ + 1) * 2 <= mask_ + 1; }
    // Requires has_room() and no claim of `key` yet.
    void insert(const ClaimKey& key, const ClaimHolder& holder);
    // Hands `key`'s claim to `group` (readers see the old holder or the group).
    void share(const ClaimKey& key, PortGroup* group);
    // Leaves a tombstone where `key` was; false if it was not claimed.
    bool erase(const ClaimKey& key);

private:
    static constexpr std::uint32_t kEmpty = 0xffffffff;
    static constexpr std::uint32_t kTombstone = 0xfffffffe;
    static constexpr std::uint32_t kShared = 0xfffffffd;
    struct Cell {
        PackedClaimKey key;                        // written once, before `state` leaves kEmpty
        std::atomic<PortGroup*> group{nullptr};    // written before `state` becomes kShared
        std::atomic<std::uint32_t> state{kEmpty};  // kEmpty, kTombstone, kShared or the owning port
    };
    [[nodiscard]] ClaimHolder find(const PackedClaimKey& key) const;
    [[nodiscard]] Cell* cell_of(const PackedClaimKey& key);

    std::unique_ptr<Cell[]> cells_;    // open addressing, power-of-two size
    std::uint64_t mask_;
    std::size_t used_ = 0;             // slots that left kEmpty: live claims and tombstones
    std::vector<wire::IpAddr> local_;  // a handful: a linear scan beats hashing
};

enum class ClaimError { conflict, not_found, bad_protocol, bad_port, group_full, already_member, no_memory };

// A claim as tools list it: its members (one for an unshared claim) and its recorded flows.
struct ClaimListing {
    ClaimKey key;
    std::vector<GroupMemberView> members;
    bool shared = false;
    std::size_t flows = 0;
};

// A claim as a hand-over carries it to the next daemon (docs/DESIGN.md §6, "Hand-over"):
// its members, the first its founder unless the founder has left, and, if shared, its
// group's bound and recorded connections.
struct ClaimState {
    ClaimKey key;
    std::vector<GroupMemberView> members;
    bool shared = false;
    std::size_t max_flows = 0;
    std::vector<std::pair<FlowKey, FlowTable::RecordedFlow>> flows;
};

// What is left of a claim after a member leaves it.
enum class ClaimLeft { nothing, others };

class Registry {
public:
    explicit Registry(Qsbr& qsbr);

    // Writer side (serialised). add() is amortised O(1); it waits for readers to move on
    // only when it replaces the table. After remove() a reader may still route one frame
    // to the port (detach_port's own grace period ends that).
    [[nodiscard]] base::Result<base::Done, ClaimError> add(const ClaimKey& key, PortId port,
                                                           MemberRole role = MemberRole::serving);
    // Adds `port` to `key`'s claim, which becomes a group (port_group.hpp) if it was one
    // port's; the group records at most `max_flows` connections.
    [[nodiscard]] base::Result<base::Done, ClaimError> join(const ClaimKey& key, PortId port, MemberRole role,
                                                            std::size_t max_flows);
    // `port`'s role in `key`'s claim (a group's member, or its one holder).
    [[nodiscard]] base::Result<base::Done, ClaimError> set_role(const ClaimKey& key, PortId port, MemberRole role);
    // The claim's connection `flow` goes to member `port` (PortGroup::record_moved):
    // not_found if the claim is no group with that member, no_memory if its table is full.
    [[nodiscard]] base::Result<base::Done, ClaimError> move_flow(const ClaimKey& key, const FlowKey& flow, PortId port);
    // Takes `port` out of `key`'s claim; the claim ends with its last member.
    [[nodiscard]] base::Result<ClaimLeft, ClaimError> remove(const ClaimKey& key, PortId port);
    // Takes a port out of every claim it holds; returns how many it held.
    std::size_t remove_port(PortId port);
    // Every group's periodic upkeep (PortGroup::sweep).
    void sweep_groups(std::uint32_t now_ticks);
    void set_local_addresses(std::vector<wire::IpAddr> addresses);

    // Reader side: the current table, valid until the reader's next quiescent point.
    [[nodiscard]] const ClaimTable& read() const { return table_.read(); }
    // For the control thread and tools: the current table, valid as long as held (the
    // writer may still change it in place).
    [[nodiscard]] std::shared_ptr<const ClaimTable> snapshot() const { return table_.snapshot(); }
    // The claims, in the order they were made.
    [[nodiscard]] std::vector<ClaimListing> entries() const;
    // The claims with their groups' connections, in the order they were made (for a
    // hand-over, while the workers are stopped).
    [[nodiscard]] std::vector<ClaimState> hand_over_claims() const;
    // Makes a handed-over claim again, with its members, roles and connections: the number
    // of connections that could not be recorded again (their port is no member), or why the
    // claim could not be made (nothing of it is left then).
    [[nodiscard]] base::Result<std::size_t, ClaimError> restore(const ClaimState& claim);
    [[nodiscard]] std::size_t size() const;

private:
    // A live claim, on the writer's side.
    struct Record {
        ClaimKey key;
        PortId port = kNoPort;  // an unshared claim's port
        MemberRole role = MemberRole::serving;
        std::unique_ptr<PortGroup> group;  // a shared claim's members
        [[nodiscard]] ClaimHolder holder() const { return {group ? kNoPort : port, group.get()}; }
    };
    // Replaces the table by one with room for twice the live claims and `local`.
    void rebuild(std::vector<wire::IpAddr> local);
    // Ends a claim (the lock held); its group is freed once no reader can hold it.
    void end_claim(std::map<std::uint64_t, Record>::iterator it);

    Qsbr& qsbr_;
    mutable std::mutex mutex_;
    std::shared_ptr<ClaimTable> writable_;  // the published table, for the writer
    Published<ClaimTable> table_;
    std::uint64_t next_order_ = 0;
    std::map<std::uint64_t, Record> by_order_;  // the live claims, for listing
    std::unordered_map<PackedClaimKey, std::uint64_t, PackedClaimKeyHash> order_of_;
};

}  // namespace ms::sw
