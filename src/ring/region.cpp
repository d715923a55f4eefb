#include "ring/region.hpp"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

namespace ms::ring {
namespace {

// Closes `fd` (if any) and names the system call that failed with errno's reason.
RegionFailure system_failure(const char* what, int fd = -1) {
    const int saved = errno;
    if (fd >= 0) ::close(fd);
    return {RegionError::system, std::string(what) + ": " + std::strerror(saved)};
}

constexpr std::uint64_t kHugePage = 2u << 20;
std::uint64_t round_up(std::uint64_t v, std::uint64_t to) { return (v + to - 1) / to * to; }

// Maps `len` bytes of `fd` at an address aligned to a 2 MiB page, so that the kernel can
// map a transparent huge page of the file with one PMD entry (docs/DESIGN.md §12). The
// length is rounded up to whole huge pages: a mapping shorter than one, or ending inside
// one, could never hold one. The part beyond the file's end is never touched.
void* map_aligned(int fd, std::uint64_t len) {
    const std::uint64_t span = round_up(len, kHugePage);
    void* area = ::mmap(nullptr, span + kHugePage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (area == MAP_FAILED) return MAP_FAILED;
    auto* start = static_cast<std::uint8_t*>(area);
    auto* aligned = reinterpret_cast<std::uint8_t*>(round_up(reinterpret_cast<std::uintptr_t>(start), kHugePage));
    void* p = ::mmap(aligned, span, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
    if (p == MAP_FAILED) {
        const int saved = errno;
        ::munmap(area, span + kHugePage);
        errno = saved;
        return MAP_FAILED;
    }
    if (aligned > start) ::munmap(start, static_cast<std::size_t>(aligned - start));
    const std::uint8_t* end = aligned + span;
    const std::uint8_t* area_end = start + span + kHugePage;
    if (area_end > end) ::munmap(const_cast<std::uint8_t*>(end), static_cast<std::size_t>(area_end - end));
    return p;
}

// The rings, buffers and socket table are allocated when a port attaches, so that the
// data path never takes a page fault on first touch of a buffer; the data area, which
// may be large, is allocated page by page as the application uses it. With `huge_pages`
// the switch asks for transparent huge pages on that front part first (MADV_HUGEPAGE:
// honoured when /sys/kernel/mm/transparent_hugepage/shmem_enabled is advise or always,
// a no-op otherwise), so that the frames of many ports touch few pages (§12). Closes
// `fd` if the mapping fails.
base::Result<std::uint8_t*, RegionFailure> map_shared(int fd, const Layout& layout, bool huge_pages) {
    void* p = map_aligned(fd, layout.region_size);
    if (p == MAP_FAILED) return system_failure("mmap port region", fd);
    if (huge_pages) (void)::madvise(p, round_up(layout.data_offset, kHugePage), MADV_HUGEPAGE);
    (void)::madvise(p, layout.data_offset, MADV_POPULATE_WRITE);  // Linux 5.14; else pages come on first touch
    return static_cast<std::uint8_t*>(p);
}

}  // namespace

base::Result<Region, RegionFailure> Region::create(std::uint32_t ring_pairs, std::uint32_t slots_per_ring,
                                                   std::uint64_t data_bytes, bool huge_pages) {
    Layout layout;
    if (!Layout::compute(ring_pairs, slots_per_ring, data_bytes, layout)) {
        return RegionFailure{RegionError::bad_geometry, "port geometry out of range: ring pairs 1.." +
                                                            std::to_string(kMaxRingPairs) + ", slots 2.." +
                                                            std::to_string(kMaxSlotsPerRing) + ", data area up to " +
                                                            std::to_string(kMaxDataBytes >> 20) + " MiB"};
    }
    const int fd = ::memfd_create("multistack-port", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) return system_failure("memfd_create");
    if (::ftruncate(fd, static_cast<off_t>(layout.region_size)) != 0) return system_failure("ftruncate port region", fd);
    // The size is fixed for the region's life, so the switch's bounds stay true.
    (void)::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW);
    const auto base = map_shared(fd, layout, huge_pages);
    if (!base) return base.error();
    Region r(fd, *base, layout);
    layout.write_header(r.header());
    for (std::uint32_t ring = 0; ring < layout.ring_count(); ++ring) {
        RingControl& c = r.control(ring);
        c = RingControl{};
        const bool is_tx = ring % 2 == 0;
        c.tail = is_tx ? slots_per_ring - 1 : 0;  // tx: all but one slot free; rx: empty
        auto slots = r.slots(ring);
        for (std::uint32_t s = 0; s < slots_per_ring; ++s) {
            slots[s] = Slot{static_cast<std::uint32_t>(layout.buffer_offset(ring, s)), 0, 0};
        }
    }
    return r;
}

base::Result<Region, RegionFailure> Region::map(int fd) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) return system_failure("fstat port region", fd);
    RegionHeader h{};
    if (static_cast<std::size_t>(st.st_size) < sizeof h || ::pread(fd, &h, sizeof h, 0) != static_cast<ssize_t>(sizeof h)) {
        ::close(fd);
        return RegionFailure{RegionError::header_mismatch, "port region too small for its header"};
    }
    Layout layout;
    if (!Layout::compute(h.ring_pairs, h.slots_per_ring, h.data_size, layout) || !layout.header_matches(h) ||
        layout.region_size != static_cast<std::uint64_t>(st.st_size)) {
        ::close(fd);
        return RegionFailure{RegionError::header_mismatch,
                             "port region header does not match ABI version " + std::to_string(kAbiVersion)};
    }
    // The switch chose the pages when it made the region; a PMD-mapped huge page of the
    // file is mapped whole here too, since the mapping is aligned.
    const auto base = map_shared(fd, layout, false);
    if (!base) return base.error();
    return Region(fd, *base, layout);
}

Region::Region(Region&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), base_(std::exchange(other.base_, nullptr)), layout_(other.layout_) {}

Region& Region::operator=(Region&& other) noexcept {
    if (this != &other) {
        release();
        fd_ = std::exchange(other.fd_, -1);
        base_ = std::exchange(other.base_, nullptr);
        layout_ = other.layout_;
    }
    return *this;
}

Region::~Region() { release(); }

void Region::release() {
    if (base_) ::munmap(base_, round_up(layout_.region_size, kHugePage));
    if (fd_ >= 0) ::close(fd_);
    base_ = nullptr;
    fd_ = -1;
}

EventFd::EventFd() : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}

EventFd& EventFd::operator=(EventFd&& other) noexcept {
    if (this != &other) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
}

EventFd::~EventFd() {
    if (fd_ >= 0) ::close(fd_);
}

void EventFd::notify() const {
    const std::uint64_t one = 1;
    // EAGAIN means the counter is saturated: the peer is already due to wake.
    (void)!::write(fd_, &one, sizeof one);
}

void EventFd::drain() const {
    std::uint64_t count;
    (void)!::read(fd_, &count, sizeof count);
}

}  // namespace ms::ring
