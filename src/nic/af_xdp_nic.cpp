#include "nic/af_xdp_nic.hpp"

#include <bpf/bpf.h>
#include <linux/if_xdp.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xdp/xsk.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <optional>
#include <utility>

#include "nic/gso_socket.hpp"

namespace ms::nic {
namespace {

constexpr std::uint32_t kFrameSize = ring::kBufferSize;

NicFailure failure(NicError error, const AfXdpConfig& c, std::uint32_t queue, const std::string& what, int err) {
    return {error, c.ifname + " queue " + std::to_string(queue) + ": " + what + ": " + std::strerror(err)};
}

// One of an adopted socket's ring mappings.
struct RingMapping {
    void* at = MAP_FAILED;
    std::size_t length = 0;
};

// libxdp sets up its ring views only for the sockets it creates, and has no call to take
// up a socket that another process set up; this maps an adopted socket's ring the way
// libxdp maps a new one (xsk_umem__create, xsk_socket__create), at the offsets the
// kernel reports, with the cached indices taken from the ring as it stands.
template <class Ring>
bool map_ring(int fd, const xdp_ring_offset& off, std::uint32_t size, std::size_t entry, off_t page_offset, bool producer,
              Ring& ring, RingMapping& m) {
    m.length = off.desc + std::size_t{size} * entry;
    m.at = ::mmap(nullptr, m.length, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, page_offset);
    if (m.at == MAP_FAILED) return false;
    auto* base = static_cast<std::uint8_t*>(m.at);
    ring.mask = size - 1;
    ring.size = size;
    ring.producer = reinterpret_cast<__u32*>(base + off.producer);
    ring.consumer = reinterpret_cast<__u32*>(base + off.consumer);
    ring.flags = reinterpret_cast<__u32*>(base + off.flags);
    ring.ring = base + off.desc;
    ring.cached_prod = __atomic_load_n(ring.producer, __ATOMIC_ACQUIRE);
    ring.cached_cons = __atomic_load_n(ring.consumer, __ATOMIC_ACQUIRE) + (producer ? size : 0);
    return true;
}

bool is_power_of_two(std::uint32_t n) { return n != 0 && (n & (n - 1)) == 0; }

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

    // Takes up a queue a previous daemon handed over; its descriptors are the queue's from
    // now on (closed by its destructor on every path).
    static base::Result<std::unique_ptr<XskQueue>, NicFailure> adopt(const AfXdpConfig& c, std::uint32_t queue,
                                                                     XskQueueState st, XdpProgram& program, bool& zero_copy) {
        std::unique_ptr<XskQueue> q(new XskQueue(st.frames));
        q->fd_ = std::exchange(st.socket_fd, -1);
        q->umem_fd_ = std::exchange(st.umem_fd, -1);
        if (auto checked = q->check_handed_over(c, queue, st); !checked) return checked.error();
        if (auto mapped = q->map_handed_over(c, queue, st.ring_size, zero_copy); !mapped) return mapped.error();
        const int fd = q->fd_;
        if (::bpf_map_update_elem(program.xsks_map_fd(), &queue, &fd, 0) != 0) {
            return failure(NicError::xsk_map, c, queue, "cannot insert the socket into the XSK map", errno);
        }
        for (const std::uint32_t f : st.tx_free) q->tx_free_.push_back(std::uint64_t{f} * kFrameSize);
        q->in_flight_ = st.in_flight;
        q->tx_len_.resize(q->frames_);
        q->open_gso_socket(c, queue);
        return q;
    }

