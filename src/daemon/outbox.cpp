#include "daemon/outbox.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "ctl/seqpacket.hpp"

namespace ms::daemon {

Outbox::~Outbox() {
    for (Queued& q : queue_) ctl::close_all(q.fds);
}

Outbox::Outbox(Outbox&& other) noexcept
    : fd_(other.fd_), max_bytes_(other.max_bytes_), queue_(std::move(other.queue_)), queued_bytes_(other.queued_bytes_) {
    other.queue_.clear();
    other.queued_bytes_ = 0;
}

int Outbox::send_now(const void* message, std::size_t size, std::span<const int> fds) const {
    return ctl::send_message(fd_, message, size, fds, /*nonblocking=*/true);
}

base::Result<base::Done, SendError> Outbox::send(const void* message, std::size_t size, std::span<const int> fds) {
    if (!queue_.empty()) return enqueue(message, size, fds);
    const int r = send_now(message, size, fds);
    if (r == 0) return base::Done{};
    if (r == -EAGAIN || r == -ENOBUFS) return enqueue(message, size, fds);
    return SendError::peer_gone;
}

base::Result<base::Done, SendError> Outbox::offer(const void* message, std::size_t size) {
    if (!queue_.empty()) return SendError::no_room;
    const int r = send_now(message, size, {});
    if (r == 0) return base::Done{};
    return r == -EAGAIN || r == -ENOBUFS ? SendError::no_room : SendError::peer_gone;
}

base::Result<base::Done, SendError> Outbox::enqueue(const void* message, std::size_t size, std::span<const int> fds) {
    if (queued_bytes_ + size > max_bytes_) return SendError::overflow;
    Queued q;
    const auto* bytes = static_cast<const std::uint8_t*>(message);
    q.bytes.assign(bytes, bytes + size);
    for (int fd : fds) {
        const int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (copy < 0) {
            ctl::close_all(q.fds);
            return SendError::peer_gone;  // out of descriptors: the reply cannot be kept
        }
        q.fds.push_back(copy);
    }
    queued_bytes_ += size;
    queue_.push_back(std::move(q));
    return base::Done{};
}

base::Result<base::Done, SendError> Outbox::flush() {
    while (!queue_.empty()) {
        Queued& q = queue_.front();
        const int r = send_now(q.bytes.data(), q.bytes.size(), q.fds);
        if (r == -EAGAIN || r == -ENOBUFS) return base::Done{};
        if (r != 0) return SendError::peer_gone;
        queued_bytes_ -= q.bytes.size();
        ctl::close_all(q.fds);
        queue_.pop_front();
    }
    return base::Done{};
}

}  // namespace ms::daemon
