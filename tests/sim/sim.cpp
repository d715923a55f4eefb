#include "sim.hpp"

#include "utcp/connection_image.hpp"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <memory>
#include <vector>

namespace ms::utcp::sim {
namespace {

const wire::MacAddr kMacA{{0x02, 0, 0, 0, 0, 0xa}};
const wire::MacAddr kMacB{{0x02, 0, 0, 0, 0, 0xb}};
const wire::IpAddr kIpA = wire::IpAddr::v4(0xc612000a);  // 198.18.0.10
const wire::IpAddr kIpB = wire::IpAddr::v4(0xc612000b);  // 198.18.0.11
// 2001:2::a and 2001:2::b: each stack has both families (dual stack).
const wire::IpAddr kIp6A = wire::IpAddr::load_v6(
    std::array<std::uint8_t, 16>{0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xa}.data());
const wire::IpAddr kIp6B = wire::IpAddr::load_v6(
    std::array<std::uint8_t, 16>{0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xb}.data());

StackConfig stack_config(const wire::MacAddr& mac, const wire::IpAddr& ip, const wire::IpAddr& ip6, const wire::MacAddr& peer,
                         const ConnOptions& options) {
    StackConfig c;
    c.mac = mac;
    c.address = ip;
    c.address6 = ip6;
    c.defaults = options;
    c.resolve = [peer](const wire::IpAddr&) { return std::optional<wire::MacAddr>(peer); };
    return c;
}

sw::FaultInjector::Clock::time_point at(std::uint64_t us) {
    return sw::FaultInjector::Clock::time_point(std::chrono::microseconds(us));
}

// Byte `offset` of the transfer's stream.
std::uint8_t stream_byte(std::uint64_t offset) {
    const std::uint64_t x = (offset >> 2) * 0x9e3779b97f4a7c15ull;
    return static_cast<std::uint8_t>((x >> 29) >> (8 * (offset & 3)));
}

}  // namespace

Simulation::Simulation(const LinkConfig& a_to_b, const LinkConfig& b_to_a, const ConnOptions& options, bool super_segments,
                       std::uint64_t step_us)
    : step_us_(step_us),
      a_config_(stack_config(kMacA, kIpA, kIp6A, kMacB, options)),
      b_config_(stack_config(kMacB, kIpB, kIp6B, kMacA, options)),
      a_link_(1u << 20, super_segments),
      b_link_(1u << 20, super_segments) {
    a_ = std::make_unique<Stack>(a_config_, a_link_, now_us_, draw_secrets().value());
    b_ = std::make_unique<Stack>(b_config_, b_link_, now_us_, draw_secrets().value());
    ab_.injector = std::make_unique<sw::FaultInjector>(a_to_b.faults, 1);
    ab_.drop = a_to_b.drop;
    ab_.rate = a_to_b.rate;
    ab_.buffer_bytes = a_to_b.buffer_bytes;
    ba_.injector = std::make_unique<sw::FaultInjector>(b_to_a.faults, 2);
    ba_.drop = b_to_a.drop;
    ba_.rate = b_to_a.rate;
    ba_.buffer_bytes = b_to_a.buffer_bytes;
}

Simulation::~Simulation() = default;

bool Simulation::enqueue(Direction& dir, const std::vector<std::uint8_t>& frame) {
    if (dir.queued_bytes + frame.size() > dir.buffer_bytes) return false;
    dir.next_free_us = std::max(dir.next_free_us, now_us_) + frame.size() * 1'000'000 / dir.rate;
    dir.queue.emplace_back(dir.next_free_us, frame);
    dir.queued_bytes += frame.size();
    return true;
}

void Simulation::cross(MemoryLink& from, Direction& dir, Stack& to) {
    for (const auto& frame : from.take()) {
        if (dir.drop.contains(++dir.count)) continue;
        if (dir.rate == 0) {
            (void)dir.injector->offer(frame, at(now_us_));
        } else if (!enqueue(dir, frame)) {
            ++dir.bottleneck_drops;
        }
    }
    while (!dir.queue.empty() && dir.queue.front().first <= now_us_) {
        dir.queued_bytes -= dir.queue.front().second.size();
        (void)dir.injector->offer(dir.queue.front().second, at(now_us_));
        dir.queue.pop_front();
    }
    if (dir.rate != 0) dir.queue_delays.push_back(dir.next_free_us > now_us_ ? dir.next_free_us - now_us_ : 0);
    while (auto f = dir.injector->take_ready(at(now_us_))) to.input(*f, now_us_);
}

void Simulation::step() {
    now_us_ += step_us_;
    cross(a_link_, ab_, *b_);
    cross(b_link_, ba_, *a_);
    for (Stack* s : {a_.get(), b_.get()}) {
        s->advance(now_us_);
        s->flush(now_us_);
    }
}

std::size_t Simulation::move_connections(Side side) {
    auto& from = side == Side::a ? a_ : b_;
    auto to = std::make_unique<Stack>(side == Side::a ? a_config_ : b_config_, side == Side::a ? a_link_ : b_link_, now_us_,
                                      draw_secrets().value());
    std::vector<std::pair<FourTuple, Handler*>> live;
    from->for_each_connection([&](const Connection& c) { live.emplace_back(c.tuple(), c.handler); });
    std::size_t moved = 0;
    for (const auto& [tuple, handler] : live) {
        auto image = from->export_connection(tuple);
        if (!image) continue;
        auto decoded = decode(encode(*image));
        if (decoded && to->import_connection(*decoded, handler, now_us_)) ++moved;
    }
    retired_.push_back(std::exchange(from, std::move(to)));
    return moved;
}

namespace {

class Sender final : public Handler {
public:
    Sender(std::uint64_t bytes, bool by_reference) : bytes_(bytes), by_reference_(by_reference) {
        crypto_hash_sha256_init(&hash);
    }
    void on_connected(Connection& c) override { pump(c); }
    void on_writable(Connection& c) override { pump(c); }
    void on_error(Connection&, ConnError e) override { error = to_string(e); }
    void on_closed(Connection& c) override {
        closed = true;
        stats = c.stats();
    }

