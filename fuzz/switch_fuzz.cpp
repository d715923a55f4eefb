// libFuzzer target: frames of every length through a running switch with two workers
// (docs/DESIGN.md §4, §5): port A (worker 0) sends to port B (worker 1), so every frame crosses
// a worker inbox; the NIC delivers to both; both ports are captured. The input chooses
// each frame's length (0 to a whole buffer and beyond the frame bound), its bytes, the
// slot length the application claims, and detaching and re-attaching a port while frames
// are in flight; and TCP super-segments (slot chains) with a chosen payload length,
// gso_size, first-slot length, header edits and flags, cut by the switch for B or the NIC.
// Nothing may touch memory outside a cell, slot or queue (ASan watches),
// and no frame longer than ring::kMaxFrameSize may ever reach a ring, capture or the NIC.
#include <netinet/in.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "input.hpp"
#include "ring/app_ring.hpp"
#include "sw/nic.hpp"
#include "sw/switch.hpp"
#include "wire/build.hpp"
#include "wire/transport.hpp"

namespace {

using namespace ms;

const wire::MacAddr kNicMac{{2, 0, 0, 0, 0, 1}};
const wire::MacAddr kPeerMac{{2, 0, 0, 0, 0, 2}};
const wire::IpAddr kLocal = wire::IpAddr::v4(0xc6120001);  // 198.18.0.1
const wire::IpAddr kPeer = wire::IpAddr::v4(0xc6120002);   // 198.18.0.2
constexpr std::uint16_t kPortA = 5000;
constexpr std::uint16_t kPortB = 5001;

void check(bool ok, const char* what) {
    if (ok) return;
    std::fprintf(stderr, "switch_fuzz: %s\n", what);
    std::abort();
}

// A valid UDP frame from `src` to `dst`, `len` bytes long if that is at least the headers.
std::vector<std::uint8_t> udp_frame(const wire::MacAddr& src_mac, const wire::MacAddr& dst_mac, wire::IpAddr src,
                                    std::uint16_t sport, wire::IpAddr dst, std::uint16_t dport, std::size_t len) {
    constexpr std::size_t kHeaders = 14 + 20 + 8;
    std::vector<std::uint8_t> frame(std::max(len, kHeaders));
    const std::size_t l4_len = frame.size() - 14 - 20;
    (void)wire::emit_ipv4_frame(frame, {dst_mac, src_mac}, {src, dst}, l4_len, [&](wire::MutBytes seg) {
        wire::UdpRepr{sport, dport, static_cast<std::uint16_t>(l4_len - 8)}.emit(seg);
    });
    frame.resize(len);
    return frame;
}

// A TCP super-segment from A's TCP port to `dport` on `dst`, `payload` bytes long.
std::vector<std::uint8_t> tcp_super(wire::IpAddr dst, std::uint16_t dport, std::size_t payload) {
    const wire::TcpRepr tcp{.src_port = kPortA, .dst_port = dport, .seq = 1, .ack = 1, .flags = wire::tcpflag::ack};
    std::vector<std::uint8_t> f(14 + 20 + tcp.header_len());
    (void)wire::emit_ipv4_tcp_super_header(f, {kPeerMac, kNicMac},
                                           {.src = kLocal, .dst = dst, .protocol = wire::ipproto::tcp}, tcp.header_len(),
                                           tcp.header_len() + payload, [&](wire::MutBytes l4) { tcp.emit(l4); });
    f.resize(f.size() + payload, 0x5a);
    return f;
}

class Rig {
public:
    Rig()
        : nic_(1, 1024, kNicMac),
          sw_(sw::Switch::create(nic_, sw::SwitchConfig{.workers = 2, .max_ports = 4, .spin_rounds = 0}).value()) {
        sw_->registry().set_local_addresses({kLocal});
        a_ = attach(kPortA, capture_a_);
        b_ = attach(kPortB, capture_b_);
        sw_->start();
    }

