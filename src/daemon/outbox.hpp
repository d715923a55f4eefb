// Contract: a session's replies, sent without ever blocking the control plane (docs/DESIGN.md §6).
// The session socket is non-blocking. A reply goes out at once when the socket has room;
// otherwise it waits in the outbox, in order, with duplicates of its descriptors (the
// originals may close before it leaves), and leaves when the socket is writable again.
// The outbox holds at most `max_bytes`: a client that does not read its replies
// overflows it and is dropped by the caller. Frames that may be lost (capture) use
// offer(), which never queues.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <span>
#include <vector>

#include "base/result.hpp"

namespace ms::daemon {

// Why a reply could not be sent or kept. Done means it is on the socket, or queued
// behind earlier replies.
enum class SendError {
    overflow,   // the client does not read: drop it
    peer_gone,  // the socket failed (the client hung up or died)
    no_room,    // offer() only: replies wait, or the socket has no room now
};

class Outbox {
public:
    Outbox(int fd, std::size_t max_bytes) : fd_(fd), max_bytes_(max_bytes) {}
    ~Outbox();
    Outbox(Outbox&& other) noexcept;
    Outbox& operator=(Outbox&&) = delete;
    Outbox(const Outbox&) = delete;
    Outbox& operator=(const Outbox&) = delete;

    [[nodiscard]] base::Result<base::Done, SendError> send(const void* message, std::size_t size,
                                                           std::span<const int> fds = {});
    // Sends now if nothing waits and the socket has room; never queues.
    [[nodiscard]] base::Result<base::Done, SendError> offer(const void* message, std::size_t size);
    // Sends what waits, as far as the socket takes it (call when it is writable).
    [[nodiscard]] base::Result<base::Done, SendError> flush();
    [[nodiscard]] bool pending() const { return !queue_.empty(); }
    [[nodiscard]] std::size_t queued_bytes() const { return queued_bytes_; }

private:
    struct Queued {
        std::vector<std::uint8_t> bytes;
        std::vector<int> fds;  // duplicates, owned
    };
    // 0 sent, or -errno (EAGAIN: no room).
    [[nodiscard]] int send_now(const void* message, std::size_t size, std::span<const int> fds) const;
    [[nodiscard]] base::Result<base::Done, SendError> enqueue(const void* message, std::size_t size,
                                                              std::span<const int> fds);

    int fd_;
    std::size_t max_bytes_;
    std::deque<Queued> queue_;
    std::size_t queued_bytes_ = 0;
};

}  // namespace ms::daemon
