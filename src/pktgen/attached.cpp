#include "pktgen/attached.hpp"

#include <netinet/in.h>

#include <chrono>
#include <cstring>
#include <optional>

#include "client/multistack.hpp"

namespace ms::pktgen {
namespace {

using Clock = std::chrono::steady_clock;

PktgenFailure daemon_failure(const char* what, const client::Failure& f) {
    return {PktgenError::daemon, std::string(what) + ": " + f.message()};
}

AttachedResult transmit(client::AppPort& port, const PacketBuilder& builder, Clock::time_point end) {
    AttachedResult r;
    auto& tx = port.tx();
    std::uint32_t seq = 0;
    while (Clock::now() < end) {
        for (int i = 0; i < 64; ++i) {
            const std::uint32_t n = std::min<std::uint32_t>(tx.space(), 64);
            if (n == 0) {
                port.wait_for_room(0, 10);  // sleep, do not spin: the switch may share our core
                continue;
            }
            for (std::uint32_t k = 0; k < n; ++k)
                tx.set_length(k, static_cast<std::uint16_t>(builder.build(tx.buffer(k), seq++)));
            tx.publish(n);
            r.frames += n;
            r.bytes += std::uint64_t{n} * builder.size();
        }
    }
    return r;
}

AttachedResult receive(client::AppPort& port, Clock::time_point end) {
    AttachedResult r;
    auto& rx = port.rx();
    while (Clock::now() < end) {
        const std::uint32_t n = rx.available();
        for (std::uint32_t k = 0; k < n; ++k) r.bytes += rx.frame(k).size();
        rx.release(n);
        r.frames += n;
        if (n == 0) port.wait(0, 10);
    }
    return r;
}

}  // namespace

base::Result<AttachedResult, PktgenFailure> run_attached(const AttachedConfig& c) {
    auto conn = client::ControlSession::open(c.socket);
    if (!conn) return daemon_failure("connect", conn.error());
    // Deep rings: the generator and the switch often share a core (bench/nic.sh), and a
    // ring must absorb a scheduler time slice of traffic.
    const auto port = conn->attach(1, 8192);
    if (!port) return daemon_failure("attach", port.error());
    if (const auto claimed = conn->claim(IPPROTO_UDP, c.local, c.local_port); !claimed) {
        return daemon_failure("claim", claimed.error());
    }
    const auto info = conn->info();
    if (!info) return daemon_failure("info", info.error());
    wire::MacAddr nic;
    std::memcpy(nic.octets.data(), info->mac, 6);
    std::optional<PacketBuilder> builder;
    if (c.transmit) {
        auto made = PacketBuilder::create(
            {Proto::udp, nic, c.peer_mac, c.local, c.peer, c.local_port, c.peer_port, c.frame_size});
        if (!made) return made.error();
        builder.emplace(std::move(made.value()));
    }
    const auto start = Clock::now();
    const auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(c.seconds));
    AttachedResult r = builder ? transmit(**port, *builder, end) : receive(**port, end);
    r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return r;
}

}  // namespace ms::pktgen
