#include "wire/checksum.hpp"

namespace ms::wire {
namespace {

std::uint16_t fold(std::uint64_t sum) {
    sum = (sum & 0xffffffffu) + (sum >> 32);
    sum = (sum & 0xffffffffu) + (sum >> 32);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<std::uint16_t>(sum);
}

// Adds 32-bit native-order words into a 64-bit accumulator: with 32 bits of headroom
// no carry is lost for any frame size we handle, and the ones' complement sum is
// byte-order independent (RFC 1071 §2(B)), so we swap once at the end instead of
// per word. Four accumulators let the loop issue independent adds. With a `dst`, every
// word read is also stored there: the copy and the sum take one pass over the bytes.
template <bool kCopy>
std::uint64_t sum_native(const std::uint8_t* p, std::size_t n, std::uint8_t* dst = nullptr) {
    std::uint64_t acc[4] = {0, 0, 0, 0};
    while (n >= 32) {
        std::uint64_t w[4];
        std::memcpy(w, p, 32);
        if constexpr (kCopy) {
            std::memcpy(dst, w, 32);
            dst += 32;
        }
        for (int i = 0; i < 4; ++i) acc[i] += (w[i] & 0xffffffffu) + (w[i] >> 32);
        p += 32;
        n -= 32;
    }
    if constexpr (kCopy) {
        if (n > 0) std::memcpy(dst, p, n);  // dst may be null when n is 0
    }
    std::uint64_t sum = acc[0] + acc[1] + acc[2] + acc[3];
    while (n >= 4) {
        std::uint32_t w;
        std::memcpy(&w, p, 4);
        sum += w;
        p += 4;
        n -= 4;
    }
    if (n >= 2) {
        std::uint16_t w;
        std::memcpy(&w, p, 2);
        sum += w;
        p += 2;
        n -= 2;
    }
    if (n == 1) {
        // The odd byte is the high half of a big-endian word padded with zero.
        const std::uint8_t pad[2] = {p[0], 0};
        std::uint16_t w;
        std::memcpy(&w, pad, 2);
        sum += w;
    }
    return sum;
}

}  // namespace

std::uint16_t ones_sum(Bytes data, std::uint32_t initial) {
    const std::uint16_t native = fold(sum_native<false>(data.data(), data.size()));
    return fold(std::uint64_t{swap_be16(native)} + initial);
}

std::uint16_t copy_ones_sum(std::uint8_t* dst, Bytes src) {
    return swap_be16(fold(sum_native<true>(src.data(), src.size(), dst)));
}

std::uint16_t ones_add(std::uint16_t a, std::uint16_t b) { return fold(std::uint64_t{a} + b); }

std::uint32_t pseudo_header_sum(const IpAddr& src, const IpAddr& dst, std::uint8_t protocol, std::uint32_t l4_length) {
    std::uint32_t sum = 0;
    for (std::size_t i = 0; i < src.size(); i += 2) {
        sum += load_be16(&src.bytes[i]);
        sum += load_be16(&dst.bytes[i]);
    }
    sum += protocol;
    sum += l4_length >> 16;
    sum += l4_length & 0xffff;
    return sum;
}

std::uint16_t transport_checksum(const IpAddr& src, const IpAddr& dst, std::uint8_t protocol, Bytes segment) {
    const auto len = static_cast<std::uint32_t>(segment.size());
    const std::uint16_t c = internet_checksum(segment, pseudo_header_sum(src, dst, protocol, len));
    constexpr std::uint8_t kUdp = 17;
    return (protocol == kUdp && c == 0) ? 0xffff : c;
}

bool transport_checksum_ok(const IpAddr& src, const IpAddr& dst, std::uint8_t protocol, Bytes segment) {
    const auto len = static_cast<std::uint32_t>(segment.size());
    return ones_sum(segment, pseudo_header_sum(src, dst, protocol, len)) == 0xffff;
}

std::uint16_t checksum_update16(std::uint16_t checksum, std::uint16_t old_word, std::uint16_t new_word) {
    const std::uint32_t sum = std::uint32_t{static_cast<std::uint16_t>(~checksum)} + static_cast<std::uint16_t>(~old_word) +
                              new_word;
    return static_cast<std::uint16_t>(~fold(sum));
}

std::uint16_t checksum_update32(std::uint16_t checksum, std::uint32_t old_value, std::uint32_t new_value) {
    checksum = checksum_update16(checksum, static_cast<std::uint16_t>(old_value >> 16),
                                 static_cast<std::uint16_t>(new_value >> 16));
    return checksum_update16(checksum, static_cast<std::uint16_t>(old_value), static_cast<std::uint16_t>(new_value));
}

}  // namespace ms::wire
