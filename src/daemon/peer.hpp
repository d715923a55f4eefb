// Contract: who is on the other end of a control session (docs/DESIGN.md §6, §11): the process
// and user from SO_PEERCRED, and whether it may see and capture every port: root, or a
// process with CAP_NET_ADMIN in its effective set. The capability is read from
// /proc/PID/status and then confirmed through a pidfd of the peer (SO_PEERPIDFD), so
// that a peer that exits and whose pid is reused by a privileged process is never
// mistaken for it; without a pidfd only uid 0 counts.
#pragma once

#include <sys/types.h>

namespace ms::daemon {

struct Peer {
    pid_t pid = 0;
    uid_t uid = static_cast<uid_t>(-1);
    bool privileged = false;
};

[[nodiscard]] Peer identify_peer(int session_fd);

}  // namespace ms::daemon
