// Contract: the tuples of connections that moved to another stack (connection_image.hpp).
// For a while after the move the switch may still bring their segments here; they are
// dropped, never answered with a RST, and the peer sends them again to the new stack.
// Every record lives the same time, so they expire from a FIFO; at most kMaxRecords
// are kept (the oldest goes first).
#pragma once

#include <cstdint>
#include <deque>
#include <unordered_map>
#include <utility>

#include "utcp/clock.hpp"
#include "utcp/tuple.hpp"

namespace ms::utcp {

class MovedTuples {
public:
    static constexpr std::uint64_t kKeepUs = us_from_ms(30'000);
    static constexpr std::size_t kMaxRecords = 65'536;

    // Records `t` until now + kKeepUs; `gone(tuple)` for a record it pushes out.
    template <class Gone>
    void add(const FourTuple& t, std::uint64_t now_us, Gone&& gone) {
        if (records_.size() >= kMaxRecords) drop_oldest(gone);
        records_[t] = now_us + kKeepUs;
        fifo_.emplace_back(t, now_us + kKeepUs);
    }
    [[nodiscard]] bool contains(const FourTuple& t) const { return records_.contains(t); }
    // A new connection on the tuple (the switch brought its SYN here): no longer moved.
    void erase(const FourTuple& t) { records_.erase(t); }
    // Drops the records expired at `now_us`; calls `gone(tuple)` for each.
    template <class Gone>
    void expire(std::uint64_t now_us, Gone&& gone) {
        while (!fifo_.empty() && fifo_.front().second <= now_us) drop_oldest(gone);
    }
    [[nodiscard]] std::uint64_t next_expiry() const { return fifo_.empty() ? UINT64_MAX : fifo_.front().second; }
    [[nodiscard]] std::size_t size() const { return records_.size(); }

private:
    template <class Gone>
    void drop_oldest(Gone& gone) {
        const auto [t, expires] = fifo_.front();
        fifo_.pop_front();
        auto it = records_.find(t);
        if (it == records_.end() || it->second != expires) return;  // erased, or added again later
        records_.erase(it);
        gone(t);
    }

    std::unordered_map<FourTuple, std::uint64_t, FourTupleHash> records_;
    std::deque<std::pair<FourTuple, std::uint64_t>> fifo_;
};

}  // namespace ms::utcp
