#include "utcp/buffers.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <bit>

namespace ms::utcp {

// Not zeroed (new[] without initialiser): a connection touches only the pages it uses,
// so a short connection with large buffers costs no memset and few page faults.
namespace {

// Hands an array's whole pages back to the kernel before the array goes back to the
// allocator. A freed array's pages would otherwise stay resident, and arrays allocated
// later at other places of the heap touch new ones: under a steady churn RSS would creep
// up to the heap's size. (Its allocator metadata lies outside the whole pages.)
// In the shared area (a memfd mapping) the pages themselves must go (MADV_REMOVE):
// MADV_DONTNEED would only unmap them.
void discard_pages(std::uint8_t* data, std::size_t bytes, bool shared) {
    static const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
    const auto begin = (reinterpret_cast<std::uintptr_t>(data) + page - 1) & ~(page - 1);
    const auto end = (reinterpret_cast<std::uintptr_t>(data) + bytes) & ~(page - 1);
    if (end > begin) (void)::madvise(reinterpret_cast<void*>(begin), end - begin, shared ? MADV_REMOVE : MADV_DONTNEED);
}

}  // namespace

BufferPool::~BufferPool() {
    for (FreeList& l : free_) {
        if (l.shared) continue;
        for (std::uint8_t* a : l.arrays) delete[] a;
    }
}

std::vector<std::uint8_t*>& BufferPool::free_list(std::size_t bytes, bool shared) {
    for (FreeList& l : free_) {
        if (l.size == bytes && l.shared == shared) return l.arrays;
    }
    return free_.emplace_back(FreeList{bytes, shared, {}}).arrays;
}

std::uint8_t* BufferPool::take(std::size_t bytes, bool shared) {
    if (shared && !area_.empty()) {
        std::vector<std::uint8_t*>& kept = free_list(bytes, true);
        if (!kept.empty()) {
            std::uint8_t* a = kept.back();
            kept.pop_back();
            return a;
        }
        if (area_.size() - area_used_ >= bytes) {
            std::uint8_t* a = area_.data() + area_used_;
            area_used_ += bytes;
            return a;
        }
    }
    std::vector<std::uint8_t*>& kept = free_list(bytes, false);
    if (!kept.empty()) {
        std::uint8_t* a = kept.back();
        kept.pop_back();
        return a;
    }
    return new std::uint8_t[bytes];  // not zeroed, as the comment above explains
}

void BufferPool::move_shared_area(wire::MutBytes area) {
    if (!area_.empty()) old_areas_.push_back(area_);
    for (FreeList& l : free_) {
        if (l.shared) l.arrays.clear();
    }
    free_blocks_.clear();
    area_ = area;
    area_used_ = 0;
}

bool BufferPool::in_old_area(const std::uint8_t* p) const {
    return std::any_of(old_areas_.begin(), old_areas_.end(),
                       [p](wire::MutBytes a) { return p >= a.data() && p < a.data() + a.size(); });
}

void BufferPool::give(std::uint8_t* data, std::size_t bytes) {
    if (in_old_area(data)) return;  // its area is no port's any more
    const bool shared = in_shared_area(data);
    std::vector<std::uint8_t*>& kept = free_list(bytes, shared);
    if (kept.size() >= kKeepPerSize) {
        discard_pages(data, bytes, shared);
        if (!shared) return delete[] data;
    }
    kept.push_back(data);
}

std::shared_ptr<std::uint8_t[]> BufferPool::take_block(std::size_t bytes) {
    bytes = std::max<std::size_t>(bytes, 1);
    const auto from_area = [this](std::uint8_t* data, std::size_t size) {
        return std::shared_ptr<std::uint8_t[]>(data, [this, size](std::uint8_t* p) {
            discard_pages(p, size, true);
            if (!in_old_area(p)) free_blocks_.emplace_back(p, size);
        });
    };
    // First fit among the area's free blocks, then the area's free end, then the heap.
    for (auto it = free_blocks_.begin(); it != free_blocks_.end(); ++it) {
        if (it->second < bytes) continue;
        const auto [data, size] = *it;
        free_blocks_.erase(it);
        return from_area(data, size);
    }
    if (!area_.empty() && area_.size() - area_used_ >= bytes) {
        std::uint8_t* data = area_.data() + area_used_;
        area_used_ += bytes;
        return from_area(data, bytes);
    }
    return std::shared_ptr<std::uint8_t[]>(new std::uint8_t[bytes]);
}

std::size_t BufferPool::kept() const {
    std::size_t n = 0;
    for (const FreeList& l : free_) n += l.arrays.size();
    return n;
}

ByteRing::ByteRing(std::size_t capacity, BufferPool* pool, bool shared)
    : mask_(std::bit_ceil(std::max<std::size_t>(capacity, 64)) - 1), pool_(pool), shared_(shared) {}

ByteRing::~ByteRing() { release(); }

void ByteRing::release() {
    if (!data_) return;
    if (pool_) pool_->give(data_, capacity());
    else delete[] data_;  // without a pool (tests), straight back to the allocator
    data_ = nullptr;
}

void ByteRing::write_at(std::uint64_t pos, wire::Bytes data) {
    if (data.empty()) return;
    if (!data_) data_ = pool_ ? pool_->take(capacity(), shared_) : new std::uint8_t[capacity()];
    const std::size_t at = pos & mask_;
    const std::size_t first = std::min(data.size(), capacity() - at);
    wire::copy_bytes(data_ + at, data.first(first));
    wire::copy_bytes(data_, data.subspan(first));
}

void ByteRing::read_at(std::uint64_t pos, wire::MutBytes out) const {
    const SplitBytes v = view_at(pos, out.size());
    wire::copy_bytes(out.data(), v.first);
    wire::copy_bytes(out.data() + v.first.size(), v.second);
}

SplitBytes ByteRing::view_at(std::uint64_t pos, std::size_t len) const {
    if (len == 0) return {};
    const std::size_t at = pos & mask_;
    const std::size_t first = std::min(len, capacity() - at);
    return {{data_ + at, first}, {data_, len - first}};
}

std::size_t SendBuffer::append(wire::Bytes data) {
    const std::size_t n = std::min(data.size(), room());
    if (n == 0) return 0;
    write_at(ring_tail_, data.first(n));
    ring_tail_ += n;
    size_ += n;
    if (has_extents()) {
        if (extents_->back().ref) extents_->push_back({n, nullptr, nullptr});
        else extents_->back().len += n;
    }
    return n;
}

std::size_t SendBuffer::append_reference(wire::Bytes data, std::shared_ptr<const void> pin) {
    const std::size_t n = std::min(data.size(), room());
    if (n == 0) return 0;
    if (!extents_) extents_ = std::make_unique<std::deque<Extent>>();
    if (extents_->empty() && size_ > 0) extents_->push_back({size_, nullptr, nullptr});  // the copied bytes so far
    extents_->push_back({n, data.data(), std::move(pin)});
    size_ += n;
    return n;
}

SplitBytes SendBuffer::view(std::size_t offset, std::size_t len) const {
    len = std::min(len, size_ > offset ? size_ - offset : 0);
    if (!has_extents()) return view_at(ring_head_ + offset, len);
    return view_extents(offset, len);
}

SplitBytes SendBuffer::view_extents(std::size_t offset, std::size_t len) const {
    std::array<wire::Bytes, 2> spans;
    std::size_t used = 0;
    const auto add = [&](wire::Bytes b) {
        if (b.empty()) return true;
        if (used > 0 && spans[used - 1].data() + spans[used - 1].size() == b.data()) {
            spans[used - 1] = {spans[used - 1].data(), spans[used - 1].size() + b.size()};
            return true;
        }
        if (used == spans.size()) return false;
        spans[used++] = b;
        return true;
    };
    std::uint64_t ring_pos = ring_head_;  // of the first copied byte not yet passed
    std::size_t skip = offset;
    std::size_t want = len;
    const std::deque<Extent>& extents = *extents_;
    for (std::size_t i = 0; i < extents.size() && want > 0; ++i) {
        const Extent& e = extents[i];
        const std::size_t done = i == 0 ? front_done_ : 0;
        const std::size_t held = e.len - done;
        if (skip >= held) {
            skip -= held;
            if (!e.ref) ring_pos += held;
            continue;
        }
        const std::size_t n = std::min(held - skip, want);
        const SplitBytes piece = e.ref ? SplitBytes{{e.ref + done + skip, n}, {}} : view_at(ring_pos + skip, n);
        if (!add(piece.first) || !add(piece.second)) break;  // a third span would be needed
        want -= n;
        skip = 0;
        if (!e.ref) ring_pos += held;
    }
    return {spans[0], spans[1]};
}

void SendBuffer::consume(std::size_t len) {
    len = std::min(len, size_);
    size_ -= len;
    if (!has_extents()) {
        ring_head_ += len;
    } else {
        while (len > 0) {
            const Extent& f = extents_->front();
            const std::size_t n = std::min(len, f.len - front_done_);
            if (!f.ref) ring_head_ += n;
            front_done_ += n;
            len -= n;
            if (front_done_ == f.len) {
                extents_->pop_front();  // drops its pin
                front_done_ = 0;
            }
        }
    }
    if (ring_head_ == ring_tail_) release();
    if (size_ == 0) extents_.reset();  // an idle connection holds no list
}

std::size_t SendBuffer::referenced() const {
    if (!extents_) return 0;
    std::size_t n = 0;
    const std::deque<Extent>& extents = *extents_;
    for (std::size_t i = 0; i < extents.size(); ++i) {
        if (extents[i].ref) n += extents[i].len - (i == 0 ? front_done_ : 0);
    }
    return n;
}

std::int64_t RecvBuffer::insert(std::size_t offset, wire::Bytes data) {
    if (offset >= room()) return offset == 0 && data.empty() ? 0 : -1;
    data = data.first(std::min(data.size(), room() - offset));
    write_at(read_pos_ + in_order_ + offset, data);
    if (offset != 0) {
        if (add_range(offset, offset + data.size())) return 0;
        release_if_empty();
        return -1;
    }
    in_order_ += data.size();
    // Every range is now relative to the new RCV.NXT, `data.size()` bytes further on.
    std::size_t kept = 0;
    for (std::size_t i = 0; i < range_count_; ++i) {
        auto [b, e] = ranges_[i];
        if (e <= data.size()) continue;
        ranges_[kept++] = {b > data.size() ? b - data.size() : 0, e - data.size()};
    }
    range_count_ = kept;
    return static_cast<std::int64_t>(data.size() + absorb_ranges());
}

// Merges [begin, end) into the sorted, disjoint range list.
bool RecvBuffer::add_range(std::size_t begin, std::size_t end) {
    std::size_t i = 0;
    while (i < range_count_ && ranges_[i].second < begin) ++i;
    std::size_t j = i;
    while (j < range_count_ && ranges_[j].first <= end) {
        begin = std::min(begin, ranges_[j].first);
        end = std::max(end, ranges_[j].second);
        ++j;
    }
    const std::size_t merged = j - i;
    if (merged == 0 && range_count_ == kMaxRanges) return false;
    // Replace ranges [i, j) with the one merged range.
    if (merged == 0) {
        std::move_backward(ranges_.begin() + i, ranges_.begin() + range_count_, ranges_.begin() + range_count_ + 1);
        ++range_count_;
    } else {
        std::move(ranges_.begin() + j, ranges_.begin() + range_count_, ranges_.begin() + i + 1);
        range_count_ -= merged - 1;
    }
    ranges_[i] = {begin, end};
    return true;
}

// Turns a range that now starts at RCV.NXT into in-order data.
std::size_t RecvBuffer::absorb_ranges() {
    if (range_count_ == 0 || ranges_[0].first != 0) return 0;
    const std::size_t gained = ranges_[0].second;
    in_order_ += gained;
    std::move(ranges_.begin() + 1, ranges_.begin() + range_count_, ranges_.begin());
    --range_count_;
    for (std::size_t i = 0; i < range_count_; ++i) {
        ranges_[i].first -= gained;
        ranges_[i].second -= gained;
    }
    return gained;
}

std::size_t RecvBuffer::read(wire::MutBytes out) {
    const std::size_t n = std::min(out.size(), in_order_);
    read_at(read_pos_, out.first(n));
    consume(n);
    return n;
}

void RecvBuffer::consume(std::size_t len) {
    len = std::min(len, in_order_);
    read_pos_ += len;
    in_order_ -= len;
    release_if_empty();
}

}  // namespace ms::utcp
