// Contract: TCP (RFC 9293 §3.1, with every option of RFC 9293, 7323, 2018 and 7413
// parsed and length-checked), and UDP (RFC 768) views and builders (ICMP: icmp.hpp).
// TCP options are parsed once into TcpOptions; unknown kinds are skipped by length.
#pragma once

#include <optional>

#include "wire/bytes.hpp"
#include "wire/parse_error.hpp"

namespace ms::wire {

inline constexpr std::size_t kTcpMinHeaderLen = 20;
inline constexpr std::size_t kTcpMaxOptionsLen = 40;
inline constexpr std::size_t kUdpHeaderLen = 8;

namespace tcpflag {
inline constexpr std::uint8_t fin = 0x01;
inline constexpr std::uint8_t syn = 0x02;
inline constexpr std::uint8_t rst = 0x04;
inline constexpr std::uint8_t psh = 0x08;
inline constexpr std::uint8_t ack = 0x10;
inline constexpr std::uint8_t urg = 0x20;
inline constexpr std::uint8_t ece = 0x40;
inline constexpr std::uint8_t cwr = 0x80;
}  // namespace tcpflag

namespace tcpopt {
inline constexpr std::uint8_t eol = 0;
inline constexpr std::uint8_t nop = 1;
inline constexpr std::uint8_t mss = 2;
inline constexpr std::uint8_t window_scale = 3;
inline constexpr std::uint8_t sack_permitted = 4;
inline constexpr std::uint8_t sack = 5;
inline constexpr std::uint8_t timestamps = 8;
inline constexpr std::uint8_t fast_open = 34;
}  // namespace tcpopt

struct SackBlock {
    std::uint32_t left = 0;
    std::uint32_t right = 0;
    friend bool operator==(const SackBlock&, const SackBlock&) = default;
};

struct Timestamps {
    std::uint32_t value = 0;
    std::uint32_t echo_reply = 0;
    friend bool operator==(const Timestamps&, const Timestamps&) = default;
};

// RFC 7413 §4.1.1: a cookie of 4 to 16 bytes, or empty in a cookie request.
struct FastOpenCookie {
    std::array<std::uint8_t, 16> bytes{};
    std::uint8_t size = 0;
    friend bool operator==(const FastOpenCookie&, const FastOpenCookie&) = default;
};

struct TcpOptions {
    std::optional<std::uint16_t> mss;
    std::optional<std::uint8_t> window_scale;
    bool sack_permitted = false;
    std::array<SackBlock, 4> sack_blocks{};
    std::uint8_t sack_count = 0;
    std::optional<Timestamps> timestamps;
    std::optional<FastOpenCookie> fast_open;

    static base::Result<TcpOptions, ParseError> parse(Bytes options);
    // Bytes emit() writes, padded with NOPs/EOL to a multiple of 4.
    [[nodiscard]] std::size_t encoded_len() const;
    // Writes encoded_len() bytes.
    void emit(MutBytes out) const;
    friend bool operator==(const TcpOptions&, const TcpOptions&) = default;
};

class TcpView {
public:
    TcpView() = default;
    // Checks the data offset and parses every option.
    static base::Result<TcpView, ParseError> parse(Bytes segment);

    [[nodiscard]] std::uint16_t src_port() const { return load_be16(p_.data()); }
    [[nodiscard]] std::uint16_t dst_port() const { return load_be16(p_.data() + 2); }
    [[nodiscard]] std::uint32_t seq() const { return load_be32(p_.data() + 4); }
    [[nodiscard]] std::uint32_t ack() const { return load_be32(p_.data() + 8); }
    [[nodiscard]] std::size_t header_len() const { return (std::size_t{p_[12]} >> 4) * 4; }
    [[nodiscard]] std::uint8_t flags() const { return p_[13]; }
    [[nodiscard]] bool has(std::uint8_t flag) const { return (p_[13] & flag) != 0; }
    [[nodiscard]] std::uint16_t window() const { return load_be16(p_.data() + 14); }
    [[nodiscard]] std::uint16_t checksum() const { return load_be16(p_.data() + 16); }
    [[nodiscard]] std::uint16_t urgent() const { return load_be16(p_.data() + 18); }
    [[nodiscard]] const TcpOptions& options() const { return options_; }
    [[nodiscard]] Bytes payload() const { return p_.subspan(header_len()); }

private:
    Bytes p_;
    TcpOptions options_;
};

struct TcpRepr {
    std::uint16_t src_port = 0;
    std::uint16_t dst_port = 0;
    std::uint32_t seq = 0;
    std::uint32_t ack = 0;
    std::uint8_t flags = 0;
    std::uint16_t window = 0;
    std::uint16_t urgent = 0;
    TcpOptions options;

    [[nodiscard]] std::size_t header_len() const { return kTcpMinHeaderLen + options.encoded_len(); }
    // Writes the header with a zero checksum; the caller fills it once the payload is in
    // place (transport_checksum over header and payload).
    void emit(MutBytes out) const;
};

class UdpView {
public:
    UdpView() = default;
    // Checks the UDP length field against the buffer; payload() is bounded by it.
    static base::Result<UdpView, ParseError> parse(Bytes datagram);

    [[nodiscard]] std::uint16_t src_port() const { return load_be16(p_.data()); }
    [[nodiscard]] std::uint16_t dst_port() const { return load_be16(p_.data() + 2); }
    [[nodiscard]] std::uint16_t length() const { return load_be16(p_.data() + 4); }
    [[nodiscard]] std::uint16_t checksum() const { return load_be16(p_.data() + 6); }
    [[nodiscard]] Bytes payload() const { return p_.subspan(kUdpHeaderLen); }

private:
    explicit UdpView(Bytes p) : p_(p) {}
    Bytes p_;
};

struct UdpRepr {
    std::uint16_t src_port = 0;
    std::uint16_t dst_port = 0;
    std::uint16_t payload_len = 0;

    // Writes the 8-byte header with a zero checksum, to be filled like TCP's.
    void emit(MutBytes out) const;
};

}  // namespace ms::wire
