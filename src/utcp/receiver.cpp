#include "utcp/receiver.hpp"

#include <algorithm>

namespace ms::utcp {

void Receiver::start(Seq32 irs) {
    vars_.irs = irs;
    vars_.nxt = irs + 1;
    vars_.adv_edge = vars_.nxt;
}

bool Receiver::acceptable(const Segment& seg) const {
    const std::uint32_t wnd = vars_.wnd();
    const std::uint32_t len = seg.len();
    if (len == 0) return wnd == 0 ? seg.seq == vars_.nxt : Seq32::in_window(seg.seq, vars_.nxt, wnd);
    if (wnd == 0) return false;
    return Seq32::in_window(seg.seq, vars_.nxt, wnd) || Seq32::in_window(seg.seq + (len - 1), vars_.nxt, wnd);
}

TextOutcome Receiver::on_text(const Segment& seg, std::uint32_t ack_every, bool discard_readable) {
    TextOutcome out;
    wire::Bytes data = seg.payload;
    std::int32_t offset = seg.seq - vars_.nxt;
    if (offset < 0) {  // overlaps what we have: keep only the new part
        const auto old = static_cast<std::size_t>(-offset);
        if (sack_)
            duplicate_ = wire::SackBlock{seg.seq.value(),
                                         (seg.seq + static_cast<std::uint32_t>(std::min(old, data.size()))).value()};
        if (old >= data.size()) return out;
        data = data.subspan(old);
        offset = 0;
    }
    const std::uint32_t window = vars_.wnd();
    if (static_cast<std::uint32_t>(offset) >= window) return out;
    data = data.first(std::min<std::size_t>(data.size(), window - static_cast<std::uint32_t>(offset)));
    const std::int64_t gained = buf_.insert(static_cast<std::size_t>(offset), data);
    out.stored = true;
    if (offset > 0) {
        out.out_of_order = true;
        out.dropped = gained < 0;
        if (!out.dropped && sack_) note_recent(seg.seq);
        // RFC 5681 §4.2: a duplicate ACK at once for each out-of-order segment. Batching
        // must not merge them: the sender counts them to detect the loss (§3.2).
        ack_now_ = true;
        ++dup_acks_owed_;
        return out;
    }
    const bool filled_hole = static_cast<std::size_t>(gained) > data.size() || buf_.has_out_of_order();
    out.in_order = static_cast<std::uint32_t>(gained);
    vars_.nxt += out.in_order;
    if (discard_readable) buf_.consume(buf_.readable());
    ++unacked_segments_;
    if (++segments_since_point_ >= ack_every && ack_point_count_ < ack_points_.size()) {
        ack_points_[ack_point_count_++] = vars_.nxt;
        segments_since_point_ = 0;
    }
    if (filled_hole || unacked_segments_ >= 2) ack_now_ = true;
    if (quick_acks_left_ > 0) {
        --quick_acks_left_;
        ack_now_ = true;
    }
    return out;
}

void Receiver::note_duplicate(const Segment& seg) {
    if (!sack_ || seg.payload.empty() || seg.seq + static_cast<std::uint32_t>(seg.payload.size()) > vars_.nxt) return;
    duplicate_ = wire::SackBlock{seg.seq.value(), (seg.seq + static_cast<std::uint32_t>(seg.payload.size())).value()};
}

void Receiver::note_recent(Seq32 seq) {
    std::size_t kept = 0;
    std::array<Seq32, 4> older = recent_;
    recent_[kept++] = seq;
    for (std::size_t i = 0; i < recent_count_ && kept < recent_.size(); ++i) {
        if (older[i] != seq) recent_[kept++] = older[i];
    }
    recent_count_ = kept;
}

std::size_t Receiver::sack_blocks(std::array<wire::SackBlock, 4>& out, std::size_t max_blocks) const {
    if (!sack_) return 0;
    max_blocks = std::min(max_blocks, out.size());
    std::size_t n = 0;
    const auto add = [&](wire::SackBlock b) {
        if (n >= max_blocks) return;
        for (std::size_t i = 0; i < n; ++i) {
            if (out[i] == b) return;
        }
        out[n++] = b;
    };
    if (duplicate_) add(*duplicate_);
    const auto block_of = [&](const std::pair<std::size_t, std::size_t>& r) {
        return wire::SackBlock{(vars_.nxt + static_cast<std::uint32_t>(r.first)).value(),
                               (vars_.nxt + static_cast<std::uint32_t>(r.second)).value()};
    };
    const auto ranges = buf_.ranges();
    // RFC 2018 §4: the block holding the latest segment first, then the most recently
    // reported ones, then the rest from the highest down.
    for (std::size_t k = 0; k < recent_count_; ++k) {
        if (recent_[k] < vars_.nxt) continue;
        const auto at = static_cast<std::size_t>(recent_[k] - vars_.nxt);
        for (const auto& r : ranges) {
            if (r.first <= at && at < r.second) add(block_of(r));
        }
    }
    for (std::size_t k = ranges.size(); k-- > 0;) add(block_of(ranges[k]));
    return n;
}

std::size_t Receiver::sack_block_count(std::size_t max_blocks) const {
    std::array<wire::SackBlock, 4> blocks;
    return sack_blocks(blocks, max_blocks);
}

void Receiver::fill_sack(wire::TcpOptions& options, std::size_t max_blocks) const {
    options.sack_count = static_cast<std::uint8_t>(sack_blocks(options.sack_blocks, max_blocks));
}

bool Receiver::note_fin(const Segment& seg) {
    if (fin_at_) return false;
    fin_at_ = seg.seq + static_cast<std::uint32_t>(seg.payload.size());
    if (*fin_at_ == vars_.nxt) return false;
    ack_now_ = true;  // out of order, like data (RFC 5681 §4.2)
    return true;
}

void Receiver::take_fin() {
    fin_received_ = true;
    vars_.nxt += 1;
    ack_now_ = true;
}

void Receiver::on_ack_sent(bool reported_sack) {
    if (reported_sack) duplicate_.reset();  // reported once (RFC 2883 §4)
    ack_now_ = false;
    read_since_update_ = false;
    unacked_segments_ = 0;
}

void Receiver::clear_ack_points() {
    ack_point_count_ = 0;
    segments_since_point_ = 0;
}

bool Receiver::owes_dup_ack() {
    if (!buf_.has_out_of_order()) dup_acks_owed_ = 0;
    dup_acks_owed_ = std::min<std::uint32_t>(dup_acks_owed_, 8);
    return dup_acks_owed_ > 0;
}

std::uint16_t Receiver::advertise_window(bool whole_buffer) {
    const Seq32 edge = vars_.nxt + offer(whole_buffer ? buf_.capacity() : buf_.room());
    if (vars_.adv_edge < vars_.nxt || edge - vars_.adv_edge >= static_cast<std::int32_t>(sws_threshold())) {
        vars_.adv_edge = edge;
    }
    return static_cast<std::uint16_t>(std::min<std::uint32_t>(vars_.wnd() >> vars_.wnd_shift, 0xffff));
}

std::uint16_t Receiver::syn_window(bool set_edge) {
    const auto wnd = static_cast<std::uint16_t>(std::min<std::size_t>(buf_.room(), 0xffff));
    if (set_edge) vars_.adv_edge = vars_.nxt + wnd;
    return wnd;
}

std::uint16_t Receiver::window_at(Seq32 point) const {
    const auto wnd = static_cast<std::uint32_t>(vars_.adv_edge - point) >> vars_.wnd_shift;
    return static_cast<std::uint16_t>(std::min<std::uint32_t>(wnd, 0xffff));
}

bool Receiver::window_update_due() const {
    if (!read_since_update_) return false;
    const Seq32 edge = vars_.nxt + offer(buf_.room());
    return edge - vars_.adv_edge >= static_cast<std::int32_t>(sws_threshold()) && vars_.wnd() < offer(buf_.capacity()) / 2;
}

// What the window field can say of `room` (without scaling, at most 64 KB: a larger
// buffer is no reason for an update that cannot announce it).
std::uint32_t Receiver::offer(std::size_t room) const {
    return static_cast<std::uint32_t>(std::min(room, std::size_t{0xffff} << vars_.wnd_shift));
}

std::uint32_t Receiver::sws_threshold() const {
    return std::min<std::uint32_t>(static_cast<std::uint32_t>(buf_.capacity() / 2), local_mss_);
}

}  // namespace ms::utcp