    // Sends `frame` from port A with the slot length `slot_len`.
    void send_from_a(const std::vector<std::uint8_t>& frame, std::uint16_t slot_len) {
        sw::Port& p = sw_->port(a_);
        ring::AppTxRing tx(p.region, 0, &p.rings[0]->to_switch);
        if (tx.space() == 0) return;
        const wire::MutBytes buf = tx.buffer(0);
        std::memcpy(buf.data(), frame.data(), std::min(frame.size(), buf.size()));
        tx.set_length(0, slot_len);
        tx.publish(1);
    }
    // Sends `super` from port A as a slot chain: `head` bytes in the first slot, then
    // whole buffers; `flags_xor` flips flag bits of the first slot.
    void send_super_from_a(const std::vector<std::uint8_t>& super, std::uint16_t gso, std::size_t head,
                           std::uint16_t flags_xor) {
        sw::Port& p = sw_->port(a_);
        ring::AppTxRing tx(p.region, 0, &p.rings[0]->to_switch);
        std::uint32_t k = 0;
        for (std::size_t at = 0; at < super.size(); ++k) {
            if (k >= tx.space()) return;  // no room for the whole chain: send nothing
            const std::size_t n = std::min(super.size() - at,
                                           k == 0 ? std::max<std::size_t>(head, 14) : std::size_t{ring::kBufferSize});
            std::memcpy(tx.buffer(k).data(), super.data() + at, n);
            at += n;
            auto flags = static_cast<std::uint16_t>(at < super.size() ? ring::kSlotMore : 0);
            if (k == 0) flags = static_cast<std::uint16_t>((flags | ring::kSlotSegment) ^ flags_xor);
            tx.set_slot(k, static_cast<std::uint16_t>(n), flags, k == 0 ? gso : 0);
        }
        tx.publish(k);
    }
    void inject(const std::vector<std::uint8_t>& frame) {
        sw::FrameQueue& q = nic_.to_switch(0);
        if (q.space() == 0) return;
        sw::FrameCell& cell = q.producer_cell(0);
        const bool fits = cell.store(frame);
        check(fits == (frame.size() <= ring::kMaxFrameSize), "a cell took a frame beyond the bound, or refused one within");
        if (!fits) return;
        q.commit(1);
        nic_.kick(0);
    }
    // Detaches port B and attaches a new one on the same id: frames in flight for the old
    // one must not reach it.
    void replace_b() {
        sw_->stop_capture(*capture_b_);
        (void)sw_->detach_port(b_);
        b_ = attach(kPortB, capture_b_);
    }
    // A slot length beyond the bound fails port A for good: a new one takes its place.
    void revive_a() {
        if (!sw_->port(a_).is_failed()) return;
        (void)sw_->detach_port(a_);
        a_ = attach(kPortA, capture_a_);
    }
    // Waits briefly for the workers, then takes everything from every exit.
    void drain() {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(20);
        while (nic_.to_switch(0).available() > 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
        std::this_thread::sleep_for(std::chrono::microseconds(200));
        for (sw::PortId id : {a_, b_}) drain_port(id);
        drain_nic();
        const auto bounded = [](wire::Bytes f, sw::TapDirection) { check(f.size() <= ring::kMaxFrameSize, "capture"); };
        (void)sw_->drain_capture(*capture_a_, bounded);
        (void)sw_->drain_capture(*capture_b_, bounded);
    }

private:
    sw::PortId attach(std::uint16_t udp_port, std::optional<sw::Switch::CaptureTicket>& capture) {
        const sw::PortId id = sw_->attach_port({1, 64}).value();
        (void)sw_->registry().add({IPPROTO_UDP, kLocal, udp_port}, id);
        (void)sw_->registry().add({IPPROTO_TCP, kLocal, udp_port}, id);
        capture = sw_->start_capture(id, 64);
        return id;
    }
    void drain_port(sw::PortId id) {
        ring::AppRxRing rx(sw_->port(id).region, 0);
        const std::uint32_t n = rx.available();
        for (std::uint32_t k = 0; k < n; ++k) check(rx.frame(k).size() <= ring::kMaxFrameSize, "rx ring");
        rx.release(n);
    }
    void drain_nic() {
        sw::FrameQueue& q = nic_.from_switch(0);
        const std::uint32_t n = q.available();
        for (std::uint32_t k = 0; k < n; ++k) check(q.consumer_cell(k).frame().has_value(), "NIC tx");
        q.release(n);
    }

    sw::MemoryNic nic_;
    std::unique_ptr<sw::Switch> sw_;
    sw::PortId a_ = sw::kNoPort;
    sw::PortId b_ = sw::kNoPort;
    std::optional<sw::Switch::CaptureTicket> capture_a_;
    std::optional<sw::Switch::CaptureTicket> capture_b_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static Rig rig;
    fuzz::Input in{data, size};
    while (in.n > 0) {
        const std::uint8_t op = in.byte();
        if (op & 0x40) {  // a super-segment, to B or out of the NIC
            std::vector<std::uint8_t> super = tcp_super(op & 2 ? kPeer : kLocal, kPortB, in.u16());
            for (std::uint8_t edits = in.byte() % 4; edits > 0; --edits)
                super[in.u16() % std::min<std::size_t>(80, super.size())] = in.byte();
            const std::uint16_t gso = in.u16();
            const std::size_t head = in.u16() % (ring::kMaxFrameSize + 1);
            rig.revive_a();
            rig.send_super_from_a(super, gso, head, op & 0x80 ? in.byte() : 0);
            if (op & 0x20) rig.drain();
            continue;
        }
        const std::size_t len = in.u16() % (ring::kBufferSize + 1);
        std::vector<std::uint8_t> frame = op & 1
                                              ? udp_frame(kPeerMac, kNicMac, kPeer, 9, kLocal, op & 2 ? kPortA : kPortB, len)
                                              : udp_frame(kNicMac, kPeerMac, kLocal, kPortA, kLocal, kPortB, len);
        for (std::uint8_t edits = in.byte() % 4; edits > 0 && !frame.empty(); --edits) {
            frame[in.u16() % frame.size()] = in.byte();
        }
        if ((op & 0x0c) == 0x0c) rig.replace_b();
        rig.revive_a();
        if (op & 1) rig.inject(frame);
        else rig.send_from_a(frame, op & 0x10 ? in.u16() : static_cast<std::uint16_t>(frame.size()));
        if (op & 0x20) rig.drain();
    }
    rig.drain();
    return 0;
}
