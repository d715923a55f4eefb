// Contract: UTCP sockets in SCM_RIGHTS messages (docs/DESIGN.md §7). A listener goes to
// the other process as its kernel socket, the claim's proof, and the receiving process's
// library places it on its own stack; a connection goes as it is, labelled
// (posix/arriving.hpp), and moves to the receiver once the sender lets go of it
// (posix/handoff.cpp); a UDP socket cannot go (EOPNOTSUPP).
#include <sys/socket.h>

#include <cstring>

#include "posix/arriving.hpp"
#include "preload/interposition.hpp"

namespace ms::preload {

namespace {

// Whether every control header of `msg` lies within its buffer, as the kernel checks
// before it reads one (else sendmsg fails with EINVAL there).
bool well_formed_control(const msghdr& msg) {
    if (!msg.msg_control && msg.msg_controllen > 0) return false;
    const auto* begin = static_cast<const char*>(msg.msg_control);
    const char* end = begin + msg.msg_controllen;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(const_cast<msghdr*>(&msg), c)) {
        const auto* at = reinterpret_cast<const char*>(c);
        if (c->cmsg_len < CMSG_LEN(0) || at + sizeof(cmsghdr) > end || c->cmsg_len > static_cast<std::size_t>(end - at)) {
            return false;
        }
    }
    return true;
}

// The descriptors an SCM_RIGHTS message carries (its headers well formed).
template <class Visit>
void for_each_right(const msghdr& msg, Visit&& visit) {
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(const_cast<msghdr*>(&msg), c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (std::size_t i = 0; i < count; ++i) {
            int fd;
            std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            visit(c, i, fd);
        }
    }
}

}  // namespace

// The control buffer to send in place of `msg`'s when its SCM_RIGHTS name UTCP sockets:
// a listener goes as its kernel socket (the claim's proof), which the receiving
// process's library places on its own stack (Runtime::adopt_passed_listener). A UTCP
// connection cannot move to another process: EOPNOTSUPP, one log line. Empty when
// nothing names a UTCP socket.
base::Result<std::vector<char>, Errno> passable_rights(const msghdr& msg) {
    std::vector<char> control;
    if (!well_formed_control(msg)) return control;  // the kernel refuses it (EINVAL)
    int error = 0;
    for_each_right(msg, [&](cmsghdr* c, std::size_t i, int fd) {
        const Socket* s = fd_table().socket(fd);
        if (!s || error != 0) return;
        if (s->is<ms::posix::StreamState>()) {  // it goes as it is, named for the receiver
            InsideLibrary inside;
            ms::posix::label_passed_connection(fd);
            if (!Runtime::inherited(*s)) s->owner->note_passed(fd);
            return;
        }
        const auto* listening = s->as<ListenerState>();
        if (!listening || listening->proof_fd < 0) {
            ms::posix::log_line(1, "a UTCP UDP socket cannot be passed to another process (SCM_RIGHTS): EOPNOTSUPP");
            error = EOPNOTSUPP;
            return;
        }
        if (control.empty()) {
            const auto* first = static_cast<const char*>(msg.msg_control);
            control.assign(first, first + msg.msg_controllen);
        }
        const auto offset = reinterpret_cast<const char*>(CMSG_DATA(c)) - static_cast<const char*>(msg.msg_control);
        std::memcpy(control.data() + offset + i * sizeof(int), &listening->proof_fd, sizeof(int));
    });
    if (error != 0) return Errno{error};
    return control;
}

// After a recvmsg(): a labelled connection an SCM_RIGHTS message brought is taken up on
// its first call; the TCP sockets that are bound and neither listening nor connected may
// be a UTCP listener another process passed.
void adopt_passed_sockets(const msghdr& msg) {
    if (msg.msg_controllen == 0 || in_vfork_child() || !well_formed_control(msg)) return;
    for_each_right(msg, [](cmsghdr*, std::size_t, int fd) {
        InsideLibrary inside;
        if (ms::posix::labelled_connection(fd)) return ms::posix::expect_connection(fd);
        if (!ms::posix::unplaced_tcp_socket(fd)) return;
        if (Runtime* rt = Runtime::get()) (void)rt->place_received_listener(fd, SOMAXCONN, ms::ctl::ClaimRole::passed);
    });
}

}  // namespace ms::preload
