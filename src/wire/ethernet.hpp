// Contract: Ethernet II frames with at most one 802.1Q tag, and ARP over Ethernet/IPv4.
// parse_* validate once; the returned views then read fields without checks.
#pragma once

#include "wire/bytes.hpp"
#include "wire/parse_error.hpp"

namespace ms::wire {

namespace ethertype {
inline constexpr std::uint16_t ipv4 = 0x0800;
inline constexpr std::uint16_t arp = 0x0806;
inline constexpr std::uint16_t vlan = 0x8100;
inline constexpr std::uint16_t ipv6 = 0x86dd;
}  // namespace ethertype

inline constexpr std::size_t kEthernetHeaderLen = 14;
inline constexpr std::size_t kVlanTagLen = 4;

class EthernetView {
public:
    EthernetView() = default;
    static base::Result<EthernetView, ParseError> parse(Bytes frame);

    [[nodiscard]] MacAddr dst() const { return MacAddr::load(frame_.data()); }
    [[nodiscard]] MacAddr src() const { return MacAddr::load(frame_.data() + 6); }
    [[nodiscard]] bool has_vlan() const { return header_len_ > kEthernetHeaderLen; }
    // The 12-bit VLAN identifier; 0 when the frame is untagged.
    [[nodiscard]] std::uint16_t vlan_id() const;
    // The EtherType of the payload, after the VLAN tag when there is one.
    [[nodiscard]] std::uint16_t ethertype() const { return load_be16(frame_.data() + header_len_ - 2); }
    [[nodiscard]] std::size_t header_len() const { return header_len_; }
    [[nodiscard]] Bytes payload() const { return frame_.subspan(header_len_); }

private:
    EthernetView(Bytes frame, std::size_t header_len) : frame_(frame), header_len_(header_len) {}
    Bytes frame_;
    std::size_t header_len_ = 0;
};

struct EthernetRepr {
    MacAddr dst;
    MacAddr src;
    std::uint16_t ethertype = ethertype::ipv4;
    std::uint16_t vlan_id = 0;  // 0: untagged
    bool vlan = false;

    [[nodiscard]] std::size_t header_len() const { return kEthernetHeaderLen + (vlan ? kVlanTagLen : 0); }
    // Writes the header at the start of `out`, which must hold header_len() bytes.
    void emit(MutBytes out) const;
};

inline constexpr std::size_t kArpLen = 28;

class ArpView {
public:
    ArpView() = default;
    // Accepts only Ethernet (htype 1, hlen 6) over IPv4 (ptype 0x0800, plen 4).
    static base::Result<ArpView, ParseError> parse(Bytes packet);

    [[nodiscard]] std::uint16_t operation() const { return load_be16(p_.data() + 6); }
    [[nodiscard]] MacAddr sender_mac() const { return MacAddr::load(p_.data() + 8); }
    [[nodiscard]] IpAddr sender_ip() const { return IpAddr::load_v4(p_.data() + 14); }
    [[nodiscard]] MacAddr target_mac() const { return MacAddr::load(p_.data() + 18); }
    [[nodiscard]] IpAddr target_ip() const { return IpAddr::load_v4(p_.data() + 24); }

private:
    explicit ArpView(Bytes p) : p_(p) {}
    Bytes p_;
};

struct ArpRepr {
    std::uint16_t operation = 1;  // 1 request, 2 reply
    MacAddr sender_mac;
    IpAddr sender_ip;
    MacAddr target_mac;
    IpAddr target_ip;

    void emit(MutBytes out) const;  // writes kArpLen bytes
};

}  // namespace ms::wire
