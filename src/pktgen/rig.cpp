#include "pktgen/rig.hpp"

#include <netinet/in.h>

#include <chrono>
#include <memory>

#include "ring/app_ring.hpp"
#include "sw/switch.hpp"

namespace ms::pktgen {
namespace {

using Clock = std::chrono::steady_clock;

const wire::MacAddr kNicMac{{0x02, 0, 0, 0, 0, 0x01}};
const wire::MacAddr kPeerMac{{0x02, 0, 0, 0, 0, 0x02}};
const wire::IpAddr kLocalIp = wire::IpAddr::v4(0xc6120001);   // 198.18.0.1
const wire::IpAddr kRemoteIp = wire::IpAddr::v4(0xc6120002);  // 198.18.0.2
constexpr std::uint16_t kFirstPort = 10000;
constexpr std::uint32_t kPortBurst = 64;  // frames offered on one port ring at a time
// Frames injected into a NIC queue at a time: large, so that the sweep over every
// port's rx ring that follows is paid once per many frames.
constexpr std::uint32_t kNicBurst = 1024;

std::uint8_t ip_protocol(Proto p) { return p == Proto::tcp ? IPPROTO_TCP : IPPROTO_UDP; }

FlowTemplate flow_of_port(const RigConfig& c, std::uint32_t i) {
    FlowTemplate f;
    f.proto = c.proto;
    f.frame_size = c.frame_size;
    const auto local_port = static_cast<std::uint16_t>(kFirstPort + i);
    if (c.mode == RigMode::tx) {
        f = {c.proto, kNicMac, kPeerMac, kLocalIp, kRemoteIp, local_port, 9, c.frame_size};
    } else {
        f = {c.proto, kPeerMac, kNicMac, kRemoteIp, kLocalIp, 9, local_port, c.frame_size};
    }
    return f;
}

// One flow's generator state: its builder, next sequence number, and how many
// buffers of its ring already hold a built frame.
struct Flow {
    PacketBuilder builder;
    std::uint32_t next_seq = 0;
    std::uint64_t built = 0;
};

class Rig {
public:
    // The switch, its ports with their claims and flows; nothing runs yet.
    static base::Result<std::unique_ptr<Rig>, PktgenFailure> create(const RigConfig& c) {
        if (c.ports == 0) return PktgenFailure{PktgenError::no_ports, "need at least one port"};
        std::unique_ptr<Rig> rig(new Rig(c));
        auto sw = sw::Switch::create(rig->nic_, switch_config(c));
        if (!sw) return PktgenFailure{PktgenError::rig_setup, sw.error().detail};
        rig->sw_ = std::move(sw.value());
        for (std::uint32_t i = 0; i < c.ports; ++i) {
            if (auto added = rig->add_port(i); !added) return added.error();
        }
        for (std::size_t q = 0; q < rig->nic_.queue_count(); ++q) {
            rig->cell_port_.emplace_back(rig->nic_.to_switch(q).capacity(), kNoFlow);
            rig->injected_.push_back(0);
            rig->next_port_.push_back(static_cast<std::uint32_t>(q));
        }
        rig->sw_->registry().set_local_addresses({kLocalIp});
        return rig;
    }

    RigResult run() {
        sw_->start();
        run_for(c_.warmup_seconds);
        const std::uint64_t sent0 = sent_;
        const std::uint64_t received0 = received_;
        const auto t0 = Clock::now();
        run_for(c_.seconds);
        RigResult r;
        r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
        r.sent = sent_ - sent0;
        r.received = received_ - received0;
        sw_->stop();
        r.sequence_errors = sequence_errors_;
        r.switch_drops = sw_->nic_stats().total_drops() + sw_->handoff_stats().total_drops();
        for (std::uint32_t i = 0; i < c_.ports; ++i)
            r.switch_drops += sw_->port_stats(static_cast<sw::PortId>(i)).total_drops();
        return r;
    }

private:
    explicit Rig(const RigConfig& c) : c_(c), nic_(c.workers, 4096, kNicMac) {}

    // Port i: attached, claiming its flow's address, with the flow's builder and rings.
    base::Result<base::Done, PktgenFailure> add_port(std::uint32_t i) {
        auto builder = PacketBuilder::create(flow_of_port(c_, i));
        if (!builder) return builder.error();
        const auto attached = sw_->attach_port({1, c_.slots_per_ring});
        if (!attached) return PktgenFailure{PktgenError::rig_setup, attached.error().detail};
        const sw::PortId id = *attached;
        const sw::ClaimKey claim{ip_protocol(c_.proto), kLocalIp, static_cast<std::uint16_t>(kFirstPort + i)};
        if (!sw_->registry().add(claim, id)) return PktgenFailure{PktgenError::rig_setup, "rig claim failed"};
        flows_.push_back(Flow{std::move(builder.value())});
        tx_.emplace_back(sw_->port(id).region, 0, &sw_->port(id).rings[0]->to_switch);
        rx_.emplace_back(sw_->port(id).region, 0);
        expected_seq_.push_back(0);
        return base::Done{};
    }

