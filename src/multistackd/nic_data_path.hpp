// Contract: the DataPath of a real interface: the XDP claim program, the AF_XDP
// attachment and the kernel's tables over rtnetlink.
#pragma once

#include "daemon/data_path.hpp"
#include "nic/af_xdp_nic.hpp"
#include "nic/xdp_program.hpp"

namespace ms::multistackd {

class NicDataPath final : public daemon::DataPath {
public:
    NicDataPath(nic::XdpProgram& xdp, const nic::AfXdpNic& nic, netlink::Netlink& netlink, unsigned ifindex)
        : xdp_(xdp), nic_(nic), netlink_(netlink), ifindex_(ifindex) {}

    bool mirror_claim(const sw::ClaimKey& claim) override { return xdp_.add_claim(claim); }
    void unmirror_claim(const sw::ClaimKey& claim) override { (void)xdp_.remove_claim(claim); }
    std::uint32_t claim_capacity() const override { return xdp_.claim_capacity(); }
    daemon::DataPathStatus status() const override {
        const nic::DaemonRecord& record = xdp_.record();
        return {xdp_.mode() == nic::XdpMode::native,
                nic_.zero_copy(),
                nic_.queue_count(),
                xdp_.claimed_frames(),
                xdp_.passed_frames(),
                nic_.offloads_segmentation(),
                xdp_.held_frames(),
                record.restarts,
                record.upgrades,
                record.first_start_s,
                static_cast<std::uint32_t>(xdp_.adopted_waiting())};
    }
    std::size_t beat() override { return xdp_.beat(); }
    std::optional<wire::IpAddr> next_hop(const wire::IpAddr& dst) override { return netlink_.next_hop(dst, ifindex_); }
    netlink::NeighbourState neighbour(const wire::IpAddr& next_hop, wire::MacAddr& mac) override {
        return netlink_.neighbour(next_hop, ifindex_, mac);
    }

private:
    nic::XdpProgram& xdp_;
    const nic::AfXdpNic& nic_;
    netlink::Netlink& netlink_;
    unsigned ifindex_;
};

}  // namespace ms::multistackd
