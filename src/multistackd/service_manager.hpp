// Contract: multistackd and the service manager (systemd), through libsystemd's notify
// protocol: READY=1 once the daemon serves (Type=notify), and the file-descriptor store
// (FileDescriptorStoreMax=), which carries a hand-over (hand_over.hpp) across
// `systemctl restart`: the leaving daemon stores the record, in a memfd named
// "ms-record", and each descriptor it names under its index ("ms-0", "ms-1", ...); the
// manager passes them to the next start (LISTEN_FDS, LISTEN_FDNAMES), in any order, and
// that daemon takes them back by name, then removes them from the store. Everything here
// is a no-op where no service manager listens (NOTIFY_SOCKET unset).
#pragma once

#include <optional>

#include "base/result.hpp"
#include "multistackd/hand_over.hpp"

namespace ms::multistackd {

// Tells the service manager that the daemon serves.
void notify_ready();

// Stores `state` in the service manager's file-descriptor store; refused (transport) if
// no service manager listens or it would not take a message.
[[nodiscard]] base::Result<base::Done, HandOverFailure> store_hand_over(const EncodedState& state);

// The hand-over the service manager passed to this start, if any (nothing if none was
// passed). The store is emptied either way, so that a start that fails leaves the next
// one a clean slate; on failure every descriptor passed is closed.
[[nodiscard]] base::Result<std::optional<HandOverState>, HandOverFailure> stored_hand_over();

}  // namespace ms::multistackd
