// Contract: the parts of TCP Fast Open (RFC 7413) that outlive a connection. The server's
// cookies (§4.1.2): a MAC of the client's and the server's addresses under a secret key,
// SipHash-2-4 from libsodium, 8 bytes, checked in constant time. The client's cache
// (§4.1.3): per server address, the cookie it gave and its MSS, at most `capacity`
// entries (the oldest goes first). What a connection does with them (data in the SYN,
// the cookie in the SYN,ACK) is in connection_handshake.cpp; which SYNs are taken, in stack.cpp.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>

#include "utcp/secrets.hpp"
#include "wire/bytes.hpp"
#include "wire/transport.hpp"

namespace ms::utcp {

class FastOpenCookies {
public:
    static constexpr std::uint8_t kCookieBytes = 8;

    explicit FastOpenCookies(const SecretKey& key) : key_(key) {}  // secrets.hpp draws one

    [[nodiscard]] wire::FastOpenCookie make(const wire::IpAddr& client, const wire::IpAddr& server) const;
    [[nodiscard]] bool valid(const wire::IpAddr& client, const wire::IpAddr& server,
                             const wire::FastOpenCookie& cookie) const;

private:
    SecretKey key_;
};

// What a client remembers of a server.
struct FastOpenEntry {
    wire::FastOpenCookie cookie;
    std::uint16_t mss = 536;  // the server's, so that the next SYN's data fits its segments
};

class FastOpenCache {
public:
    explicit FastOpenCache(std::size_t capacity = 4096) : capacity_(capacity) {}

    [[nodiscard]] std::optional<FastOpenEntry> find(const wire::IpAddr& server) const;
    void remember(const wire::IpAddr& server, const FastOpenEntry& entry);
    [[nodiscard]] std::size_t size() const { return entries_.size(); }

private:
    using Key = std::array<std::uint8_t, 16>;
    std::size_t capacity_;
    std::map<Key, FastOpenEntry> entries_;
    std::deque<Key> order_;  // oldest first
};

}  // namespace ms::utcp
