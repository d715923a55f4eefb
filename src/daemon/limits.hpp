// Contract: the control plane's limits (DESIGN §6, §11): what one session and one user
// (uid) may hold, so that no client can exhaust the daemon's memory or descriptors and
// a limit one user reaches never affects another. UserLedger counts what each user
// holds now; the control server asks it before it grants and tells it when it frees.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string_view>

namespace ms::daemon {

struct Limits {
    std::uint32_t claims_per_session = 4096;
    std::uint32_t sessions_per_user = 256;
    std::uint32_t ports_per_user = 64;
    std::uint64_t port_memory_per_user = std::uint64_t{1024} << 20;  // bytes of shared rings
    std::size_t outbox_bytes = std::size_t{1} << 20;                  // replies a session may leave unread
};

enum class LimitHit { sessions_per_user, ports_per_user, port_memory_per_user, claims_per_session };
[[nodiscard]] constexpr std::string_view to_string(LimitHit l) {
    switch (l) {
        case LimitHit::sessions_per_user: return "sessions per user";
        case LimitHit::ports_per_user: return "ports per user";
        case LimitHit::port_memory_per_user: return "port memory per user";
        case LimitHit::claims_per_session: return "claims per session";
    }
    return "unknown";
}

class UserLedger {
public:
    explicit UserLedger(const Limits& limits) : limits_(limits) {}

    [[nodiscard]] std::optional<LimitHit> open_session(uid_t uid) {
        Usage& u = users_[uid];
        if (u.sessions >= limits_.sessions_per_user) {
            drop_if_idle(uid);
            return LimitHit::sessions_per_user;
        }
        ++u.sessions;
        return std::nullopt;
    }
    void close_session(uid_t uid) {
        --users_[uid].sessions;
        drop_if_idle(uid);
    }
    [[nodiscard]] std::optional<LimitHit> add_port(uid_t uid, std::uint64_t bytes) {
        Usage& u = users_[uid];
        if (u.ports >= limits_.ports_per_user) return LimitHit::ports_per_user;
        if (bytes > limits_.port_memory_per_user - u.port_bytes) return LimitHit::port_memory_per_user;
        ++u.ports;
        u.port_bytes += bytes;
        return std::nullopt;
    }
    void remove_port(uid_t uid, std::uint64_t bytes) {
        Usage& u = users_[uid];
        --u.ports;
        u.port_bytes -= bytes;
    }

private:
    struct Usage {
        std::uint32_t sessions = 0;
        std::uint32_t ports = 0;
        std::uint64_t port_bytes = 0;
    };
    void drop_if_idle(uid_t uid) {
        auto it = users_.find(uid);
        if (it != users_.end() && it->second.sessions == 0) users_.erase(it);
    }

    const Limits& limits_;
    std::map<uid_t, Usage> users_;
};

}  // namespace ms::daemon
