#include "ctl/seqpacket.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "ctl/protocol.hpp"

namespace ms::ctl {

int send_message(int sock, const void* data, std::size_t size, std::span<const int> fds, bool nonblocking) {
    iovec iov{const_cast<void*>(data), size};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage)] = {};
    if (!fds.empty()) {
        if (fds.size() > kMaxFdsPerMessage) return -EINVAL;
        msg.msg_control = control;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
        std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    }
    for (;;) {
        if (::sendmsg(sock, &msg, MSG_NOSIGNAL | (nonblocking ? MSG_DONTWAIT : 0)) >= 0) return 0;
        if (errno != EINTR) return -errno;
    }
}

void close_all(std::vector<int>& fds) {
    for (int fd : fds) ::close(fd);
    fds.clear();
}

long receive_message(int sock, void* buffer, std::size_t size, std::vector<int>& fds, std::size_t max_fds) {
    iovec iov{buffer, size};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    // Room for every descriptor one message can carry (the kernel's SCM_MAX_FD), so that
    // the kernel never has to close the excess itself: in the receiving thread, where a
    // lingering socket's close would block it.
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage)] = {};
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n;
    do {
        n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return -errno;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (std::size_t i = 0; i < count; ++i) {
            int fd;
            std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            fds.push_back(fd);
        }
    }
    if ((msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || fds.size() > max_fds) return -EMSGSIZE;
    return n;
}

}  // namespace ms::ctl
