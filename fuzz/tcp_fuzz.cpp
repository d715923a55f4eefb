// libFuzzer target: a hostile TCP peer against UTCP, under ASan and UBSan. The stack
// has a listener on port 80 and one established connection (from peer port 40000);
// the input is a script of steps:
//   segment  to the connection, to the listener (a fresh peer port), or raw bytes as a
//            whole frame; flags, sequence and acknowledgment numbers (near the real
//            ones or anywhere), window, options (MSS, window scale, timestamps, SACK
//            blocks; the connection negotiated SACK and timestamps; on a SYN, a Fast Open
//            cookie request, the cookie the listener gave last, or any bytes) and payload
//            all come from the input;
//   time     the clock moves on, firing timers;
//   app      the application sends, reads, shuts down, closes or aborts.
// Whatever happens, memory stays valid (the sanitizers watch), and every frame UTCP
// sends is well formed: it parses, its checksums hold, and it carries DF.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "utcp/stack.hpp"
#include "wire/build.hpp"
#include "wire/frame.hpp"
#include "wire/ip.hpp"

namespace {

using namespace ms;
using namespace ms::utcp;

const wire::MacAddr kLocalMac{{0x02, 0, 0, 0, 0, 1}};
const wire::MacAddr kPeerMac{{0x02, 0, 0, 0, 0, 2}};
const wire::IpAddr kLocalIp = wire::IpAddr::v4(0xc6120001);
const wire::IpAddr kPeerIp = wire::IpAddr::v4(0xc6120002);
constexpr std::uint32_t kOurIsn = 5000;
constexpr std::uint32_t kPeerIsn = 1000;

void check(bool ok) {
    if (!ok) std::abort();
}

class Input {
public:
    Input(const std::uint8_t* p, std::size_t n) : p_(p), n_(n) {}
    [[nodiscard]] bool empty() const { return n_ == 0; }
    template <class T>
    T take() {
        T v{};
        const std::size_t k = std::min(sizeof v, n_);
        std::memcpy(&v, p_, k);
        p_ += k;
        n_ -= k;
        return v;
    }
    wire::Bytes bytes(std::size_t want) {
        const std::size_t k = std::min(want, n_);
        wire::Bytes b(p_, k);
        p_ += k;
        n_ -= k;
        return b;
    }

private:
    const std::uint8_t* p_;
    std::size_t n_;
};

std::vector<std::uint8_t> build_frame(std::uint16_t src_port, const wire::TcpRepr& tcp, wire::Bytes payload) {
    wire::TcpRepr t = tcp;
    t.src_port = src_port;
    t.dst_port = 80;
    const std::size_t hlen = t.header_len();
    std::vector<std::uint8_t> f(14 + 20 + hlen + payload.size());
    wire::emit_ipv4_frame(f, {.dst = kLocalMac, .src = kPeerMac},
                          {.src = kPeerIp, .dst = kLocalIp, .protocol = wire::ipproto::tcp}, hlen + payload.size(),
                          [&](wire::MutBytes l4) {
                              t.emit(l4);
                              wire::copy_bytes(l4.data() + hlen, payload);
                          });
    return f;
}

// Every frame UTCP sends must be valid. `cookie` takes the last Fast Open cookie given.
void check_output(MemoryLink& link, wire::FastOpenCookie* cookie = nullptr) {
    for (const auto& frame : link.take()) {
        wire::ParsedFrame p;
        check(wire::parse_frame(frame, p).ok());
        auto ip = wire::Ipv4View::parse(wire::Bytes(frame).subspan(p.l3_offset));
        check(ip.ok() && ip->checksum_ok() && ip->dont_fragment());
        auto tcp = wire::TcpView::parse(ip->payload());
        check(tcp.ok());
        if (cookie && tcp->options().fast_open && tcp->options().fast_open->size > 0) *cookie = *tcp->options().fast_open;
        check(wire::transport_checksum_ok(ip->src(), ip->dst(), wire::ipproto::tcp, ip->payload()));
    }
}

struct Harness {
    Harness() : stack(config(), link, now, fixed_secrets()) {
        ConnOptions o;
        o.send_buffer = o.recv_buffer = 16384;  // small, so that windows fill and wrap quickly
        // A SYN queue of two: SYNs beyond it are answered with cookies, and ACKs to the
        // listener are checked against them.
        // Fast Open on, with a queue of one, so that both its paths run.
        o.fast_open = true;
        Listener* l = stack.listen(80, nullptr, &o);
        l->syn_queue = 2;
        l->fast_open_queue = 1;
        // The peer offers SACK and timestamps, so that RACK-TLP, PAWS and RTTM run.
        wire::TcpRepr syn{.seq = kPeerIsn, .flags = wire::tcpflag::syn, .window = 65535};
        syn.options.sack_permitted = true;
        syn.options.timestamps = wire::Timestamps{1, 0};
        inject(40000, syn, {});
        inject(40000, wire::TcpRepr{.seq = kPeerIsn + 1, .ack = kOurIsn + 1, .flags = wire::tcpflag::ack, .window = 65535},
               {});
    }
    // Fixed keys, so that a crash reproduces from its input alone.
    static StackSecrets fixed_secrets() {
        StackSecrets s;
        s.syn_cookies.fill(1);
        s.fast_open.fill(2);
        s.flow_label = 3;
        return s;
    }
    static StackConfig config() {
        StackConfig c;
        c.mac = kLocalMac;
        c.address = kLocalIp;
        c.time_wait_ms = 2000;
        c.resolve = [](const wire::IpAddr&) { return std::optional<wire::MacAddr>(kPeerMac); };
        c.isn = [](const FourTuple&, std::uint64_t) { return Seq32(kOurIsn); };
        return c;
    }
    void inject(std::uint16_t port, const wire::TcpRepr& tcp, wire::Bytes payload) {
        const auto f = build_frame(port, tcp, payload);
        stack.input(f, now);
        stack.flush(now);
        check_output(link, &cookie);
    }
    Connection* conn() { return stack.find({kLocalIp, kPeerIp, 80, 40000}); }

