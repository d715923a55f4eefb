// Contract: the sender's record of every segment in flight (RFC 6675 §3's scoreboard, as
// RACK wants it, RFC 8985 §5.2): its sequence range, when it last went, and whether the
// peer SACKed it, it is deemed lost, or its retransmission is in flight. Segments are
// kept in sequence order from SND.UNA to SND.MAX, at most one per segment sent, so the
// record is bounded by the send buffer. Counters of SACKed, lost and retransmitted bytes
// give the pipe (RFC 6675 §4, Linux's packets_in_flight) without a walk.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <span>

#include "utcp/delivery_rate.hpp"
#include "utcp/seq.hpp"
#include "wire/transport.hpp"

namespace ms::utcp {

struct SentSegment {
    Seq32 start;
    std::uint32_t len = 0;     // sequence space, FIN included
    std::uint64_t sent_us = 0; // the last transmission
    std::uint64_t sent_order = 0;  // the last transmission's place among all of the connection's sends
    bool sacked = false;
    bool lost = false;         // deemed lost; stays so until acknowledged
    bool resent = false;       // a retransmission since it was deemed lost is in flight
    bool ever_resent = false;  // for RACK's spurious-sample filter and reordering detection
    SendStamp stamp;           // what the last transmission recorded for rate samples
    [[nodiscard]] Seq32 end() const { return start + len; }
};

class Scoreboard {
public:
    // A segment [seq, seq + len) went out at `now_us` with `stamp`: new data is appended; a
    // resend updates the segments it covers.
    void on_send(Seq32 seq, std::uint32_t len, std::uint64_t now_us, const SendStamp& stamp = {});
    // SND.UNA moved to `una`: forgets what it covers; calls `delivered` for each segment
    // acknowledged that was not SACKed before, or for the part of it acknowledged (the
    // rest is delivered, and counted, when its own ACK comes).
    template <class Delivered>
    void on_cumulative_ack(Seq32 una, Delivered&& delivered);
    // Marks the segments that `blocks` cover entirely as SACKed, ignoring blocks outside
    // [una, max] (RFC 2018 §3 and RFC 2883: D-SACK blocks name old data); calls
    // `delivered` for each newly SACKed segment.
    template <class Delivered>
    void on_sack(std::span<const wire::SackBlock> blocks, Seq32 una, Seq32 max, Delivered&& delivered);
    // True if `s` was not deemed lost before (a lost retransmission goes again, uncounted).
    bool mark_lost(SentSegment& s);
    // Every segment not SACKed is lost (an RTO, RFC 6675 §5.1).
    void mark_all_lost();
    // Cuts every segment not SACKed that is longer than `max_len` into pieces of that
    // size (the last shorter) and marks them lost, to go again: the path no longer
    // carries segments that large. Returns how many segments were cut.
    std::uint32_t split_larger_than(std::uint32_t max_len);
    // Whether the segment holding `seq` is deemed lost.
    [[nodiscard]] bool is_lost(Seq32 seq) const;
    // The first lost segment whose retransmission is not in flight.
    [[nodiscard]] SentSegment* next_to_resend();

    // RFC 6675 §4 pipe: what is still in the network.
    [[nodiscard]] std::uint32_t pipe(std::uint32_t flight) const;
    [[nodiscard]] std::uint32_t sacked_bytes() const { return sacked_; }
    [[nodiscard]] std::uint32_t sacked_segments() const { return sacked_count_; }
    [[nodiscard]] std::uint32_t lost_bytes() const { return lost_; }
    // Bytes sent and neither SACKed nor deemed lost (a lost segment's retransmission counts).
    [[nodiscard]] std::uint32_t in_flight() const {
        if (segs_.empty()) return 0;
        return static_cast<std::uint32_t>(segs_.back().end() - segs_.front().start) - sacked_ - lost_ + resent_;
    }
    [[nodiscard]] std::deque<SentSegment>& segments() { return segs_; }
    [[nodiscard]] const std::deque<SentSegment>& segments() const { return segs_; }

private:
    void forget(const SentSegment& s);

    std::deque<SentSegment> segs_;
    std::uint32_t sacked_ = 0;
    std::uint32_t sacked_count_ = 0;
    std::uint32_t lost_ = 0;
    std::uint32_t resent_ = 0;  // bytes of lost segments whose retransmission is in flight
    // Orders transmissions exactly: the clock's milliseconds cannot (RACK needs to know
    // which of two segments sent in the same millisecond went last, RFC 8985 §6.1).
    std::uint64_t sends_ = 0;
};

template <class Delivered>
void Scoreboard::on_cumulative_ack(Seq32 una, Delivered&& delivered) {
    while (!segs_.empty() && segs_.front().start < una) {
        SentSegment& s = segs_.front();
        if (s.end() <= una) {
            if (!s.sacked) delivered(s);
            forget(s);
            segs_.pop_front();
            continue;
        }
        // Part of it is acknowledged (the peer took part of a segment): keep the rest.
        const auto acked = static_cast<std::uint32_t>(una - s.start);
        if (!s.sacked) {
            SentSegment part = s;
            part.len = acked;
            delivered(part);
        }
        if (s.sacked) sacked_ -= acked;
        if (s.lost) lost_ -= acked;
        if (s.lost && s.resent) resent_ -= acked;
        s.start = una;
        s.len -= acked;
        break;
    }
}

template <class Delivered>
void Scoreboard::on_sack(std::span<const wire::SackBlock> blocks, Seq32 una, Seq32 max, Delivered&& delivered) {
    for (const wire::SackBlock& b : blocks) {
        const Seq32 left(b.left);
        const Seq32 right(b.right);
        if (!(left < right) || left < una || right > max) continue;
        for (SentSegment& s : segs_) {
            if (s.start >= right) break;
            if (s.sacked || s.start < left || s.end() > right) continue;
            s.sacked = true;
            sacked_ += s.len;
            ++sacked_count_;
            if (s.lost) {
                lost_ -= s.len;
                if (s.resent) resent_ -= s.len;
                s.lost = s.resent = false;
            }
            delivered(s);
        }
    }
}

}  // namespace ms::utcp
