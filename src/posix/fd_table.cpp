#include "posix/fd_table.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <cstdlib>

namespace ms::posix {

namespace {

constexpr std::size_t kMaxTable = std::size_t{1} << 20;

}  // namespace

FdTable::FdTable() {
    rlimit limit{};
    ::getrlimit(RLIMIT_NOFILE, &limit);
    const std::size_t hard = limit.rlim_max == RLIM_INFINITY ? kMaxTable : static_cast<std::size_t>(limit.rlim_max);
    size_ = std::clamp<std::size_t>(hard, 1024, kMaxTable);
    // Below the soft limit, so that F_DUPFD finds room there; above most programs' numbers.
    const std::size_t soft = limit.rlim_cur == RLIM_INFINITY ? size_ : static_cast<std::size_t>(limit.rlim_cur);
    own_floor_ = static_cast<int>(std::min(size_, soft) * 3 / 4);
    // Zero bytes are null pointers and empty bits (both types are lock-free atomics).
    sockets_.reset(static_cast<std::atomic<Socket*>*>(std::calloc(size_, sizeof(std::atomic<Socket*>))));
    pending_.reset(static_cast<std::atomic<std::uint8_t>*>(std::calloc(size_, sizeof(std::atomic<std::uint8_t>))));
    if (!sockets_ || !pending_) size_ = 0;  // no memory: every descriptor stays the kernel's
}

void FdTable::Free::operator()(void* p) const { std::free(p); }

FdTable& fd_table() {
    static FdTable table;
    return table;
}

}  // namespace ms::posix
