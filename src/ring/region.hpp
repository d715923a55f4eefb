// Contract: ownership of one port's shared memory (a memfd mapping laid out as abi.hpp
// says) and of the eventfds that carry kicks. Both are RAII: the mapping is unmapped
// and every descriptor closed on destruction. Making or mapping a region returns a
// base::Result whose RegionFailure names the cause; nothing here is on the data path.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "base/result.hpp"
#include "ring/abi.hpp"
#include "wire/bytes.hpp"

namespace ms::ring {

enum class RegionError : std::uint8_t {
    bad_geometry,     // ring pairs, slots or data area out of range
    header_mismatch,  // a received region's header is short or not of this ABI
    system,           // a system call failed (memfd_create, ftruncate, mmap, fstat)
};

struct RegionFailure {
    RegionError error;
    std::string detail;  // what failed, for the log
};

class Region {
public:
    // Creates and maps a region, writes its header and points every slot at its home
    // buffer. Every page but the data area's is allocated now; the data area's only
    // when the application first writes it. `huge_pages` asks for transparent huge pages
    // on the rings and buffers (docs/DESIGN.md §12); the kernel's shmem_enabled decides.
    static base::Result<Region, RegionFailure> create(std::uint32_t ring_pairs, std::uint32_t slots_per_ring,
                                                      std::uint64_t data_bytes = 0, bool huge_pages = false);
    // Maps a region received from the switch; checks the header against the file size
    // and the layout its geometry implies. Takes ownership of `fd`.
    static base::Result<Region, RegionFailure> map(int fd);

    Region(Region&& other) noexcept;
    Region& operator=(Region&& other) noexcept;
    Region(const Region&) = delete;
    Region& operator=(const Region&) = delete;
    ~Region();

    [[nodiscard]] std::uint8_t* base() const { return base_; }
    [[nodiscard]] int fd() const { return fd_; }
    [[nodiscard]] const Layout& layout() const { return layout_; }
    [[nodiscard]] RegionHeader& header() const { return *reinterpret_cast<RegionHeader*>(base_); }
    [[nodiscard]] RingControl& control(std::uint32_t ring) const {
        return *reinterpret_cast<RingControl*>(base_ + layout_.control_offset(ring));
    }
    [[nodiscard]] std::span<Slot> slots(std::uint32_t ring) const {
        return {reinterpret_cast<Slot*>(base_ + layout_.slots_offset(ring)), layout_.slots_per_ring};
    }
    [[nodiscard]] wire::MutBytes data_area() const { return {base_ + layout_.data_offset, layout_.data_size}; }

private:
    Region(int fd, std::uint8_t* base, const Layout& layout) : fd_(fd), base_(base), layout_(layout) {}
    void release();

    int fd_ = -1;
    std::uint8_t* base_ = nullptr;
    Layout layout_;
};

// A non-blocking eventfd: notify() adds one, drain() clears the count. Making one fails
// only when the process is out of descriptors or memory: whoever makes one checks
// is_open() (with errno set) before handing it on.
class EventFd {
public:
    EventFd();
    explicit EventFd(int fd) : fd_(fd) {}  // adopts a received descriptor
    EventFd(EventFd&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
    EventFd& operator=(EventFd&& other) noexcept;
    EventFd(const EventFd&) = delete;
    EventFd& operator=(const EventFd&) = delete;
    ~EventFd();

    void notify() const;
    void drain() const;
    [[nodiscard]] int fd() const { return fd_; }
    [[nodiscard]] bool is_open() const { return fd_ >= 0; }

private:
    int fd_ = -1;
};

}  // namespace ms::ring
