// Contract: one message over a UNIX SOCK_SEQPACKET socket, with descriptors passed as
// SCM_RIGHTS. Received descriptors are close-on-exec and owned by the caller, whatever
// the result. Errors are -errno values.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

namespace ms::ctl {

// The most descriptors one SCM_RIGHTS message can carry (Linux's SCM_MAX_FD).
inline constexpr std::size_t kMaxFdsPerMessage = 253;

// Returns 0, or -errno. With `nonblocking`, a full socket gives -EAGAIN instead of waiting.
[[nodiscard]] int send_message(int sock, const void* data, std::size_t size, std::span<const int> fds = {},
                               bool nonblocking = false);

// Receives one message into `buffer`; returns its size (0: the peer hung up, or sent an
// empty message), or -errno. A message longer than the buffer is an error (-EMSGSIZE), as
// are more descriptors than `max_fds` or descriptors the kernel could not pass. Every
// descriptor received is appended to `fds` whatever the result: the caller closes those
// it does not keep (the daemon through its Reaper, which never blocks).
[[nodiscard]] long receive_message(int sock, void* buffer, std::size_t size, std::vector<int>& fds, std::size_t max_fds);

// Closes every descriptor in `fds` and clears it.
void close_all(std::vector<int>& fds);

}  // namespace ms::ctl
