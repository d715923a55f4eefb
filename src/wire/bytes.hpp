// Contract: big-endian loads and stores over byte spans, and the small value types
// (MAC and IP addresses) shared by every header view. Loads go through memcpy, never
// through a reinterpret_cast of a packed struct. Callers bounds-check before they load.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>

namespace ms::wire {

using Bytes = std::span<const std::uint8_t>;
using MutBytes = std::span<std::uint8_t>;

// Network to host order and back (std::byteswap is C++23).
inline std::uint16_t swap_be16(std::uint16_t v) {
    if constexpr (std::endian::native == std::endian::little) return __builtin_bswap16(v);
    return v;
}
inline std::uint32_t swap_be32(std::uint32_t v) {
    if constexpr (std::endian::native == std::endian::little) return __builtin_bswap32(v);
    return v;
}

inline std::uint16_t load_be16(const std::uint8_t* p) {
    std::uint16_t v;
    std::memcpy(&v, p, sizeof v);
    return swap_be16(v);
}

inline std::uint32_t load_be32(const std::uint8_t* p) {
    std::uint32_t v;
    std::memcpy(&v, p, sizeof v);
    return swap_be32(v);
}

inline void store_be16(std::uint8_t* p, std::uint16_t v) {
    v = swap_be16(v);
    std::memcpy(p, &v, sizeof v);
}

inline void store_be32(std::uint8_t* p, std::uint32_t v) {
    v = swap_be32(v);
    std::memcpy(p, &v, sizeof v);
}

// Copies `src` to `dst`. An empty span may have a null data(), which memcpy must not
// be given even for zero bytes.
inline void copy_bytes(std::uint8_t* dst, std::span<const std::uint8_t> src) {
    if (!src.empty()) std::memcpy(dst, src.data(), src.size());
}

struct MacAddr {
    std::array<std::uint8_t, 6> octets{};

    static MacAddr load(const std::uint8_t* p) {
        MacAddr m;
        std::memcpy(m.octets.data(), p, 6);
        return m;
    }
    void store(std::uint8_t* p) const { std::memcpy(p, octets.data(), 6); }
    // The group bit (I/G) is set for broadcast and every multicast address.
    [[nodiscard]] bool is_group() const { return (octets[0] & 0x01) != 0; }
    [[nodiscard]] std::string to_string() const;
    friend bool operator==(const MacAddr&, const MacAddr&) = default;
};

enum class IpFamily : std::uint8_t { v4 = 4, v6 = 6 };

// An IPv4 or IPv6 address. IPv4 occupies the first four bytes; the rest stay zero so
// that equality and hashing work on the whole array.
struct IpAddr {
    IpFamily family = IpFamily::v4;
    std::array<std::uint8_t, 16> bytes{};

    static IpAddr v4(std::uint32_t host_order);
    static IpAddr load_v4(const std::uint8_t* p);
    static IpAddr load_v6(const std::uint8_t* p);
    static IpAddr any(IpFamily family) { return IpAddr{family, {}}; }

    [[nodiscard]] std::size_t size() const { return family == IpFamily::v4 ? 4 : 16; }
    [[nodiscard]] bool is_any() const { return bytes == std::array<std::uint8_t, 16>{}; }
    [[nodiscard]] std::uint32_t v4_host_order() const { return load_be32(bytes.data()); }
    [[nodiscard]] std::string to_string() const;
    // The address as two words, for hashing and for comparing without memcmp.
    [[nodiscard]] std::uint64_t word(int i) const {
        std::uint64_t w;
        std::memcpy(&w, bytes.data() + 8 * i, 8);
        return w;
    }
    friend bool operator==(const IpAddr& a, const IpAddr& b) {
        return a.family == b.family && a.word(0) == b.word(0) && a.word(1) == b.word(1);
    }
};

// For hash tables keyed by address: a multiplicative mix of both words and the family.
struct IpAddrHash {
    std::size_t operator()(const IpAddr& a) const {
        std::uint64_t h = (a.word(0) ^ static_cast<std::uint64_t>(a.family)) * 0x9e3779b97f4a7c15ull;
        h = (h ^ a.word(1)) * 0x9e3779b97f4a7c15ull;
        return static_cast<std::size_t>(h ^ (h >> 29));
    }
};

// Parses dotted-quad IPv4 or RFC 4291 text IPv6; returns false on malformed text.
[[nodiscard]] bool parse_ip(const std::string& text, IpAddr& out);
// Parses "aa:bb:cc:dd:ee:ff"; returns false on malformed text.
[[nodiscard]] bool parse_mac(const std::string& text, MacAddr& out);
// "ADDR:PORT", IPv6 as "[ADDR]:PORT" (RFC 3986 §3.2.2).
[[nodiscard]] std::string endpoint_to_string(const IpAddr& addr, std::uint16_t port);
// Parses "ADDR:PORT" (IPv6 as "[ADDR]:PORT" or with the last colon as the separator).
[[nodiscard]] bool parse_endpoint(const std::string& text, IpAddr& addr, std::uint16_t& port);

}  // namespace ms::wire
