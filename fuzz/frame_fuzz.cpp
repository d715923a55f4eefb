// libFuzzer target: arbitrary bytes as an Ethernet frame, through every parser the switch
// and the stacks use, and through the switch's verdicts. Nothing may read out of bounds,
// and what parses must be self-consistent.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "sw/registry.hpp"
#include "sw/validator.hpp"
#include "wire/ethernet.hpp"
#include "wire/frame.hpp"
#include "wire/icmp.hpp"
#include "wire/ip.hpp"
#include "wire/transport.hpp"

namespace {

using namespace ms;

void check(bool ok) {
    if (!ok) std::abort();
}

// The claims the validator is checked against, in a registry of their own.
const sw::ClaimTable& claims() {
    struct Claims {
        sw::Qsbr qsbr{1};
        sw::Registry registry{qsbr};
        Claims() {
            registry.set_local_addresses({wire::IpAddr::v4(0xc6120001)});
            (void)registry.add({6, wire::IpAddr::v4(0xc6120001), 80}, 1);
            (void)registry.add({17, wire::IpAddr::any(wire::IpFamily::v4), 53}, 2);
            (void)registry.add({17, wire::IpAddr::any(wire::IpFamily::v6), 53}, 3);
        }
    };
    static const Claims c;
    return c.registry.read();
}

void parse_transport(std::uint8_t protocol, wire::Bytes l4) {
    if (protocol == wire::ipproto::tcp) {
        if (auto tcp = wire::TcpView::parse(l4)) {
            check(tcp->header_len() <= l4.size());
            check(tcp->payload().size() == l4.size() - tcp->header_len());
            check(tcp->options().sack_count <= 4);
        }
    } else if (protocol == wire::ipproto::udp) {
        if (auto udp = wire::UdpView::parse(l4)) check(udp->payload().size() + 8 == udp->length());
    } else if (protocol == wire::ipproto::icmp) {
        if (auto icmp = wire::IcmpV4View::parse(l4)) (void)icmp->checksum_ok();
    }
}

void parse_layers(wire::Bytes frame) {
    auto eth = wire::EthernetView::parse(frame);
    if (!eth) return;
    const wire::Bytes l3 = eth->payload();
    switch (eth->ethertype()) {
        case wire::ethertype::arp:
            if (auto arp = wire::ArpView::parse(l3)) (void)arp->target_ip();
            break;
        case wire::ethertype::ipv4:
            if (auto ip = wire::Ipv4View::parse(l3)) {
                check(ip->payload().size() + ip->header_len() == ip->total_length());
                (void)ip->checksum_ok();
                parse_transport(ip->protocol(), ip->payload());
            }
            break;
        case wire::ethertype::ipv6:
            if (auto ip = wire::Ipv6View::parse(l3)) parse_transport(ip->upper_protocol(), ip->upper_payload());
            break;
        default: break;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const wire::Bytes frame(data, size);
    parse_layers(frame);
    wire::ParsedFrame parsed;
    if (wire::parse_frame(frame, parsed)) {
        check(parsed.l3_offset + parsed.l3_length <= size);
    }
    const wire::MacAddr nic{{0x02, 0, 0, 0, 0, 1}};
    const sw::Verdict tx = sw::validate_tx(frame, 1, sw::TxLink{nic}, claims());
    check(tx.kind != sw::Verdict::Kind::to_port || tx.port != sw::kNoPort);
    (void)sw::classify_rx(frame, claims());
    if (size >= 2) (void)wire::TcpOptions::parse(frame.subspan(0, std::min<std::size_t>(size, 40)));
    return 0;
}