    XskQueueState state() const {
        XskQueueState st{fd_, umem_fd_, frames_, rx_.size, {}, in_flight_};
        for (const std::uint64_t addr : tx_free_) st.tx_free.push_back(static_cast<std::uint32_t>(addr / kFrameSize));
        return st;
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

    int wakeup_fd() const override { return fd_; }
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
        umem_fd_ = ::memfd_create("multistack-umem", MFD_CLOEXEC);
        if (umem_fd_ < 0 || ::ftruncate(umem_fd_, static_cast<off_t>(area_size_)) != 0) {
            return failure(NicError::umem, c, queue, "cannot make the UMEM's memfd", errno);
        }
        if (auto mapped = map_umem(c, queue); !mapped) return mapped.error();
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

    base::Result<base::Done, NicFailure> map_umem(const AfXdpConfig& c, std::uint32_t queue) {
        void* area = ::mmap(nullptr, area_size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, umem_fd_, 0);
        if (area == MAP_FAILED) return failure(NicError::umem, c, queue, "cannot map the UMEM", errno);
        area_ = static_cast<std::uint8_t*>(area);
        return base::Done{};
    }

    // What a hand-over says of a queue, against what the descriptors are.
    base::Result<base::Done, NicFailure> check_handed_over(const AfXdpConfig& c, std::uint32_t queue,
                                                           const XskQueueState& st) const {
        int domain = 0;
        socklen_t len = sizeof domain;
        if (fd_ < 0 || ::getsockopt(fd_, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0 || domain != AF_XDP) {
            return failure(NicError::xsk_socket, c, queue, "the handed-over socket is not an AF_XDP socket", EINVAL);
        }
        struct stat umem {};
        if (umem_fd_ < 0 || ::fstat(umem_fd_, &umem) != 0 || static_cast<std::size_t>(umem.st_size) != area_size_) {
            return failure(NicError::umem, c, queue, "the handed-over UMEM is not of its stated size", EINVAL);
        }
        const bool frames_ok = frames_ >= 2 && frames_ <= (1u << 20) && st.tx_free.size() + st.in_flight <= frames_ &&
                               std::all_of(st.tx_free.begin(), st.tx_free.end(), [&](auto f) { return f < frames_; });
        if (!frames_ok || !is_power_of_two(st.ring_size) || st.ring_size > (1u << 16)) {
            return failure(NicError::umem, c, queue, "the handed-over queue's frames or rings are out of range", EINVAL);
        }
        return base::Done{};
    }

    base::Result<base::Done, NicFailure> map_handed_over(const AfXdpConfig& c, std::uint32_t queue, std::uint32_t ring_size,
                                                         bool& zero_copy) {
        if (auto mapped = map_umem(c, queue); !mapped) return mapped.error();
        xdp_mmap_offsets off{};
        socklen_t len = sizeof off;
        if (::getsockopt(fd_, SOL_XDP, XDP_MMAP_OFFSETS, &off, &len) != 0) {
            return failure(NicError::xsk_socket, c, queue, "cannot read the ring offsets", errno);
        }
        const bool mapped =
            map_ring(fd_, off.rx, ring_size, sizeof(xdp_desc), XDP_PGOFF_RX_RING, false, rx_, rings_[0]) &&
            map_ring(fd_, off.tx, ring_size, sizeof(xdp_desc), XDP_PGOFF_TX_RING, true, tx_, rings_[1]) &&
            map_ring(fd_, off.fr, ring_size, sizeof(std::uint64_t), XDP_UMEM_PGOFF_FILL_RING, true, fill_, rings_[2]) &&
            map_ring(fd_, off.cr, ring_size, sizeof(std::uint64_t), XDP_UMEM_PGOFF_COMPLETION_RING, false, comp_, rings_[3]);
        if (!mapped) return failure(NicError::xsk_socket, c, queue, "cannot map the handed-over socket's rings", errno);
        xdp_options options{};
        len = sizeof options;
        zero_copy = ::getsockopt(fd_, SOL_XDP, XDP_OPTIONS, &options, &len) == 0 &&
                    (options.flags & XDP_OPTIONS_ZEROCOPY) != 0;
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
            fd_ = xsk_socket__fd(xsk_);
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
        fd_ = xsk_socket__fd(xsk_);
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
            if (::sendto(fd_, nullptr, 0, MSG_DONTWAIT, nullptr, 0) < 0 && errno != EAGAIN && errno != EBUSY &&
                errno != ENOBUFS) {
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
            (void)::sendto(fd_, nullptr, 0, MSG_DONTWAIT, nullptr, 0);
        }
    }

    void kick_fill_if_asked() {
        if (xsk_ring_prod__needs_wakeup(&fill_)) (void)::recvfrom(fd_, nullptr, 0, MSG_DONTWAIT, nullptr, nullptr);
    }

    void release() {
        if (xsk_) xsk_socket__delete(xsk_);  // closes fd_
        if (umem_) xsk_umem__delete(umem_);
        for (const RingMapping& m : rings_) {
            if (m.at != MAP_FAILED) ::munmap(m.at, m.length);
        }
        if (!xsk_ && fd_ >= 0) ::close(fd_);  // an adopted socket
        if (area_) ::munmap(area_, area_size_);
        if (umem_fd_ >= 0) ::close(umem_fd_);
        xsk_ = nullptr;
        umem_ = nullptr;
        area_ = nullptr;
        fd_ = umem_fd_ = -1;
    }

    std::uint32_t frames_;
    std::size_t area_size_;
    std::uint8_t* area_ = nullptr;
    int umem_fd_ = -1;
    xsk_umem* umem_ = nullptr;
    xsk_socket* xsk_ = nullptr;  // null for an adopted socket, whose rings_ this maps itself
    int fd_ = -1;
    std::array<RingMapping, 4> rings_{};  // an adopted socket's rx, tx, fill and completion rings
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

base::Result<std::unique_ptr<AfXdpNic>, NicFailure> AfXdpNic::adopt(const AfXdpConfig& config,
                                                                    std::vector<XskQueueState> queues, XdpProgram& program) {
    const auto mac = interface_mac(config.ifname);
    std::unique_ptr<AfXdpNic> nic(mac ? new AfXdpNic(*mac) : nullptr);
    std::optional<NicFailure> failed = mac ? std::nullopt : std::optional<NicFailure>(mac.error());
    if (!failed && queues.size() != config.queues) {
        failed = NicFailure{NicError::no_queues, config.ifname + ": " + std::to_string(queues.size()) +
                                                     " queue(s) handed over, " + std::to_string(config.queues) +
                                                     " asked for (--queues)"};
    }
    for (std::uint32_t q = 0; q < queues.size(); ++q) {
        if (failed) {  // the remaining queues' descriptors are owned all the same
            ::close(queues[q].socket_fd);
            ::close(queues[q].umem_fd);
            continue;
        }
        auto queue = XskQueue::adopt(config, q, std::move(queues[q]), program, nic->zero_copy_);
        if (!queue) failed = queue.error();
        if (queue) nic->queues_.push_back(std::move(queue.value()));
    }
    if (failed) return *failed;
    return nic;
}

bool AfXdpNic::maps_bound_sockets(const XskQueueState& queue) {
    xdp_mmap_offsets off{};
    socklen_t len = sizeof off;
    if (::getsockopt(queue.socket_fd, SOL_XDP, XDP_MMAP_OFFSETS, &off, &len) != 0) return true;  // adopt() says why
    const std::size_t length = off.rx.desc + std::size_t{queue.ring_size} * sizeof(xdp_desc);
    void* at = ::mmap(nullptr, length, PROT_READ, MAP_SHARED, queue.socket_fd, XDP_PGOFF_RX_RING);
    if (at == MAP_FAILED) return errno != EBUSY;  // EBUSY: only an unbound socket's rings map here
    ::munmap(at, length);
    return true;
}

std::vector<XskQueueState> AfXdpNic::hand_over_state() const {
    std::vector<XskQueueState> out;
    for (const auto& q : queues_) out.push_back(q->state());
    return out;
}

AfXdpNic::AfXdpNic(const wire::MacAddr& mac) : mac_(mac) {}

AfXdpNic::~AfXdpNic() = default;

sw::NicQueue& AfXdpNic::queue(std::size_t i) { return *queues_.at(i); }

bool AfXdpNic::offloads_segmentation() const {
    return std::all_of(queues_.begin(), queues_.end(), [](const auto& q) { return q->offloads_segmentation(); });
}

}  // namespace ms::nic
