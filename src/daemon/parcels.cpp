// Contract: parcels.hpp's store of connections in hand-off.
#include "daemon/parcels.hpp"

#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

namespace ms::daemon {

Parcels::~Parcels() {
    for (const Parcel& p : parcels_) close_all(p);
}

bool Parcels::put(const Parcel& p) {
    if (std::ranges::any_of(parcels_, [&](const Parcel& q) { return q.token == p.token; })) return false;
    parcels_.push_back(p);
    return true;
}

std::optional<Parcel> Parcels::take(const SocketIdentity& token) {
    auto it = std::ranges::find_if(parcels_, [&](const Parcel& p) { return p.token == token; });
    if (it == parcels_.end()) return std::nullopt;
    Parcel p = *it;
    parcels_.erase(it);
    return p;
}

bool Parcels::references(const sw::ClaimKey& key) const {
    return std::ranges::any_of(parcels_, [&](const Parcel& p) { return p.proven.key == key || p.proven.ipv4_twin == key; });
}

void Parcels::close_all(const Parcel& p) {
    for (int fd : {p.image_fd, p.ready_fd, p.proof_fd}) {
        if (fd >= 0) ::close(fd);
    }
}

std::optional<Parcel> Parcels::reclaim(std::uint64_t number, uid_t uid) {
    auto it = std::ranges::find_if(parcels_, [&](const Parcel& p) { return p.number == number && p.from.uid == uid; });
    if (number == 0 || it == parcels_.end()) return std::nullopt;
    Parcel p = *it;
    parcels_.erase(it);
    return p;
}

std::uint64_t Parcels::next_number() {
    static std::uint64_t fallback = 0;  // without getrandom: distinct, if guessable
    std::uint64_t n = 0;
    if (::getrandom(&n, sizeof n, 0) != static_cast<ssize_t>(sizeof n) || n == 0) n = ++fallback;
    return n;
}

std::optional<SocketIdentity> socket_identity(int fd) {
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) return std::nullopt;
    return SocketIdentity{static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)};
}

}  // namespace ms::daemon
