// Google Benchmark of what moving a connection between processes costs in state
// (utcp/connection_image.hpp, posix/handoff.cpp): the image encoded, written into a
// sealed memfd, mapped and decoded again, with 0, 64 KiB and 256 KiB of bytes buffered
// (unacknowledged, or unread). The peer is what the kernel does for its own sockets:
// passing a descriptor over a UNIX socket (SCM_RIGHTS), sendmsg and recvmsg. A whole
// hand-off adds two control round trips to multistackd (hand_off, take_over) and the
// take-up (Stack::import_connection), which are not in this figure.
#include <benchmark/benchmark.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vector>

#include "ctl/seqpacket.hpp"
#include "utcp/connection_image.hpp"

namespace {

ms::utcp::ConnectionImage image_with(std::size_t buffered) {
    ms::utcp::ConnectionImage im;
    im.tuple = {ms::wire::IpAddr::v4(0xc6120001), ms::wire::IpAddr::v4(0xc6120002), 80, 40000};
    im.iss = 1, im.snd_una = 2, im.snd_max = 2, im.irs = 7, im.rcv_nxt = 8, im.rcv_adv_edge = 8 + 65535;
    im.mss_local = im.smss = 1448, im.mss_path = 65535;
    im.cwnd = 14480, im.ssthresh = 0xffffffff, im.min_rto_ms = 200, im.max_rto_ms = 60000, im.delayed_ack_ms = 40;
    im.send_buffer = im.recv_buffer = 256 * 1024;
    im.congestion = "cubic";
    im.unacknowledged.assign(buffered / 2, 0xab);
    im.readable.assign(buffered - buffered / 2, 0xcd);
    return im;
}

void BM_ImageThroughMemfd(benchmark::State& state) {
    const ms::utcp::ConnectionImage im = image_with(static_cast<std::size_t>(state.range(0)));
    std::size_t bytes = 0;
    for (auto _ : state) {
        const std::vector<std::uint8_t> encoded = ms::utcp::encode(im);
        const int fd = ::memfd_create("image", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (::write(fd, encoded.data(), encoded.size()) != static_cast<ssize_t>(encoded.size())) state.SkipWithError("write");
        ::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
        void* mapped = ::mmap(nullptr, encoded.size(), PROT_READ, MAP_PRIVATE, fd, 0);
        auto decoded = ms::utcp::decode({static_cast<const std::uint8_t*>(mapped), encoded.size()});
        if (!decoded) state.SkipWithError("decode");
        benchmark::DoNotOptimize(decoded);
        ::munmap(mapped, encoded.size());
        ::close(fd);
        bytes = encoded.size();
    }
    state.counters["image_bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_ImageThroughMemfd)->Arg(0)->Arg(64 << 10)->Arg(256 << 10)->Unit(benchmark::kMicrosecond);

// The peer: a kernel TCP socket's descriptor passed over a UNIX socket and received.
void BM_KernelDescriptorPassing(benchmark::State& state) {
    int pair[2];
    ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair);
    const int tcp = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    for (auto _ : state) {
        char byte = 'c';
        std::vector<int> received;
        if (ms::ctl::send_message(pair[0], &byte, 1, std::span(&tcp, 1)) != 0 ||
            ms::ctl::receive_message(pair[1], &byte, 1, received, 1) != 1) {
            state.SkipWithError("pass");
        }
        ms::ctl::close_all(received);
    }
    for (int fd : {pair[0], pair[1], tcp}) ::close(fd);
}
BENCHMARK(BM_KernelDescriptorPassing)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
