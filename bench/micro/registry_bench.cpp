// Google Benchmark of the claim registry's writer: one claim made and released with the
// table already holding N claims (N up to the XDP claim map's size). A claim's cost must
// not grow with N (the registry once copied the whole table on every claim). The
// lock-free lookup that the switch workers do is measured beside it, as the peer.
#include <benchmark/benchmark.h>

#include <netinet/in.h>

#include "sw/registry.hpp"

namespace {

using ms::sw::ClaimKey;

ClaimKey key(std::uint32_t i) {
    return {static_cast<std::uint8_t>(i & 1 ? IPPROTO_UDP : IPPROTO_TCP), ms::wire::IpAddr::v4(0xc6120001 + (i >> 17)),
            static_cast<std::uint16_t>(1 + ((i >> 1) & 0xffff) % 65535)};
}

// A registry holding `n` claims of distinct tuples.
void fill(ms::sw::Registry& reg, std::uint32_t n) {
    for (std::uint32_t i = 0; i < n; ++i) (void)reg.add(key(i), static_cast<ms::sw::PortId>(i % 1024));
}

void BM_ClaimAndRelease(benchmark::State& state) {
    ms::sw::Qsbr qsbr(1);
    ms::sw::Registry reg(qsbr);
    const auto n = static_cast<std::uint32_t>(state.range(0));
    fill(reg, n);
    std::uint32_t i = n;
    for (auto _ : state) {
        const ClaimKey k = key(i++);
        benchmark::DoNotOptimize(reg.add(k, 1));
        benchmark::DoNotOptimize(reg.remove(k, 1));
    }
    state.counters["claims_held"] = n;
}
BENCHMARK(BM_ClaimAndRelease)->Arg(0)->Arg(1000)->Arg(16000)->Arg(64000);

void BM_Lookup(benchmark::State& state) {
    ms::sw::Qsbr qsbr(1);
    ms::sw::Registry reg(qsbr);
    const auto n = static_cast<std::uint32_t>(state.range(0));
    fill(reg, n);
    const ms::sw::ClaimTable& table = reg.read();
    std::uint32_t i = 0;
    for (auto _ : state) {
        const ClaimKey k = key(i++ % n);
        benchmark::DoNotOptimize(table.lookup(k.protocol, k.addr, k.port));
    }
    state.counters["claims_held"] = n;
}
BENCHMARK(BM_Lookup)->Arg(1000)->Arg(16000)->Arg(64000);

}  // namespace

BENCHMARK_MAIN();
