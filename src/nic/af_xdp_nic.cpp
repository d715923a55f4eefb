#include "nic/af_xdp_nic.hpp"

#include <linux/if_xdp.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <xdp/xsk.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>

#include "nic/gso_socket.hpp"

namespace ms::nic {
namespace {

constexpr std::uint32_t kFrameSize = ring::kBufferSize;

NicFailure failure(NicError error, const AfXdpConfig& c, std::uint32_t queue, const std::string& what, int err) {
    return {error, c.ifname + " queue " + std::to_string(queue) + ": " + what + ": " + std::strerror(err)};
}

}  // namespace

base::Result<wire::MacAddr, NicFailure> interface_mac(const std::string& ifname) {
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifreq req{};
    std::strncpy(req.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
    const int rc = fd < 0 ? -1 : ::ioctl(fd, SIOCGIFHWADDR, &req);
    const int err = errno;
    if (fd >= 0) ::close(fd);
    if (rc != 0) return NicFailure{NicError::no_mac, ifname + ": cannot read the MAC address: " + std::strerror(err)};
    wire::MacAddr mac;
    std::memcpy(mac.octets.data(), req.ifr_hwaddr.sa_data, 6);
    return mac;
}

class AfXdpNic::XskQueue final : public sw::NicQueue {
public:
    // Maps the UMEM, creates the socket and puts it into the program's XSK map; sets
    // `zero_copy` to the mode the socket was bound in.
    static base::Result<std::unique_ptr<XskQueue>, NicFailure> open(const AfXdpConfig& c, std::uint32_t queue,
                                                                    XdpProgram& program, bool& zero_copy) {
        std::unique_ptr<XskQueue> q(new XskQueue(c.frames_per_queue));  // its destructor undoes a partial set-up
        if (auto made = q->create_umem(c, queue); !made) return made.error();
        if (auto made = q->create_socket(c, queue, zero_copy); !made) return made.error();
        if (int rc = xsk_socket__update_xskmap(q->xsk_, program.xsks_map_fd()); rc != 0) {
            return failure(NicError::xsk_map, c, queue, "cannot insert the socket into the XSK map", -rc);
        }
        // The first half of the frames waits in the fill ring; the second half is for tx.
        const std::uint32_t rx_frames = q->frames_ / 2;
        q->refill_with_range(0, rx_frames);
        for (std::uint32_t f = rx_frames; f < q->frames_; ++f) q->tx_free_.push_back(std::uint64_t{f} * kFrameSize);
        q->tx_len_.resize(q->frames_);
        q->open_gso_socket(c, queue);
        return q;
    }

    ~XskQueue() override { release(); }

    std::uint32_t rx_available() override {
        if (peeked_ == 0) peeked_ = xsk_ring_cons__peek(&rx_, 256, &rx_index_);
        return peeked_;
    }
    wire::Bytes rx_frame(std::uint32_t k) override {
        const xdp_desc* d = xsk_ring_cons__rx_desc(&rx_, rx_index_ + k);
        return {static_cast<const std::uint8_t*>(xsk_umem__get_data(area_, d->addr)), d->len};
    }
    void rx_release(std::uint32_t n) override {
        std::uint32_t at;
        // The fill ring is as large as the rx frame pool, so there is always room.
        const std::uint32_t got = xsk_ring_prod__reserve(&fill_, n, &at);
        for (std::uint32_t k = 0; k < got; ++k) {
            *xsk_ring_prod__fill_addr(&fill_,
                                      at + k) = xsk_umem__extract_addr(xsk_ring_cons__rx_desc(&rx_, rx_index_ + k)->addr);
        }
        xsk_ring_prod__submit(&fill_, got);
        xsk_ring_cons__release(&rx_, n);
        rx_index_ += n;
        peeked_ -= n;
        kick_fill_if_asked();
    }

    std::uint32_t tx_space() override {
        reclaim_completions();
        kick_tx_if_pending();
        return std::min<std::uint32_t>(static_cast<std::uint32_t>(tx_free_.size()), xsk_prod_nb_free(&tx_, 256));
    }
    wire::MutBytes tx_buffer(std::uint32_t k) override {
        return {static_cast<std::uint8_t*>(xsk_umem__get_data(area_, tx_addr(k))), kFrameSize};
    }
    void tx_set_length(std::uint32_t k, std::uint16_t len) override { tx_len_[k] = len; }
    void tx_commit(std::uint32_t n) override {
        if (n == 0) return;
        std::uint32_t at;
        const std::uint32_t got = xsk_ring_prod__reserve(&tx_, n, &at);  // tx_space() checked the room
        for (std::uint32_t k = 0; k < got; ++k) {
            xdp_desc* d = xsk_ring_prod__tx_desc(&tx_, at + k);
            d->addr = tx_addr(k);
            d->len = tx_len_[k];
            d->options = 0;
        }
        xsk_ring_prod__submit(&tx_, got);
        tx_free_.resize(tx_free_.size() - got);
        in_flight_ += got;
        kick_tx_if_pending();
    }

    bool offloads_segmentation() const override { return gso_ != nullptr; }
    sw::SuperTx tx_super(const wire::SuperSegment& s) override {
        // Two ways to the interface: frames already in the AF_XDP ring go first, so that
        // a flow's bytes leave in the order the port sent them.
        push_tx_ring();
        return gso_->send(s);
    }

    int wakeup_fd() const override { return xsk_socket__fd(xsk_); }
    bool arm_wakeup() override {
        kick_fill_if_asked();
        reclaim_completions();
        kick_tx_if_pending();
        // Frames still queued for transmission keep the worker polling until they leave.
        return xsk_cons__peek_available() > 0 || in_flight_ > 0;
    }
    void disarm_wakeup() override {}

private:
    explicit XskQueue(std::uint32_t frames) : frames_(frames), area_size_(std::size_t{frames} * kFrameSize) {}

    base::Result<base::Done, NicFailure> create_umem(const AfXdpConfig& c, std::uint32_t queue) {
        void* area = ::mmap(nullptr, area_size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
        if (area == MAP_FAILED) return failure(NicError::umem, c, queue, "cannot map the UMEM", errno);
        area_ = static_cast<std::uint8_t*>(area);
        xsk_umem_config ucfg{};
        ucfg.fill_size = c.ring_size;
        ucfg.comp_size = c.ring_size;
        ucfg.frame_size = kFrameSize;
        ucfg.frame_headroom = 0;
        if (int rc = xsk_umem__create(&umem_, area_, area_size_, &fill_, &comp_, &ucfg); rc != 0) {
            umem_ = nullptr;
            return failure(NicError::umem, c, queue, "cannot create the UMEM", -rc);
        }
        return base::Done{};
    }

    // The k-th free tx frame, counted from the end of the free list.
    std::uint64_t tx_addr(std::uint32_t k) const { return tx_free_[tx_free_.size() - 1 - k]; }

    std::uint32_t xsk_cons__peek_available() { return peeked_ > 0 ? peeked_ : xsk_cons_nb_avail(&rx_, 1); }

    base::Result<base::Done, NicFailure> create_socket(const AfXdpConfig& c, std::uint32_t queue, bool& zero_copy) {
        xsk_socket_config scfg{};
        scfg.rx_size = c.ring_size;
        scfg.tx_size = c.ring_size;
        scfg.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD;
        scfg.bind_flags = XDP_USE_NEED_WAKEUP | XDP_ZEROCOPY;
        if (xsk_socket__create(&xsk_, c.ifname.c_str(), queue, umem_, &rx_, &tx_, &scfg) == 0) {
            zero_copy = true;
            return base::Done{};
        }
        scfg.bind_flags = XDP_USE_NEED_WAKEUP | XDP_COPY;
        int rc = xsk_socket__create(&xsk_, c.ifname.c_str(), queue, umem_, &rx_, &tx_, &scfg);
        // The kernel releases the socket of a process that just exited asynchronously
        // (within a few milliseconds: an upgrade waits on it); until it has, binding the
        // same queue fails with EBUSY. Wait up to 2 s for it.
        for (int retry = 0; rc == -EBUSY && retry < 2000; ++retry) {
            ::usleep(1000);
            rc = xsk_socket__create(&xsk_, c.ifname.c_str(), queue, umem_, &rx_, &tx_, &scfg);
        }
        if (rc != 0) {
            xsk_ = nullptr;
            return failure(NicError::xsk_socket, c, queue, "cannot create the AF_XDP socket", -rc);
        }
        zero_copy = false;
        return base::Done{};
    }

    void open_gso_socket(const AfXdpConfig& c, std::uint32_t queue) {
        if (!c.segmentation_offload) return;
        auto gso = GsoSocket::open(c.ifname, ::if_nametoindex(c.ifname.c_str()));
        if (!gso) {
            std::cerr << "multistackd: " << c.ifname << " queue " << queue << ": no segmentation offload ("
                      << gso.error().detail << "); super-segments are cut in software\n";
            return;
        }
        gso_ = std::move(gso.value());
    }

    // In copy mode the kernel consumes the tx ring only inside a kick, a bounded batch at
    // a time: kick until it has taken every descriptor (or stops making progress).
    void push_tx_ring() {
        const std::uint32_t size = tx_.size;
        for (int kick = 0; kick < 64 && xsk_prod_nb_free(&tx_, size) < size; ++kick) {
            if (::sendto(xsk_socket__fd(xsk_), nullptr, 0, MSG_DONTWAIT, nullptr, 0) < 0 && errno != EAGAIN &&
                errno != EBUSY && errno != ENOBUFS) {
                break;
            }
        }
    }

    void refill_with_range(std::uint32_t first, std::uint32_t count) {
        std::uint32_t at;
        const std::uint32_t got = xsk_ring_prod__reserve(&fill_, count, &at);
        for (std::uint32_t k = 0; k < got; ++k)
            *xsk_ring_prod__fill_addr(&fill_, at + k) = std::uint64_t{first + k} * kFrameSize;
        xsk_ring_prod__submit(&fill_, got);
    }

    void reclaim_completions() {
        std::uint32_t at;
        const std::uint32_t done = xsk_ring_cons__peek(&comp_, 512, &at);
        for (std::uint32_t k = 0; k < done; ++k) tx_free_.push_back(*xsk_ring_cons__comp_addr(&comp_, at + k));
        xsk_ring_cons__release(&comp_, done);
        in_flight_ -= done;
    }

    // In copy mode the kernel sends only a bounded batch per syscall, so frames can sit
    // in the tx ring after a kick: kick again on every poll while any are in flight.
    void kick_tx_if_pending() {
        if (in_flight_ > 0 && xsk_ring_prod__needs_wakeup(&tx_)) {
            (void)::sendto(xsk_socket__fd(xsk_), nullptr, 0, MSG_DONTWAIT, nullptr, 0);
        }
    }

    void kick_fill_if_asked() {
        if (xsk_ring_prod__needs_wakeup(&fill_))
            (void)::recvfrom(xsk_socket__fd(xsk_), nullptr, 0, MSG_DONTWAIT, nullptr, nullptr);
    }

    void release() {
        if (xsk_) xsk_socket__delete(xsk_);
        if (umem_) xsk_umem__delete(umem_);
        if (area_) ::munmap(area_, area_size_);
        xsk_ = nullptr;
        umem_ = nullptr;
        area_ = nullptr;
    }

    std::uint32_t frames_;
    std::size_t area_size_;
    std::uint8_t* area_ = nullptr;
    xsk_umem* umem_ = nullptr;
    xsk_socket* xsk_ = nullptr;
    xsk_ring_prod fill_{};
    xsk_ring_cons comp_{};
    xsk_ring_cons rx_{};
    xsk_ring_prod tx_{};
    std::uint32_t rx_index_ = 0;
    std::uint32_t peeked_ = 0;
    std::vector<std::uint64_t> tx_free_;
    std::uint32_t in_flight_ = 0;  // submitted to tx, not yet completed
    std::vector<std::uint16_t> tx_len_;
    std::unique_ptr<GsoSocket> gso_;  // null: no segmentation offload
};

base::Result<std::unique_ptr<AfXdpNic>, NicFailure> AfXdpNic::open(const AfXdpConfig& config, XdpProgram& program) {
    const auto mac = interface_mac(config.ifname);
    if (!mac) return mac.error();
    if (config.queues == 0) return NicFailure{NicError::no_queues, "an AF_XDP attachment needs at least one queue"};
    std::unique_ptr<AfXdpNic> nic(new AfXdpNic(*mac));
    for (std::uint32_t q = 0; q < config.queues; ++q) {
        auto queue = XskQueue::open(config, q, program, nic->zero_copy_);
        if (!queue) return queue.error();
        nic->queues_.push_back(std::move(queue.value()));
    }
    return nic;
}

AfXdpNic::AfXdpNic(const wire::MacAddr& mac) : mac_(mac) {}

AfXdpNic::~AfXdpNic() = default;

sw::NicQueue& AfXdpNic::queue(std::size_t i) { return *queues_.at(i); }

bool AfXdpNic::offloads_segmentation() const {
    return std::all_of(queues_.begin(), queues_.end(), [](const auto& q) { return q->offloads_segmentation(); });
}

}  // namespace ms::nic
