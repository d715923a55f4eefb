#include "sw/qsbr.hpp"

#include <thread>

namespace ms::sw {

Qsbr::Qsbr(std::size_t readers) : readers_(std::make_unique<ReaderState[]>(readers)), reader_count_(readers) {}

void Qsbr::synchronize() {
    const std::uint64_t epoch = epoch_.fetch_add(1, std::memory_order_seq_cst) + 1;
    for (std::size_t r = 0; r < reader_count_; ++r) {
        for (;;) {
            const std::uint64_t seen = readers_[r].seen.load(std::memory_order_seq_cst);
            if (seen == 0 || seen >= epoch) break;
            std::this_thread::yield();
        }
    }
}

}  // namespace ms::sw
