// Contract: the port memory ABI shared by multistackd and an application (docs/DESIGN.md §5).
//
// One memfd region per port:
//   [RegionHeader][ring 0 control + slots][ring 1 ...] ... [buffers][socket table][data area]
// The socket table (socket_table.hpp) is where the application publishes its connections.
// The data area (its size asked for at attach, possibly zero) is the application's own
// memory, laid out as it likes: UTCP keeps its send buffers there, so that the payload of
// a super-segment goes by reference (below) and is copied only once, by the kernel.
// Rings come in pairs: ring 2k is pair k's tx (application -> switch), ring 2k+1 its
// rx (switch -> application). Every ring has `slots_per_ring` slots, and every slot
// has a home buffer of `buffer_size` bytes; an application may point a slot at any
// buffer of its own region (netmap-style buffer swapping).
//
// Index semantics are netmap's. head, cur and tail lie in [0, slots_per_ring):
//   tx ring: [head, tail) are free for the application to fill; it fills from head
//            and advances head to publish. The switch consumes up to head and moves
//            tail to one behind it, returning the slots.
//   rx ring: [head, tail) hold frames for the application; it consumes from head and
//            advances head to give slots back. The switch fills [tail, head - 1).
//   cur is at or after head, and says how far the application has looked: it wants a
//   wakeup only when tail passes cur.
// Ownership (who may store): head, cur and kick_app belong to the application; tail
// and kick_switch belong to the switch. Stores are release, loads are acquire.
//
// A frame may span a chain of consecutive tx slots (netmap's NS_MOREFRAG): every slot
// but the last has kSlotMore. Only a TCP super-segment (kSlotSegment on its first slot)
// is chained: its first slot holds the Ethernet, IP and TCP headers (and may hold
// payload after them), the slots after it hold payload only, at most kMaxChainSlots in
// all. The IP length field counts the whole chain's payload; the TCP checksum field holds
// the pseudo-header sum only (Linux's CHECKSUM_PARTIAL), because the switch or the
// interface fills in each wire segment's checksum; `gso_size` says how many payload bytes
// each segment on the wire carries. Rx slots are always single frames with no flags.
//
// All offsets are relative to the start of the region. The switch never trusts any
// byte of the region: it keeps its own copy of the geometry, reads each index once,
// and bounds-checks every index, length and offset (see switch_ring.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace ms::ring {

inline constexpr std::uint32_t kRegionMagic = 0x4d535452;  // "MSTR"
// 2: the socket table; 3: slot chains, super-segments, the data area; 4: 160-byte socket
// records (the congestion model: pacing rate, bandwidth, min RTT, phase)
inline constexpr std::uint32_t kAbiVersion = 4;
inline constexpr std::uint32_t kBufferSize = 2048;  // one slot's buffer
// The one bound on a frame, wherever it is held: a port's slot (a longer tx slot length
// is a ring fault), a queue cell between workers, a capture queue, a capture message.
// 1514 bytes of an untagged frame at MTU 1500, plus room for one VLAN tag that the NIC
// side may see (tagged frames are never transmitted from ports).
inline constexpr std::uint32_t kMaxFrameSize = 1518;
static_assert(kBufferSize >= kMaxFrameSize);
inline constexpr std::uint32_t kMaxSlotsPerRing = 16384;
inline constexpr std::uint32_t kMaxRingPairs = 64;
// The largest data area: slot offsets are 32-bit, so the whole region stays below 4 GiB.
inline constexpr std::uint64_t kMaxDataBytes = std::uint64_t{1} << 30;
inline constexpr std::size_t kCacheLine = 64;

struct RegionHeader {
    std::uint32_t magic;           // kRegionMagic
    std::uint32_t abi_version;     // kAbiVersion
    std::uint32_t ring_pairs;
    std::uint32_t slots_per_ring;
    std::uint32_t buffer_size;     // kBufferSize
    std::uint32_t reserved0;
    std::uint64_t region_size;
    std::uint64_t rings_offset;    // first RingControl
    std::uint64_t ring_stride;     // bytes from one RingControl to the next
    std::uint64_t buffers_offset;  // first buffer
    std::uint64_t sockets_offset;  // the socket table
    std::uint64_t data_offset;     // the data area
    std::uint64_t data_size;
    std::uint8_t reserved1[48];
};
static_assert(sizeof(RegionHeader) == 2 * kCacheLine);
static_assert(std::is_trivially_copyable_v<RegionHeader>);