    crypto_hash_sha256_state hash{};
    bool closed = false;
    ConnStats stats;
    std::string error;
    std::vector<std::weak_ptr<const void>> pins;  // every block sent by reference

private:
    void pump(Connection& c) {
        constexpr std::size_t kChunk = 8192;
        while (sent_ < bytes_ && c.send_room() > 0) {
            const std::size_t n = std::min<std::uint64_t>({kChunk, bytes_ - sent_, c.send_room()});
            auto chunk = std::make_shared<std::vector<std::uint8_t>>(n);
            for (std::size_t k = 0; k < n; ++k) (*chunk)[k] = stream_byte(sent_ + k);
            std::size_t taken;
            if (by_reference_ && ++chunks_ % 2 == 0) {
                taken = c.send_reference(*chunk, chunk);
                pins.push_back(chunk);
            } else {
                taken = c.send(*chunk);
            }
            crypto_hash_sha256_update(&hash, chunk->data(), taken);
            sent_ += taken;
        }
        if (sent_ == bytes_) c.close();
    }
    std::uint64_t bytes_;
    bool by_reference_;
    std::uint64_t sent_ = 0;
    std::uint64_t chunks_ = 0;
};

class Receiver final : public Handler {
public:
    Receiver() { crypto_hash_sha256_init(&hash); }
    void on_readable(Connection& c) override {
        std::uint8_t chunk[8192];
        while (std::size_t n = c.recv(chunk)) {
            for (std::size_t k = 0; k < n; ++k) mismatch = mismatch || chunk[k] != stream_byte(received + k);
            crypto_hash_sha256_update(&hash, chunk, n);
            received += n;
        }
    }
    void on_peer_closed(Connection& c) override {
        on_readable(c);
        c.close();
    }
    void on_error(Connection&, ConnError e) override { error = to_string(e); }
    void on_closed(Connection& c) override {
        closed = true;
        stats = c.stats();
    }

    crypto_hash_sha256_state hash{};
    std::uint64_t received = 0;
    bool mismatch = false;
    bool closed = false;
    ConnStats stats;
    std::string error;
};

bool same_digest(crypto_hash_sha256_state a, crypto_hash_sha256_state b) {
    unsigned char da[crypto_hash_sha256_BYTES];
    unsigned char db[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&a, da);
    crypto_hash_sha256_final(&b, db);
    return std::memcmp(da, db, sizeof da) == 0;
}

}  // namespace

TransferResult transfer(Simulation& sim, std::uint64_t bytes, std::uint64_t limit_ms, bool by_reference,
                        wire::IpFamily family, std::optional<MoveAt> move) {
    if (sodium_init() < 0) return {.error = "libsodium"};
    Sender sender(bytes, by_reference);
    Receiver receiver;
    sim.b().listen(80, &receiver);
    const std::uint64_t start = sim.now();
    if (!sim.a().connect(40000, *sim.b().local_address(family), 80, &sender)) return {.error = "connect failed"};
    std::size_t moved = 0;
    bool move_done = false;
    while (!(sender.closed && receiver.closed) && sim.now() - start < limit_ms) {
        if (move && !move_done && sim.now() - start >= move->after_ms) {
            moved = sim.move_connections(move->side);
            move_done = true;
        }
        sim.step();
    }
    sim.b().unlisten(80);
    TransferResult r;
    r.moved = moved;
    r.completed = sender.closed && receiver.closed && sender.error.empty() && receiver.error.empty();
    r.received = receiver.received;
    r.bytes_match = !receiver.mismatch && receiver.received == bytes && same_digest(sender.hash, receiver.hash);
    r.virtual_ms = sim.now() - start;
    r.sender = sender.stats;
    r.receiver = receiver.stats;
    r.error = sender.error.empty() ? receiver.error : sender.error;
    for (const auto& pin : sender.pins) r.pins_alive += pin.expired() ? 0 : 1;
    return r;
}

}  // namespace ms::utcp::sim
