// Google Benchmark of a claim's proof check (daemon/claim_proof.hpp) with N other UDP
// sockets open in the namespace. The check reads the kernel's socket table filtered to
// the proof's port (sock_diag), and the kernel walks every socket of the protocol to
// filter it: this measures what that costs per claim as the table grows, beside the
// plain getsockopt checks (the peer: the same proof without the table read).
#include <benchmark/benchmark.h>

#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vector>

#include "daemon/claim_proof.hpp"

namespace {

int bound_udp() {
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    (void)::bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin);
    return fd;
}

// `n` bound UDP sockets, closed when it goes.
struct OtherSockets {
    explicit OtherSockets(std::size_t n) {
        rlimit lim{};
        ::getrlimit(RLIMIT_NOFILE, &lim);
        lim.rlim_cur = lim.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &lim);
        for (std::size_t i = 0; i < n; ++i) fds.push_back(bound_udp());
    }
    ~OtherSockets() {
        for (int fd : fds) ::close(fd);
    }
    std::vector<int> fds;
};

void BM_ProveClaim(benchmark::State& state) {
    const OtherSockets others(static_cast<std::size_t>(state.range(0)));
    const ms::daemon::ProofScope scope{ms::daemon::own_netns_cookie(), 0, {}};
    const int proof = bound_udp();
    for (auto _ : state) {
        const auto result = ms::daemon::prove_claim(proof, scope);
        if (!result.ok()) state.SkipWithError("the proof was refused");
        benchmark::DoNotOptimize(result);
    }
    ::close(proof);
    state.counters["udp_sockets"] = static_cast<double>(state.range(0));
}
BENCHMARK(BM_ProveClaim)->Arg(0)->Arg(1000)->Arg(16000)->Unit(benchmark::kMicrosecond);

void BM_KernelTableForOnePort(benchmark::State& state) {
    const OtherSockets others(static_cast<std::size_t>(state.range(0)));
    for (auto _ : state) benchmark::DoNotOptimize(ms::daemon::sockets_on_port(IPPROTO_UDP, 9));
    state.counters["udp_sockets"] = static_cast<double>(state.range(0));
}
BENCHMARK(BM_KernelTableForOnePort)->Arg(0)->Arg(1000)->Arg(16000)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
