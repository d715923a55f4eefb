// Stack, UDP: datagrams to their bound port's handler, and out through the IP layer.
#include "utcp/stack.hpp"
#include "wire/checksum.hpp"
#include "wire/ip.hpp"

namespace ms::utcp {

void Stack::input_udp(const IpPacket& ip) {
    auto udp = wire::UdpView::parse(ip.l4);
    if (!udp) return void(++stats_.malformed);
    if (udp->checksum() != 0 &&
        !wire::transport_checksum_ok(ip.src, ip.dst, wire::ipproto::udp, ip.l4.first(udp->length()))) {
        return void(++stats_.bad_checksum);
    }
    ++stats_.udp_datagrams_in;
    auto it = udp_.find(udp->dst_port());
    if (it == udp_.end()) return void(++stats_.udp_no_socket);
    it->second->on_datagram(ip.src, udp->src_port(), udp->dst_port(), udp->payload());
}

bool Stack::udp_bind(std::uint16_t port, UdpHandler& handler) { return udp_.try_emplace(port, &handler).second; }

void Stack::udp_unbind(std::uint16_t port) { udp_.erase(port); }

bool Stack::udp_send(std::uint16_t from_port, const wire::IpAddr& to, std::uint16_t to_port, wire::Bytes payload,
                     const IpMarks& marks) {
    const auto local = local_address(to.family);
    const auto mac = local ? next_hop(to) : std::nullopt;
    if (!mac) {
        ++stats_.no_route;
        return false;
    }
    const std::size_t ip_header = to.family == wire::IpFamily::v6 ? wire::kIpv6HeaderLen : wire::kIpv4MinHeaderLen;
    if (payload.size() > config_.mtu - ip_header - wire::kUdpHeaderLen) return false;
    return emit_datagram(*mac, FourTuple{*local, to, from_port, to_port}, payload, marks);
}

}  // namespace ms::utcp
