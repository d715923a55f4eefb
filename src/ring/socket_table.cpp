#include "ring/socket_table.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>

namespace ms::ring {
namespace {

SocketTableHeader& header_of(std::uint8_t* table) { return *reinterpret_cast<SocketTableHeader*>(table); }
const SocketTableHeader& header_of(const std::uint8_t* table) { return *reinterpret_cast<const SocketTableHeader*>(table); }
template <class T>
std::atomic_ref<T> shared(T& word) {
    return std::atomic_ref<T>(word);
}
template <class T>
T load(const T& word) {
    return std::atomic_ref<T>(const_cast<T&>(word)).load(std::memory_order_acquire);
}

// A NUL-terminated name of [a-z0-9_-] within `N` bytes, empty if `may_be_empty`.
template <std::size_t N>
bool name_ok(const char (&name)[N], bool may_be_empty = false) {
    const auto* end = std::find(name, name + N, '\0');
    if ((end == name && !may_be_empty) || end == name + N) return false;
    return std::all_of(name, end,
                       [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'; });
}

}  // namespace

bool valid_record(const SocketRecord& r) {
    return r.state < kTcpStateNames.size() && (r.family == 4 || r.family == 6) && (r.options & ~sockopt::all) == 0 &&
           r.fast_open < kFastOpenNames.size() && name_ok(r.congestion) && name_ok(r.phase, true);
}

void publish_sockets(std::uint8_t* table, std::span<const SocketRecord> records, std::uint64_t total, std::uint64_t now_ms) {
    SocketTableHeader& h = header_of(table);
    const std::uint32_t generation = load(h.generation);
    shared(h.generation).store(generation + 1, std::memory_order_relaxed);  // odd: writing
    std::atomic_thread_fence(std::memory_order_release);
    const auto count = static_cast<std::uint32_t>(std::min<std::size_t>(records.size(), kSocketSlots));
    std::memcpy(table + sizeof(SocketTableHeader), records.data(), std::size_t{count} * sizeof(SocketRecord));
    shared(h.count).store(count, std::memory_order_relaxed);
    shared(h.total).store(total, std::memory_order_relaxed);
    shared(h.published_ms).store(now_ms, std::memory_order_relaxed);
    shared(h.generation).store(generation + 2, std::memory_order_release);  // even: complete
}

std::uint32_t sockets_requested(const std::uint8_t* table) { return load(header_of(table).requested); }

void request_sockets(std::uint8_t* table) { shared(header_of(table).requested).fetch_add(1, std::memory_order_release); }

PageRead read_page(const std::uint8_t* table, std::uint32_t first, std::span<SocketRecord> out, SocketPage& page,
                   std::size_t& kept) {
    const SocketTableHeader& h = header_of(table);
    kept = 0;
    page = {};
    page.generation = load(h.generation);
    if (page.generation % 2 != 0) return PageRead::busy;
    page.count = std::min(load(h.count), kSocketSlots);
    page.total = load(h.total);
    page.published_ms = load(h.published_ms);
    const std::uint32_t n = first < page.count
                                ? std::min<std::uint32_t>(page.count - first, static_cast<std::uint32_t>(out.size()))
                                : 0;
    // Copy first, then check that no write overlapped the copy (the sequence lock).
    if (n > 0) {
        std::memcpy(out.data(), table + sizeof(SocketTableHeader) + std::size_t{first} * sizeof(SocketRecord),
                    std::size_t{n} * sizeof(SocketRecord));
    }
    std::atomic_thread_fence(std::memory_order_acquire);
    if (load(h.generation) != page.generation) return PageRead::busy;
    for (std::uint32_t i = 0; i < n; ++i) {
        if (!valid_record(out[i])) {
            ++page.invalid;
            continue;
        }
        out[kept++] = out[i];
    }
    return PageRead::ok;
}

}  // namespace ms::ring
