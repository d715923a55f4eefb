#include "posix/fd_table.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <cstdlib>

namespace ms::posix {

namespace {

constexpr std::size_t kMaxTable = std::size_t{1} << 20;

// The library's own descriptors (two per UTCP socket) live above the program's soft
// limit, which is raised (toward the hard one) to make room: the program's numbers stay
// what they would be without the library. Without room, they go in its top quarter.
int own_descriptor_floor(const rlimit& limit, std::size_t table_size) {
    const std::size_t soft = limit.rlim_cur == RLIM_INFINITY ? table_size : static_cast<std::size_t>(limit.rlim_cur);
    const std::size_t raised = std::min(table_size, soft * 4);
    if (raised > soft) {
        rlimit wider = limit;
        wider.rlim_cur = raised;
        if (::setrlimit(RLIMIT_NOFILE, &wider) == 0) return static_cast<int>(soft);
    }
    return static_cast<int>(std::min(table_size, soft) * 3 / 4);
}

}  // namespace

FdTable::FdTable() {
    rlimit limit{};
    ::getrlimit(RLIMIT_NOFILE, &limit);
    const std::size_t hard = limit.rlim_max == RLIM_INFINITY ? kMaxTable : static_cast<std::size_t>(limit.rlim_max);
    size_ = std::clamp<std::size_t>(hard, 1024, kMaxTable);
    own_floor_ = own_descriptor_floor(limit, size_);
    // Zero bytes are null pointers and empty bits (both types are lock-free atomics).
    sockets_.reset(static_cast<std::atomic<Socket*>*>(std::calloc(size_, sizeof(std::atomic<Socket*>))));
    pending_.reset(static_cast<std::atomic<std::uint8_t>*>(std::calloc(size_, sizeof(std::atomic<std::uint8_t>))));
    if (!sockets_ || !pending_) size_ = 0;  // no memory: every descriptor stays the kernel's
}

void FdTable::Free::operator()(void* p) const { std::free(p); }

// Never destroyed: other threads may call in until the process's last instruction, and
// the exit drain runs after the program's own exit handlers (preload.cpp).
FdTable& fd_table() {
    static FdTable* const table = new FdTable;
    return *table;
}

}  // namespace ms::posix
