#include "wire/ethernet.hpp"

namespace ms::wire {

base::Result<EthernetView, ParseError> EthernetView::parse(Bytes frame) {
    if (frame.size() < kEthernetHeaderLen) return ParseError::truncated;
    if (load_be16(frame.data() + 12) != ethertype::vlan) {
        return EthernetView(frame, kEthernetHeaderLen);
    }
    if (frame.size() < kEthernetHeaderLen + kVlanTagLen) return ParseError::truncated;
    return EthernetView(frame, kEthernetHeaderLen + kVlanTagLen);
}

std::uint16_t EthernetView::vlan_id() const { return has_vlan() ? load_be16(frame_.data() + 14) & 0x0fff : 0; }

void EthernetRepr::emit(MutBytes out) const {
    dst.store(out.data());
    src.store(out.data() + 6);
    std::size_t at = 12;
    if (vlan) {
        store_be16(out.data() + at, ethertype::vlan);
        store_be16(out.data() + at + 2, vlan_id & 0x0fff);
        at += kVlanTagLen;
    }
    store_be16(out.data() + at, ethertype);
}

base::Result<ArpView, ParseError> ArpView::parse(Bytes packet) {
    if (packet.size() < kArpLen) return ParseError::truncated;
    const bool ethernet_ipv4 = load_be16(packet.data()) == 1 && load_be16(packet.data() + 2) == ethertype::ipv4 &&
                               packet[4] == 6 && packet[5] == 4;
    if (!ethernet_ipv4) return ParseError::bad_hardware_type;
    return ArpView(packet.first(kArpLen));
}

void ArpRepr::emit(MutBytes out) const {
    std::uint8_t* p = out.data();
    store_be16(p, 1);
    store_be16(p + 2, ethertype::ipv4);
    p[4] = 6;
    p[5] = 4;
    store_be16(p + 6, operation);
    sender_mac.store(p + 8);
    std::memcpy(p + 14, sender_ip.bytes.data(), 4);
    target_mac.store(p + 18);
    std::memcpy(p + 24, target_ip.bytes.data(), 4);
}

}  // namespace ms::wire
