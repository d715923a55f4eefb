// Contract: TIME_WAIT as compact records, not full TCBs (docs/DESIGN.md §7): the few fields
// needed to re-ACK a retransmitted FIN and to judge a new SYN (RFC 9293 §3.10.7.4,
// RFC 1122 §4.2.2.13, RFC 6191). Every record lives the same time, so expiry is a FIFO:
// O(1) per record, no timer per record. A record that is restarted (a retransmitted
// FIN) is pushed again; the stale FIFO entry is recognised by its expiry and skipped.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <optional>
#include <unordered_map>

#include "utcp/clock.hpp"
#include "utcp/seq.hpp"
#include "utcp/tuple.hpp"

namespace ms::utcp {

struct TimeWaitRecord {
    Seq32 snd_nxt;  // after our FIN
    Seq32 rcv_nxt;  // after the peer's FIN
    std::uint64_t expires_us = 0;
    wire::MacAddr next_hop;
    std::uint16_t wnd = 0;
    std::optional<std::uint32_t> ts_recent;  // the peer's last TSval, if the connection used timestamps
};

class TimeWaitTable {
public:
    explicit TimeWaitTable(std::uint32_t duration_ms) : duration_ms_(duration_ms), duration_us_(us_from_ms(duration_ms)) {}

    void add(const FourTuple& t, TimeWaitRecord r, std::uint64_t now_us) {
        r.expires_us = now_us + duration_us_;
        records_[t] = r;
        fifo_.push_back({t, r.expires_us});
    }
    [[nodiscard]] TimeWaitRecord* find(const FourTuple& t) {
        auto it = records_.find(t);
        return it == records_.end() ? nullptr : &it->second;
    }
    // RFC 9293 §3.10.7.4: a retransmitted FIN restarts the 2 MSL timeout.
    void restart(const FourTuple& t, std::uint64_t now_us) {
        if (TimeWaitRecord* r = find(t)) add(t, *r, now_us);
    }
    void erase(const FourTuple& t) { records_.erase(t); }
    // Drops the records expired at `now`; calls `gone(tuple)` for each.
    template <class Gone>
    void expire(std::uint64_t now_us, Gone&& gone) {
        while (!fifo_.empty() && fifo_.front().second <= now_us) {
            const auto [t, expires] = fifo_.front();
            fifo_.pop_front();
            auto it = records_.find(t);
            if (it == records_.end() || it->second.expires_us != expires) continue;  // reused or restarted
            records_.erase(it);
            gone(t);
        }
    }
    [[nodiscard]] std::uint64_t next_expiry() const { return fifo_.empty() ? UINT64_MAX : fifo_.front().second; }
    [[nodiscard]] std::size_t size() const { return records_.size(); }
    [[nodiscard]] std::uint32_t duration_ms() const { return duration_ms_; }

private:
    std::uint32_t duration_ms_;
    std::uint64_t duration_us_;
    std::unordered_map<FourTuple, TimeWaitRecord, FourTupleHash> records_;
    std::deque<std::pair<FourTuple, std::uint64_t>> fifo_;
};

}  // namespace ms::utcp
