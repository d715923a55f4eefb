// Contract: connections in hand-off between processes (docs/DESIGN.md §7, "Connections
// that move"). A parcel holds what the exporting process sent (the connection's image in
// a sealed memfd, and the library's end of its readiness socketpair), the claim the
// connection belongs to with a duplicate of its proof socket, and the connection's
// 4-tuple, until a process presents a descriptor of the same open socket (matched by
// device and inode) and takes it, or the sender reclaims it (every holder closed the
// connection without taking it up: the sender closes it with a FIN). A parcel nobody
// takes or reclaims goes when it expires: the daemon closes what it held and counts it
// dropped. Every descriptor a
// parcel holds is closed on every path; how many parcels a user has is budgeted by the
// caller (UserLedger::add_handoff).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "daemon/claim_proof.hpp"
#include "daemon/peer.hpp"
#include "sw/flow_table.hpp"

namespace ms::daemon {

// The open socket a descriptor names.
struct SocketIdentity {
    std::uint64_t device = 0;
    std::uint64_t inode = 0;
    friend bool operator==(const SocketIdentity&, const SocketIdentity&) = default;
};

struct Parcel {
    SocketIdentity token;  // the application's end of the readiness socketpair
    int image_fd = -1;     // sealed memfd
    int ready_fd = -1;     // the library's end
    int proof_fd = -1;     // a duplicate of the claim's proof socket
    std::uint64_t image_bytes = 0;
    ProvenTuple proven;  // the claim
    sw::FlowKey flow;    // the connection in the claim's group
    Peer from;           // who sent it, charged for it
    std::uint64_t number = 0;  // what the sender reclaims it by (unguessable)
    std::chrono::steady_clock::time_point expires;
};

class Parcels {
public:
    static constexpr std::chrono::seconds kKeep{30};
    static constexpr std::uint32_t kDescriptorsPerParcel = 3;

    Parcels() = default;
    ~Parcels();
    Parcels(const Parcels&) = delete;
    Parcels& operator=(const Parcels&) = delete;

    // Keeps `p`; false if a parcel of the same token waits already (nothing is kept then,
    // and the caller still owns p's descriptors).
    [[nodiscard]] bool put(const Parcel& p);
    // The parcel of `token`, now the caller's (with its descriptors); nothing if none waits.
    [[nodiscard]] std::optional<Parcel> take(const SocketIdentity& token);
    // The parcel numbered `number` that user `uid` sent, now the caller's; nothing if none.
    [[nodiscard]] std::optional<Parcel> reclaim(std::uint64_t number, uid_t uid);
    // A fresh parcel number, from the kernel's random source.
    [[nodiscard]] static std::uint64_t next_number();
    // Drops the parcels expired at `now`; `dropped(p)` is called for each, and owns its
    // descriptors from then on.
    template <class Dropped>
    void sweep(std::chrono::steady_clock::time_point now, Dropped&& dropped) {
        for (std::size_t i = parcels_.size(); i-- > 0;) {
            if (now < parcels_[i].expires) continue;
            dropped(parcels_[i]);
            parcels_.erase(parcels_.begin() + static_cast<std::ptrdiff_t>(i));
        }
    }
    [[nodiscard]] std::size_t size() const { return parcels_.size(); }
    // Whether a waiting parcel belongs to the claim `key` (or its IPv4 twin).
    [[nodiscard]] bool references(const sw::ClaimKey& key) const;
    static void close_all(const Parcel& p);

private:
    std::vector<Parcel> parcels_;
};

// The socket `fd` names, or nothing if it is not a socket.
[[nodiscard]] std::optional<SocketIdentity> socket_identity(int fd);

}  // namespace ms::daemon
