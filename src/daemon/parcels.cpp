// Contract: parcels.hpp's store of connections in hand-off.
#include "daemon/parcels.hpp"

#include <poll.h>
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

void Parcels::close_all(const Parcel& p) {
    for (int fd : {p.image_fd, p.ready_fd, p.proof_fd}) {
        if (fd >= 0) ::close(fd);
    }
}

bool Parcels::hung_up(int ready_fd) {
    pollfd pfd{.fd = ready_fd, .events = POLLIN, .revents = 0};
    return ::poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLHUP | POLLERR)) != 0;
}

std::optional<SocketIdentity> socket_identity(int fd) {
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) return std::nullopt;
    return SocketIdentity{static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)};
}

}  // namespace ms::daemon
