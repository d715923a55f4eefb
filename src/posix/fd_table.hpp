// Contract: what the preload library knows of each descriptor number, readable without
// a lock on every call (most descriptors are not sockets of ours and must pass straight
// to libc). What it knows per number:
//   - the UTCP socket it names, if any (several numbers may name one: dup);
//   - for a kernel TCP or UDP socket of AF_INET or AF_INET6 that is not placed yet (no listen or
//     connect so far; for UDP, no bind), that it is one, and the SO_REUSEADDR and
//     SO_REUSEPORT the application asked for. SO_REUSEADDR stays virtual until the
//     socket's place is known, because a claim's proof socket must not have it
//     (docs/DESIGN.md §3); SO_REUSEPORT is applied as well, since the kernel shares a
//     port so only within one uid, and such proofs form shared claims.
//   - for an epoll set, whether the program made it and the library keeps its UTCP part
//     (epoll_sets.hpp), and whether the port's eventfd is in it.
// Numbers at or above the table's size (the process's hard RLIMIT_NOFILE, at most 2^20)
// are never ours. Writers hold the runtime's lock; readers re-check under it.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

namespace ms::posix {

struct Socket;

namespace pending {
inline constexpr std::uint8_t stream = 0x01;     // an AF_INET or AF_INET6 TCP socket, not placed yet
inline constexpr std::uint8_t reuse_addr = 0x02;  // SO_REUSEADDR asked for, not applied
inline constexpr std::uint8_t reuse_port = 0x04;  // SO_REUSEPORT asked for (and applied)
inline constexpr std::uint8_t datagram = 0x08;    // an AF_INET or AF_INET6 UDP socket, not placed yet
inline constexpr std::uint8_t watching_epoll = 0x10;  // an epoll set the port's eventfd was added to
inline constexpr std::uint8_t epoll_set = 0x20;  // an epoll set the program made: the library keeps its UTCP part
}  // namespace pending

class FdTable {
public:
    FdTable();
    [[nodiscard]] Socket* socket(int fd) const {
        return in_range(fd) ? sockets_[fd].load(std::memory_order_acquire) : nullptr;
    }
    void set_socket(int fd, Socket* s) {
        if (in_range(fd)) sockets_[fd].store(s, std::memory_order_release);
    }
    [[nodiscard]] std::uint8_t pending(int fd) const {
        return in_range(fd) ? pending_[fd].load(std::memory_order_relaxed) : 0;
    }
    void set_pending(int fd, std::uint8_t bits) {
        if (in_range(fd)) pending_[fd].store(bits, std::memory_order_relaxed);
    }
    [[nodiscard]] bool in_range(int fd) const { return fd >= 0 && static_cast<std::size_t>(fd) < size_; }
    // The lowest number the library uses for its own descriptors: above the program's
    // soft RLIMIT_NOFILE (fd_table.cpp), so that its numbers stay as without the library.
    [[nodiscard]] int own_fd_floor() const { return own_floor_; }

private:
    std::size_t size_ = 0;
    int own_floor_ = 0;
    // calloc'd: a large table's pages stay untouched until a descriptor lands there.
    struct Free {
        void operator()(void* p) const;
    };
    std::unique_ptr<std::atomic<Socket*>[], Free> sockets_;
    std::unique_ptr<std::atomic<std::uint8_t>[], Free> pending_;
};

// The process's table.
FdTable& fd_table();

}  // namespace ms::posix
