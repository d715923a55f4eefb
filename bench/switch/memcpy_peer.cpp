#include "memcpy_peer.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include "sw/frame_queue.hpp"

namespace ms::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::uint32_t kDepth = 4096;
constexpr std::uint32_t kBatch = 256;

void copy_loop(sw::FrameQueue& in, sw::FrameQueue& out, const std::atomic<bool>& stop) {
    while (!stop.load(std::memory_order_relaxed)) {
        const std::uint32_t n = std::min({in.available(), out.space(), kBatch});
        for (std::uint32_t k = 0; k < n; ++k) {
            const sw::FrameCell& src = in.consumer_cell(k);
            sw::FrameCell& dst = out.producer_cell(k);
            std::memcpy(dst.data, src.data, src.len);
            dst.len = src.len;
        }
        out.commit(n);
        in.release(n);
    }
}

}  // namespace

MemcpyResult run_memcpy_peer(std::uint16_t frame_size, double seconds, double warmup_seconds) {
    sw::FrameQueue in(kDepth);
    sw::FrameQueue out(kDepth);
    std::atomic<bool> stop{false};
    std::thread copier(copy_loop, std::ref(in), std::ref(out), std::cref(stop));

    std::uint64_t received = 0;
    auto drive_until = [&](auto end) {
        while (Clock::now() < end) {
            for (int i = 0; i < 64; ++i) {
                const std::uint32_t n = std::min(in.space(), 1024u);
                for (std::uint32_t k = 0; k < n; ++k) in.producer_cell(k).len = frame_size;
                in.commit(n);
                const std::uint32_t got = out.available();
                out.release(got);
                received += got;
            }
        }
    };
    drive_until(Clock::now() + std::chrono::duration<double>(warmup_seconds));
    const std::uint64_t start_count = received;
    const auto t0 = Clock::now();
    drive_until(t0 + std::chrono::duration<double>(seconds));
    MemcpyResult r;
    r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    r.frames = received - start_count;
    stop = true;
    copier.join();
    return r;
}

}  // namespace ms::bench