    MemoryLink link;
    wire::FastOpenCookie cookie;  // the listener's last
    std::uint64_t now = 1'000'000;
    Stack stack;
};

void segment_step(Harness& h, Input& in) {
    const auto selector = in.take<std::uint8_t>();
    wire::TcpRepr tcp;
    tcp.flags = in.take<std::uint8_t>();
    tcp.window = in.take<std::uint16_t>();
    // Near the real sequence space most of the time, anywhere otherwise.
    const auto seq_delta = in.take<std::int16_t>();
    const auto ack_delta = in.take<std::int16_t>();
    const bool anywhere = (selector & 0x80) != 0;
    tcp.seq = anywhere ? in.take<std::uint32_t>() : kPeerIsn + 1 + static_cast<std::uint32_t>(seq_delta * 64);
    tcp.ack = anywhere ? in.take<std::uint32_t>() : kOurIsn + 1 + static_cast<std::uint32_t>(ack_delta * 64);
    if (selector & 0x10) tcp.options.mss = in.take<std::uint16_t>();
    if (selector & 0x20) tcp.options.window_scale = in.take<std::uint8_t>();
    if (selector & 0x40) {  // timestamps and SACK blocks, near our sequence space
        tcp.options.timestamps = wire::Timestamps{in.take<std::uint32_t>(), in.take<std::uint32_t>()};
        tcp.options.sack_count = static_cast<std::uint8_t>(in.take<std::uint8_t>() % 4);
        for (std::uint8_t k = 0; k < tcp.options.sack_count; ++k) {
            const auto left = kOurIsn + 1 + static_cast<std::uint32_t>(in.take<std::int16_t>() * 64);
            tcp.options.sack_blocks[k] = {left, left + in.take<std::uint16_t>()};
        }
    }
    if (tcp.flags & wire::tcpflag::syn) {
        switch (in.take<std::uint8_t>() % 4) {
            case 1: tcp.options.fast_open = wire::FastOpenCookie{}; break;
            case 2: tcp.options.fast_open = h.cookie; break;
            case 3: {
                wire::FastOpenCookie any;
                const wire::Bytes b = in.bytes(in.take<std::uint8_t>() % 17);
                std::memcpy(any.bytes.data(), b.data(), b.size());
                any.size = static_cast<std::uint8_t>(b.size() < 4 ? 0 : b.size());  // RFC 7413 §4.1.1: 4 to 16
                tcp.options.fast_open = any;
                break;
            }
            default: break;
        }
    }
    const wire::Bytes payload = in.bytes(in.take<std::uint16_t>() % 1400);
    const std::uint16_t port = (selector & 1) ? static_cast<std::uint16_t>(41000 + (selector >> 1 & 7)) : 40000;
    h.inject(port, tcp, payload);
}

void raw_step(Harness& h, Input& in) {
    const wire::Bytes frame = in.bytes(in.take<std::uint16_t>() % 1600);
    h.stack.input(frame, h.now);
    h.stack.flush(h.now);
    check_output(h.link);
}

void app_step(Harness& h, Input& in) {
    const auto what = in.take<std::uint8_t>();
    Connection* c = h.conn();
    if (!c) return;
    std::uint8_t buf[4096] = {};
    switch (what % 6) {
        case 0: (void)c->send({buf, static_cast<std::size_t>(in.take<std::uint16_t>() % sizeof buf)}); break;
        case 1: (void)c->recv(buf); break;
        case 2: c->shutdown_write(); break;
        case 3: c->close(); break;
        case 4: c->abort(); break;
        default: {
            ConnOptions o = c->options();
            o.nodelay = !o.nodelay;
            o.keepalive = !o.keepalive;
            o.keepalive_idle_ms = 100;
            c->set_options(o);
        }
    }
    h.stack.flush(h.now);
    check_output(h.link);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    Harness h;
    Input in(data, size);
    for (int steps = 0; !in.empty() && steps < 256; ++steps) {
        switch (in.take<std::uint8_t>() % 4) {
            case 0: segment_step(h, in); break;
            case 1: raw_step(h, in); break;
            case 2: app_step(h, in); break;
            default:
                h.now += in.take<std::uint8_t>() * 16u;
                h.stack.advance(h.now);
                h.stack.flush(h.now);
                check_output(h.link);
        }
        check(h.stack.connection_count() <= 16);
    }
    return 0;
}
