// Contract: the claim registry (DESIGN §2, §4). It maps a claim, a 3-tuple of
// (protocol, address, port), to the switch port that owns it, and knows the switch's
// local addresses, so that a wildcard claim (0.0.0.0 or ::) matches only traffic to or
// from an address of ours. Lookup tries the exact address first, then the wildcard.
//
// Concurrency: one writer (the control thread) and any number of registered readers
// (the switch workers). The writer builds a new immutable ClaimTable and publishes it
// with one atomic store (copy-on-write); readers load it lock-free at the start of each
// batch. The old table is freed once every reader has passed a quiescent point
// (QSBR: a reader announces the epoch it has seen, or that it is offline).
// Lookups are expected O(1), by open addressing, and never allocate.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

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
    explicit Registry(std::size_t reader_count);
    ~Registry();
    Registry(const Registry&) = delete;
    Registry& operator=(const Registry&) = delete;

    // Writer side (serialised internally; may block until readers move on).
    [[nodiscard]] ClaimError add(const ClaimKey& key, PortId port);
    [[nodiscard]] ClaimError remove(const ClaimKey& key, PortId port);
    // Removes every claim of a port; returns how many there were.
    std::size_t remove_port(PortId port);
    void set_local_addresses(std::vector<wire::IpAddr> addresses);

    // Reader side. `reader` is this reader's index, below reader_count.
    // Announces a quiescent point and returns the current table, valid until the
    // reader's next call to read() or offline().
    [[nodiscard]] const ClaimTable& read(std::size_t reader);
    // The reader holds no table (for example while it sleeps).
    void offline(std::size_t reader);

    // For the control thread and tools: the current table.
    [[nodiscard]] std::shared_ptr<const ClaimTable> snapshot() const;

private:
    struct alignas(64) ReaderState {
        std::atomic<std::uint64_t> seen{0};  // 0: offline
    };

    void publish(std::vector<ClaimTable::Entry> claims, std::vector<wire::IpAddr> local);
    void wait_for_readers(std::uint64_t epoch) const;

    mutable std::mutex writer_;
    std::shared_ptr<const ClaimTable> current_owner_;  // writer's reference
    std::atomic<const ClaimTable*> current_;
    std::atomic<std::uint64_t> epoch_{1};
    std::unique_ptr<ReaderState[]> readers_;
    std::size_t reader_count_;
};

}  // namespace ms::sw
