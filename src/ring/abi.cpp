#include "ring/abi.hpp"

#include "ring/socket_table.hpp"

namespace ms::ring {
namespace {
std::uint64_t round_up(std::uint64_t v, std::uint64_t to) { return (v + to - 1) / to * to; }
}  // namespace

bool Layout::compute(std::uint32_t ring_pairs, std::uint32_t slots_per_ring, std::uint64_t data_bytes, Layout& out) {
    if (ring_pairs == 0 || ring_pairs > kMaxRingPairs || data_bytes > kMaxDataBytes) return false;
    if (slots_per_ring < 2 || slots_per_ring > kMaxSlotsPerRing) return false;
    Layout l;
    l.ring_pairs = ring_pairs;
    l.slots_per_ring = slots_per_ring;
    l.rings_offset = sizeof(RegionHeader);
    l.ring_stride = round_up(sizeof(RingControl) + std::uint64_t{slots_per_ring} * sizeof(Slot), kCacheLine);
    l.buffers_offset = round_up(l.rings_offset + l.ring_count() * l.ring_stride, 4096);
    l.sockets_offset = l.buffers_offset + std::uint64_t{l.ring_count()} * slots_per_ring * kBufferSize;
    l.data_offset = round_up(l.sockets_offset + kSocketTableBytes, 4096);
    l.data_size = round_up(data_bytes, 4096);
    l.region_size = l.data_offset + l.data_size;
    if (l.region_size > UINT32_MAX) return false;
    out = l;
    return true;
}

bool Layout::header_matches(const RegionHeader& h) const {
    return h.magic == kRegionMagic && h.abi_version == kAbiVersion && h.ring_pairs == ring_pairs &&
           h.slots_per_ring == slots_per_ring && h.buffer_size == kBufferSize && h.region_size == region_size &&
           h.rings_offset == rings_offset && h.ring_stride == ring_stride && h.buffers_offset == buffers_offset &&
           h.sockets_offset == sockets_offset && h.data_offset == data_offset && h.data_size == data_size;
}

void Layout::write_header(RegionHeader& h) const {
    h = RegionHeader{};
    h.magic = kRegionMagic;
    h.abi_version = kAbiVersion;
    h.ring_pairs = ring_pairs;
    h.slots_per_ring = slots_per_ring;
    h.buffer_size = kBufferSize;
    h.region_size = region_size;
    h.rings_offset = rings_offset;
    h.ring_stride = ring_stride;
    h.buffers_offset = buffers_offset;
    h.sockets_offset = sockets_offset;
    h.data_offset = data_offset;
    h.data_size = data_size;
}

}  // namespace ms::ring
