// Contract: the claim registry (DESIGN §2, §4). It maps a claim, a 3-tuple of
// (protocol, address, port), to the switch port that owns it, and knows the switch's
// local addresses, so that a wildcard claim (0.0.0.0 or ::) matches only traffic to or
// from an address of ours. Lookup tries the exact address first, then the wildcard.
//
// Concurrency: writers (the control thread) build a new immutable ClaimTable and
// publish it with one atomic store (copy-on-write, Published<T>); the switch workers
// read it lock-free, and the old table is freed once every worker has passed a
// quiescent point (qsbr.hpp).
// Lookups are expected O(1), by open addressing, and never allocate.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "switch/qsbr.hpp"
#include "wire/bytes.hpp"

namespace ms::sw {

using PortId = std::uint16_t;
inline constexpr PortId kNoPort = 0xffff;
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

// An immutable snapshot: the claims and the local addresses at one moment.
class ClaimTable {
public:
    struct Entry {
        ClaimKey key;
        PortId port = kNoPort;
    };

    ClaimTable() = default;
    ClaimTable(const std::vector<Entry>& claims, std::vector<wire::IpAddr> local_addresses);

    // The port that owns traffic for (protocol, addr, port): exact claim first, then
    // the wildcard if `addr` is local. kNoPort if none.
    [[nodiscard]] PortId lookup(std::uint8_t protocol, const wire::IpAddr& addr, std::uint16_t port) const;
    [[nodiscard]] PortId find_exact(const ClaimKey& key) const { return find(PackedClaimKey(key)); }
    [[nodiscard]] bool is_local(const wire::IpAddr& addr) const;
    [[nodiscard]] const std::vector<Entry>& entries() const { return entries_; }
    [[nodiscard]] const std::vector<wire::IpAddr>& local_addresses() const { return local_; }

private:
    struct Slot {
        PackedClaimKey key;
        PortId port = kNoPort;
    };
    [[nodiscard]] PortId find(const PackedClaimKey& key) const;

    std::vector<Entry> entries_;       // insertion order, for listing
    std::vector<Slot> slots_;          // open addressing, power-of-two size
    std::uint64_t mask_ = 0;
    std::vector<wire::IpAddr> local_;  // a handful: a linear scan beats hashing
};

enum class ClaimError { ok, conflict, not_found, bad_protocol, bad_port };

class Registry {
public:
    explicit Registry(Qsbr& qsbr);

    // Writer side (serialised; may wait until readers move on).
    [[nodiscard]] ClaimError add(const ClaimKey& key, PortId port);
    [[nodiscard]] ClaimError remove(const ClaimKey& key, PortId port);
    // Removes every claim of a port; returns how many there were.
    std::size_t remove_port(PortId port);
    void set_local_addresses(std::vector<wire::IpAddr> addresses);

    // Reader side: the current table, valid until the reader's next quiescent point.
    [[nodiscard]] const ClaimTable& read() const { return table_.read(); }
    // For the control thread and tools: the current table.
    [[nodiscard]] std::shared_ptr<const ClaimTable> snapshot() const { return table_.snapshot(); }

private:
    Published<ClaimTable> table_;
};

}  // namespace ms::sw
