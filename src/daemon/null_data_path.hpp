// Contract: a DataPath with no interface below it, for running the control plane in
// process (unit tests, control_fuzz): claims mirror into nothing, every destination is
// its own next hop, and no neighbour ever resolves.
#pragma once

#include "daemon/data_path.hpp"

namespace ms::daemon {

class NullDataPath final : public DataPath {
public:
    bool mirror_claim(const sw::ClaimKey&) override { return true; }
    void unmirror_claim(const sw::ClaimKey&) override {}
    std::uint32_t claim_capacity() const override { return 65536; }  // the size of the real claim map
    DataPathStatus status() const override { return {}; }
    std::size_t beat() override { return 0; }
    std::optional<wire::IpAddr> next_hop(const wire::IpAddr& dst) override { return dst; }
    netlink::NeighbourState neighbour(const wire::IpAddr&, wire::MacAddr&) override {
        return netlink::NeighbourState::failed;
    }
};

}  // namespace ms::daemon
