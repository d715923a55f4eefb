// Google Benchmark of the Internet checksum against a straightforward 16-bit loop, and of
// the switch's copy that sums as it copies (wire::copy_ones_sum) against memcpy alone:
// single-core memcpy bandwidth is the physical limit of every copy on the data path
// (its figures are reported beside it).
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <vector>

#include "wire/checksum.hpp"

namespace {

std::vector<std::uint8_t> random_bytes(std::size_t n) {
    std::mt19937 rng(7);
    std::vector<std::uint8_t> v(n);
    for (auto& b : v) b = static_cast<std::uint8_t>(rng());
    return v;
}

std::uint16_t naive_checksum(const std::uint8_t* p, std::size_t n) {
    std::uint32_t sum = 0;
    for (std::size_t i = 0; i + 1 < n; i += 2) sum += static_cast<std::uint32_t>(p[i] << 8 | p[i + 1]);
    if (n % 2) sum += static_cast<std::uint32_t>(p[n - 1] << 8);
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<std::uint16_t>(~sum);
}

void BM_InternetChecksum(benchmark::State& state) {
    const auto data = random_bytes(static_cast<std::size_t>(state.range(0)));
    for (auto _ : state) benchmark::DoNotOptimize(ms::wire::internet_checksum(data));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

void BM_NaiveChecksum(benchmark::State& state) {
    const auto data = random_bytes(static_cast<std::size_t>(state.range(0)));
    for (auto _ : state) benchmark::DoNotOptimize(naive_checksum(data.data(), data.size()));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

void BM_IncrementalUpdate(benchmark::State& state) {
    std::uint16_t c = 0x1234;
    std::uint32_t v = 0;
    for (auto _ : state) {
        c = ms::wire::checksum_update32(c, v, v + 1);
        ++v;
        benchmark::DoNotOptimize(c);
    }
}

// Copies between two buffers of 16 MiB in steps of `size`, so that the bytes come from
// memory as a bulk flow's do, not from a cache line copied again and again.
constexpr std::size_t kSpan = std::size_t{16} << 20;

// Runs `copy(dst, src, size)` over the two buffers, `size` = the benchmark's argument.
template <class Copy>
void copy_through_memory(benchmark::State& state, const Copy& copy) {
    const auto size = static_cast<std::size_t>(state.range(0));
    const auto src = random_bytes(kSpan);
    std::vector<std::uint8_t> dst(kSpan);
    std::size_t at = 0;
    for (auto _ : state) {
        copy(dst.data() + at, src.data() + at, size);
        at = at + 2 * size > kSpan ? 0 : at + size;
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

void BM_Memcpy(benchmark::State& state) {
    copy_through_memory(state, [](std::uint8_t* dst, const std::uint8_t* src, std::size_t n) {
        std::memcpy(dst, src, n);
        benchmark::ClobberMemory();
    });
}

void BM_CopyAndSum(benchmark::State& state) {
    copy_through_memory(state, [](std::uint8_t* dst, const std::uint8_t* src, std::size_t n) {
        benchmark::DoNotOptimize(ms::wire::copy_ones_sum(dst, {src, n}));
    });
}

BENCHMARK(BM_InternetChecksum)->Arg(20)->Arg(64)->Arg(576)->Arg(1500);
BENCHMARK(BM_Memcpy)->Arg(1448)->Arg(65536);
BENCHMARK(BM_CopyAndSum)->Arg(1448)->Arg(65536);
BENCHMARK(BM_NaiveChecksum)->Arg(20)->Arg(64)->Arg(576)->Arg(1500);
BENCHMARK(BM_IncrementalUpdate);

}  // namespace

BENCHMARK_MAIN();
