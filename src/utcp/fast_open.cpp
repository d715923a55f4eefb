#include "utcp/fast_open.hpp"

#include <sodium.h>

#include <cstring>

namespace ms::utcp {

wire::FastOpenCookie FastOpenCookies::make(const wire::IpAddr& client, const wire::IpAddr& server) const {
    std::array<std::uint8_t, 32> input{};
    std::memcpy(input.data(), client.bytes.data(), 16);
    std::memcpy(input.data() + 16, server.bytes.data(), 16);
    static_assert(crypto_shorthash_BYTES == kCookieBytes);
    wire::FastOpenCookie cookie;
    crypto_shorthash(cookie.bytes.data(), input.data(), input.size(), key_.data());
    cookie.size = kCookieBytes;
    return cookie;
}

bool FastOpenCookies::valid(const wire::IpAddr& client, const wire::IpAddr& server,
                            const wire::FastOpenCookie& cookie) const {
    if (cookie.size != kCookieBytes) return false;
    const wire::FastOpenCookie expected = make(client, server);
    return sodium_memcmp(cookie.bytes.data(), expected.bytes.data(), kCookieBytes) == 0;
}

std::optional<FastOpenEntry> FastOpenCache::find(const wire::IpAddr& server) const {
    auto it = entries_.find(server.bytes);
    if (it == entries_.end()) return std::nullopt;
    return it->second;
}

void FastOpenCache::remember(const wire::IpAddr& server, const FastOpenEntry& entry) {
    auto [it, added] = entries_.insert_or_assign(server.bytes, entry);
    if (!added) return;
    order_.push_back(server.bytes);
    if (entries_.size() <= capacity_) return;
    entries_.erase(order_.front());
    order_.pop_front();
}

}  // namespace ms::utcp