    static sw::SwitchConfig switch_config(const RigConfig& c) {
        sw::SwitchConfig s;
        s.workers = c.workers;
        s.max_ports = std::max<std::uint32_t>(c.ports, 1);
        s.huge_pages = c.huge_pages;
        return s;
    }

    void run_for(double seconds) {
        const auto end = Clock::now() + std::chrono::duration<double>(seconds);
        while (Clock::now() < end) {
            for (int i = 0; i < 64; ++i) step();
        }
    }

    void step() {
        if (c_.mode == RigMode::tx) {
            for (std::uint32_t p = 0; p < c_.ports; ++p) generate_on_port(p);
            for (std::size_t q = 0; q < nic_.queue_count(); ++q) count_from_nic(q);
        } else {
            for (std::size_t q = 0; q < nic_.queue_count(); ++q) inject_into_nic(q);
            for (std::uint32_t p = 0; p < c_.ports; ++p) count_on_port(p);
        }
    }

    // Builds the flow's next frame into `out`, or, when `holds_frame` says the buffer
    // already has one of this flow and frames are not rebuilt, only advances.
    std::uint16_t produce(Flow& f, wire::MutBytes out, bool holds_frame) {
        const std::uint32_t seq = f.next_seq++;
        if (c_.rebuild || !holds_frame) f.builder.build(out, seq);
        return static_cast<std::uint16_t>(f.builder.size());
    }

    void generate_on_port(std::uint32_t p) {
        ring::AppTxRing& ring = tx_[p];
        const std::uint32_t n = std::min(ring.space(), kPortBurst);
        for (std::uint32_t k = 0; k < n; ++k) {
            // Slots are used in order, so after one lap every home buffer holds a frame.
            Flow& f = flows_[p];
            ring.set_length(k, produce(f, ring.buffer(k), f.built >= ring.size()));
            ++f.built;
        }
        ring.publish(n);
        sent_ += n;
    }

    void count_from_nic(std::size_t q) {
        sw::FrameQueue& out = nic_.from_switch(q);
        const std::uint32_t n = out.available();
        out.release(n);
        received_ += n;
    }

    void inject_into_nic(std::size_t q) {
        sw::FrameQueue& in = nic_.to_switch(q);
        const auto Q = static_cast<std::uint32_t>(nic_.queue_count());
        if (q >= c_.ports) return;  // more queues than flows: this one stays idle
        const std::uint32_t n = std::min(in.space(), kNicBurst);
        for (std::uint32_t k = 0; k < n; ++k) {
            // Queue q carries the flows of ports q, q + Q, q + 2Q, ... round-robin: like
            // RSS, it keeps every flow on one queue, so that flows stay in order.
            const std::uint32_t p = next_port_[q];
            next_port_[q] = p + Q >= c_.ports ? static_cast<std::uint32_t>(q) : p + Q;
            const std::size_t cell_index = injected_[q]++ % in.capacity();
            const bool holds_frame = cell_port_[q][cell_index] == p;
            cell_port_[q][cell_index] = p;
            sw::FrameCell& cell = in.producer_cell(k);
            cell.len = produce(flows_[p], {cell.data, sizeof cell.data}, holds_frame);
        }
        in.commit(n);
        nic_.kick(q);
        sent_ += n;
    }

    void count_on_port(std::uint32_t p) {
        ring::AppRxRing& ring = rx_[p];
        const std::uint32_t n = ring.available();
        if (c_.rebuild) check_sequence(p, ring, n);
        ring.release(n);
        received_ += n;
    }

    void check_sequence(std::uint32_t p, const ring::AppRxRing& ring, std::uint32_t n) {
        for (std::uint32_t k = 0; k < n; ++k) {
            const std::uint32_t seq = PacketBuilder::sequence_of(ring.frame(k), c_.proto);
            if (seq < expected_seq_[p]) ++sequence_errors_;
            expected_seq_[p] = seq + 1;
        }
    }

    RigConfig c_;
    sw::MemoryNic nic_;
    std::unique_ptr<sw::Switch> sw_;
    std::vector<Flow> flows_;
    std::vector<ring::AppTxRing> tx_;
    std::vector<ring::AppRxRing> rx_;
    std::vector<std::uint32_t> expected_seq_;
    static constexpr std::uint32_t kNoFlow = 0xffffffff;
    std::vector<std::vector<std::uint32_t>> cell_port_;  // by NIC queue: whose frame each cell holds
    std::vector<std::uint64_t> injected_;  // by NIC queue: frames ever injected
    std::vector<std::uint32_t> next_port_;  // by NIC queue: the port of its next frame
    std::uint64_t sent_ = 0;
    std::uint64_t received_ = 0;
    std::uint64_t sequence_errors_ = 0;
};

}  // namespace

base::Result<RigResult, PktgenFailure> run_rig(const RigConfig& config) {
    auto rig = Rig::create(config);
    if (!rig) return rig.error();
    return (*rig)->run();
}

std::string to_string(RigMode m) { return m == RigMode::tx ? "tx" : "rx"; }

}  // namespace ms::pktgen
