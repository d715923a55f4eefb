// Contract: quiescent-state-based reclamation for data that the control thread replaces
// and the worker threads read without locks (docs/DESIGN.md §4: RCU-style epochs).
//
// Readers (workers, by index) call quiescent() at the top of every loop, when they hold
// no pointer from a previous round, and offline() before they sleep. A writer publishes
// a new immutable value with one atomic store and then synchronize()s: once every reader
// has announced a later epoch or is offline, nobody can still hold the old value, and it
// is freed. Reads cost one atomic load; writes may wait about one reader loop.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>

namespace ms::sw {

class Qsbr {
public:
    explicit Qsbr(std::size_t readers);

    void quiescent(std::size_t reader) {
        readers_[reader].seen.store(epoch_.load(std::memory_order_acquire), std::memory_order_seq_cst);
    }
    void offline(std::size_t reader) { readers_[reader].seen.store(0, std::memory_order_release); }
    // Waits until every reader that may hold a value published before this call lets go.
    void synchronize();

private:
    struct alignas(64) ReaderState {
        std::atomic<std::uint64_t> seen{0};  // 0: offline
    };
    std::atomic<std::uint64_t> epoch_{1};
    std::unique_ptr<ReaderState[]> readers_;
    std::size_t reader_count_;
};

// One value of T, replaced as a whole by writers and read lock-free between quiescent
// points. Writers are serialised by an internal mutex.
template <class T>
class Published {
public:
    Published(Qsbr& qsbr, std::shared_ptr<const T> initial)
        : qsbr_(qsbr), owner_(std::move(initial)), current_(owner_.get()) {}

    // For readers, between quiescent points.
    [[nodiscard]] const T& read() const { return *current_.load(std::memory_order_seq_cst); }
    // For the control thread and tools: a reference that stays valid as long as held.
    [[nodiscard]] std::shared_ptr<const T> snapshot() const {
        std::lock_guard lock(mutex_);
        return owner_;
    }
    // Replaces the value: `make` builds the new one from the current one, under the
    // lock, or returns null to leave it as it is.
    template <class Make>
    void update(Make make) {
        std::lock_guard lock(mutex_);
        std::shared_ptr<const T> next = make(*owner_);
        if (!next) return;
        current_.store(next.get(), std::memory_order_seq_cst);
        qsbr_.synchronize();
        owner_ = std::move(next);
    }

private:
    Qsbr& qsbr_;
    mutable std::mutex mutex_;
    std::shared_ptr<const T> owner_;
    std::atomic<const T*> current_;
};

}  // namespace ms::sw