// Each side's indices sit on their own cache line so that the sides do not false-share,
// and the kick flags, written only around sleeps, sit apart from the indices, which are
// written every batch: reading a flag then costs no cache miss in the common case.
struct RingControl {
    alignas(kCacheLine) std::uint32_t head;         // owner: application
    std::uint32_t cur;                              // owner: application
    alignas(kCacheLine) std::uint32_t tail;         // owner: switch
    alignas(kCacheLine) std::uint32_t kick_app;     // owner: application; nonzero = asleep, kick me
    alignas(kCacheLine) std::uint32_t kick_switch;  // owner: switch; nonzero = asleep, kick me
};
static_assert(sizeof(RingControl) == 4 * kCacheLine);
static_assert(offsetof(RingControl, tail) == kCacheLine);
static_assert(offsetof(RingControl, kick_app) == 2 * kCacheLine);

// Slot flags (tx only).
inline constexpr std::uint16_t kSlotMore = 1;     // the frame goes on in the next slot
inline constexpr std::uint16_t kSlotSegment = 2;  // first slot of a TCP super-segment
inline constexpr std::uint16_t kSlotKnownFlags = kSlotMore | kSlotSegment;
// The longest slot chain: 64 KB of payload in kBufferSize buffers, and the headers.
inline constexpr std::uint32_t kMaxChainSlots = 34;

struct Slot {
    std::uint32_t offset;    // of the buffer, from the region start
    std::uint16_t len;       // bytes in the buffer, at most kMaxFrameSize
    std::uint16_t flags;     // kSlot* bits; zero for a frame in one slot
    std::uint16_t gso_size;  // first slot of a super-segment: payload bytes per wire segment
    std::uint16_t reserved0; // zero
    std::uint32_t reserved1; // zero
};
static_assert(sizeof(Slot) == 16);
static_assert(std::is_trivially_copyable_v<Slot>);

// Where everything is, computed from the geometry alone. Both sides compute it; the
// application checks the header against it, the switch never reads the header.
struct Layout {
    std::uint32_t ring_pairs = 0;
    std::uint32_t slots_per_ring = 0;
    std::uint64_t rings_offset = 0;
    std::uint64_t ring_stride = 0;
    std::uint64_t buffers_offset = 0;
    std::uint64_t sockets_offset = 0;
    std::uint64_t data_offset = 0;
    std::uint64_t data_size = 0;
    std::uint64_t region_size = 0;

    // Returns false when the geometry is out of the supported range (the data area is
    // rounded up to whole pages).
    [[nodiscard]] static bool compute(std::uint32_t ring_pairs, std::uint32_t slots_per_ring, std::uint64_t data_bytes,
                                      Layout& out);

    [[nodiscard]] std::uint32_t ring_count() const { return ring_pairs * 2; }
    [[nodiscard]] std::uint64_t control_offset(std::uint32_t ring) const { return rings_offset + ring * ring_stride; }
    [[nodiscard]] std::uint64_t slots_offset(std::uint32_t ring) const { return control_offset(ring) + sizeof(RingControl); }
    // The home buffer of a slot.
    [[nodiscard]] std::uint64_t buffer_offset(std::uint32_t ring, std::uint32_t slot) const {
        return buffers_offset + (std::uint64_t{ring} * slots_per_ring + slot) * kBufferSize;
    }
    [[nodiscard]] bool header_matches(const RegionHeader& h) const;
    void write_header(RegionHeader& h) const;
};

inline constexpr std::uint32_t tx_ring(std::uint32_t pair) { return 2 * pair; }
inline constexpr std::uint32_t rx_ring(std::uint32_t pair) { return 2 * pair + 1; }

// Circular helpers on [0, n).
inline constexpr std::uint32_t ring_advance(std::uint32_t i, std::uint32_t k, std::uint32_t n) {
    const std::uint32_t j = i + k;
    return j >= n ? j - n : j;
}
// Steps from a forward to b.
inline constexpr std::uint32_t ring_distance(std::uint32_t a, std::uint32_t b, std::uint32_t n) {
    return b >= a ? b - a : b + n - a;
}

}  // namespace ms::ring
