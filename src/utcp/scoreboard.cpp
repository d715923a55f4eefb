#include "utcp/scoreboard.hpp"

#include <algorithm>

namespace ms::utcp {

void Scoreboard::on_send(Seq32 seq, std::uint32_t len, std::uint64_t now_us, const SendStamp& stamp) {
    if (len == 0) return;
    if (segs_.empty() || seq >= segs_.back().end()) {
        segs_.push_back({.start = seq, .len = len, .sent_us = now_us, .sent_order = ++sends_, .stamp = stamp});
        return;
    }
    const Seq32 end = seq + len;
    for (SentSegment& s : segs_) {
        if (s.start >= end) break;
        if (s.end() <= seq) continue;
        s.sent_us = now_us;
        s.sent_order = ++sends_;
        s.ever_resent = true;
        s.stamp = stamp;
        if (s.lost && !s.resent) {
            s.resent = true;
            resent_ += s.len;
        }
    }
    // Past SND.MAX (a resend after an RTO that runs on into new data): new segments.
    if (end > segs_.back().end()) {
        const Seq32 from = segs_.back().end();
        segs_.push_back({.start = from,
                         .len = static_cast<std::uint32_t>(end - from),
                         .sent_us = now_us,
                         .sent_order = ++sends_,
                         .stamp = stamp});
    }
}

bool Scoreboard::mark_lost(SentSegment& s) {
    if (s.sacked) return false;
    if (!s.lost) {
        s.lost = true;
        lost_ += s.len;
        return true;
    }
    if (s.resent) {
        s.resent = false;  // the retransmission is lost too: it goes again
        resent_ -= s.len;
    }
    return false;
}

void Scoreboard::mark_all_lost() {
    for (SentSegment& s : segs_) {
        if (s.sacked) continue;
        if (s.lost && s.resent) {
            s.resent = false;
            resent_ -= s.len;
        } else if (!s.lost) {
            s.lost = true;
            lost_ += s.len;
        }
    }
}

std::uint32_t Scoreboard::split_larger_than(std::uint32_t max_len) {
    if (max_len == 0) return 0;
    std::uint32_t cut = 0;
    std::deque<SentSegment> pieces;
    for (const SentSegment& s : segs_) {
        if (s.sacked || s.len <= max_len) {
            pieces.push_back(s);
            continue;
        }
        ++cut;
        forget(s);
        for (std::uint32_t done = 0; done < s.len; done += max_len) {
            SentSegment piece = s;
            piece.start = s.start + done;
            piece.len = std::min(max_len, s.len - done);
            piece.lost = true;
            piece.resent = false;
            lost_ += piece.len;
            pieces.push_back(piece);
        }
    }
    if (cut) segs_ = std::move(pieces);
    return cut;
}

bool Scoreboard::is_lost(Seq32 seq) const {
    for (const SentSegment& s : segs_) {
        if (s.start > seq) return false;
        if (seq < s.end()) return s.lost;
    }
    return false;
}

SentSegment* Scoreboard::next_to_resend() {
    if (lost_ == resent_) return nullptr;
    for (SentSegment& s : segs_) {
        if (s.lost && !s.resent) return &s;
    }
    return nullptr;
}

std::uint32_t Scoreboard::pipe(std::uint32_t flight) const {
    const std::uint32_t left_out = sacked_ + lost_;
    const std::uint32_t base = flight > left_out ? flight - left_out : 0;
    return base + resent_;
}

void Scoreboard::forget(const SentSegment& s) {
    if (s.sacked) {
        sacked_ -= s.len;
        --sacked_count_;
    }
    if (s.lost) lost_ -= s.len;
    if (s.lost && s.resent) resent_ -= s.len;
}

}  // namespace ms::utcp
