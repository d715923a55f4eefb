// Contract: a NIC attachment over AF_XDP (docs/DESIGN.md §4, §10), one socket per queue, each
// with its own UMEM of 2 KiB frames on a memfd (so that a hand-over can pass it on): half
// of them circulate through the fill and rx rings, half through tx and completion.
// Sockets are bound zero-copy when the driver accepts it and in copy mode otherwise, with
// need-wakeup, and are created without libxdp loading a program of its own
// (XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD): each one is put into the XdpProgram's XSK map
// instead. Fill and completion work in batches.
// Each queue also owns a GsoSocket for super-segments, unless it cannot be made (then
// the switch segments in software, and a warning says why).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "nic/xdp_program.hpp"
#include "sw/nic.hpp"

namespace ms::nic {

struct AfXdpConfig {
    std::string ifname;
    std::uint32_t queues = 1;
    std::uint32_t frames_per_queue = 4096;  // UMEM frames; half for rx, half for tx
    std::uint32_t ring_size = 2048;         // each of rx, tx, fill and completion
    bool segmentation_offload = true;       // hand super-segments to the interface's GSO (gso_socket.hpp)
};

// One queue's AF_XDP socket and memory as a hand-over carries them to the next daemon
// (docs/DESIGN.md §6, "Hand-over"). Taken while the switch's workers are stopped, so that
// every frame is in a ring or on one of the lists.
struct XskQueueState {
    int socket_fd = -1;  // the AF_XDP socket, which owns the UMEM and its fill and completion rings
    int umem_fd = -1;    // the memfd under the UMEM
    std::uint32_t frames = 0;
    std::uint32_t ring_size = 0;
    std::vector<std::uint32_t> tx_free;  // frames free for transmission, by index
    std::uint32_t in_flight = 0;         // frames given to tx that the kernel has not completed
};

class AfXdpNic final : public sw::Nic {
public:
    // Opens every queue's socket; a failure's detail names the interface, the queue and
    // the cause.
    [[nodiscard]] static base::Result<std::unique_ptr<AfXdpNic>, NicFailure> open(const AfXdpConfig& config,
                                                                                  XdpProgram& program);
    // Takes up the queues a previous daemon handed over (their descriptors are owned from
    // now on, and closed on failure): maps each UMEM and the four rings of each socket,
    // and puts each socket into the program's XSK map.
    [[nodiscard]] static base::Result<std::unique_ptr<AfXdpNic>, NicFailure> adopt(const AfXdpConfig& config,
                                                                                   std::vector<XskQueueState> queues,
                                                                                   XdpProgram& program);
    // Whether this kernel lets a process map the rings of an AF_XDP socket that another
    // bound (Linux 6.6 and later), as adopt() does; tried on `queue`'s rx ring.
    [[nodiscard]] static bool maps_bound_sockets(const XskQueueState& queue);
    // The queues as a hand-over carries them; the descriptors stay this NIC's. Call with
    // the workers stopped.
    [[nodiscard]] std::vector<XskQueueState> hand_over_state() const;
    ~AfXdpNic() override;
    AfXdpNic(const AfXdpNic&) = delete;
    AfXdpNic& operator=(const AfXdpNic&) = delete;

    [[nodiscard]] std::size_t queue_count() const override { return queues_.size(); }
    [[nodiscard]] sw::NicQueue& queue(std::size_t i) override;
    [[nodiscard]] wire::MacAddr mac() const override { return mac_; }
    [[nodiscard]] bool zero_copy() const { return zero_copy_; }
    [[nodiscard]] bool offloads_segmentation() const;

private:
    explicit AfXdpNic(const wire::MacAddr& mac);

    class XskQueue;
    std::vector<std::unique_ptr<XskQueue>> queues_;
    wire::MacAddr mac_;
    bool zero_copy_ = false;
};

// The hardware address of an interface (SIOCGIFHWADDR).
[[nodiscard]] base::Result<wire::MacAddr, NicFailure> interface_mac(const std::string& ifname);

}  // namespace ms::nic
