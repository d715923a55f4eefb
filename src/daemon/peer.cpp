#include "daemon/peer.hpp"

#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fstream>
#include <string>

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77  // Linux 6.5; older glibc headers lack it
#endif

namespace ms::daemon {
namespace {

constexpr int kCapNetAdmin = 12;

bool status_has_cap_net_admin(pid_t pid) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line)) {
        if (!line.starts_with("CapEff:")) continue;
        try {
            const unsigned long long caps = std::stoull(line.substr(7), nullptr, 16);
            return (caps >> kCapNetAdmin) & 1;
        } catch (const std::exception&) {
            return false;
        }
    }
    return false;
}

bool still_alive(int pidfd) { return ::syscall(SYS_pidfd_send_signal, pidfd, 0, nullptr, 0) == 0; }

bool has_cap_net_admin(int session_fd, pid_t pid) {
    int pidfd = -1;
    socklen_t len = sizeof pidfd;
    if (::getsockopt(session_fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) != 0) return false;
    const bool cap = status_has_cap_net_admin(pid) && still_alive(pidfd);
    ::close(pidfd);
    return cap;
}

}  // namespace

Peer identify_peer(int session_fd) {
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(session_fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return {};
    Peer p{cred.pid, cred.uid, cred.uid == 0};
    if (!p.privileged && cred.pid > 0) p.privileged = has_cap_net_admin(session_fd, cred.pid);
    return p;
}

}  // namespace ms::daemon
