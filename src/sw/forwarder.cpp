#include "sw/forwarder.hpp"

#include <cstring>

namespace ms::sw {
namespace {
constexpr std::size_t kArenaSize = std::size_t{kMaxBatch} * ring::kBufferSize;
// A super-segment staged into an empty forwarder always fits: its header copy, then one
// frame-sized room for each of its segments.
static_assert(wire::kMaxSegmentsPerSuper <= kMaxBatch);
static_assert(ring::kBufferSize + std::size_t{wire::kMaxSegmentsPerSuper} * ring::kBufferSize <= kArenaSize);
}  // namespace

Forwarder::Forwarder(std::uint32_t self, std::size_t destination_count, std::vector<FrameQueue*> outboxes,
                     KickWorker kick_worker, RingStats& handoff_stats)
    : self_(self),
      outboxes_(std::move(outboxes)),
      kick_worker_(std::move(kick_worker)),
      handoff_stats_(handoff_stats),
      frames_(kMaxBatch),
      head_(destination_count, kEnd),
      tail_(destination_count, kEnd),
      length_(destination_count, 0),
      outbox_used_(outboxes_.size(), false),
      arena_(std::make_unique<std::uint8_t[]>(kArenaSize)) {
    touched_.reserve(destination_count);
    published_.reserve(destination_count);
}

wire::Bytes Forwarder::copy_in(wire::Bytes frame) {
    std::uint8_t* at = arena_.get() + arena_used_;
    std::memcpy(at, frame.data(), frame.size());
    arena_used_ += (frame.size() + 63) & ~std::size_t{63};  // keep copies cache-line aligned
    return {at, frame.size()};
}

void Forwarder::stage(wire::Bytes frame, std::uint32_t dest) {
    if (frame.size() > ring::kMaxFrameSize) {
        handoff_stats_.drop(DropReason::oversize);
        return;
    }
    const std::uint32_t i = count_++;
    frames_[i] = Staged{frame.data(), static_cast<std::uint16_t>(frame.size()), kEnd};
    if (head_[dest] == kEnd) {
        head_[dest] = i;
        touched_.push_back(dest);
    } else {
        frames_[tail_[dest]].next = i;
    }
    tail_[dest] = i;
    ++length_[dest];
}

void Forwarder::stage_super(const wire::SuperSegment& s, std::uint32_t dest, PortRing* tap) {
    // No flush here: the super-segment's header copy lies in the arena, which a flush would
    // hand out again while the segmenter still reads it. The caller flushed before copying
    // the header in, and the bounds below make every super-segment fit after that.
    const std::size_t room = (s.max_frame_len() + 63) & ~std::size_t{63};
    wire::Segmenter cut(s);
    while (!cut.done()) {
        std::uint8_t* at = arena_.get() + arena_used_;
        const std::size_t len = cut.next({at, room});
        arena_used_ += room;
        stage({at, len}, dest);
        if (tap) tap_frame(*tap, {at, len}, TapDirection::from_application);
    }
}

void Forwarder::stage_handed_over(const FrameCell& cell) {
    const std::optional<wire::Bytes> frame = cell.frame();
    if (!frame) {
        handoff_stats_.drop(DropReason::oversize);
    } else if (cell.tag >= destinations_->size() || (*destinations_)[cell.tag].generation != cell.generation) {
        handoff_stats_.drop(DropReason::stale_destination);
    } else {
        stage(*frame, cell.tag);
    }
}

void Forwarder::prefetch(std::uint32_t dest) const {
    const Destination& d = (*destinations_)[dest];
    if (!d.ring || d.owner != self_) return;
    __builtin_prefetch(d.port);
    __builtin_prefetch(&d.ring->stats, 1);
    d.ring->rx.prefetch();
}

std::uint32_t Forwarder::flush() {
    // A batch spread over many ports touches each port's metadata once: fetching a few
    // destinations ahead overlaps those cache misses, so the cost per frame stays flat
    // as the number of ports grows.
    constexpr std::size_t kAhead = 8;
    for (std::size_t t = 0; t < std::min(kAhead, touched_.size()); ++t) prefetch(touched_[t]);
    std::uint32_t sent = 0;
    for (std::size_t t = 0; t < touched_.size(); ++t) {
        if (t + kAhead < touched_.size()) prefetch(touched_[t + kAhead]);
        const std::uint32_t dest = touched_[t];
        const Destination& d = (*destinations_)[dest];
        const std::uint32_t first = head_[dest];
        if (!d.ring && !d.nic) drop_rest(handoff_stats_, DropReason::port_failed, first);
        else if (d.owner != self_) sent += deliver_to_inbox(d.owner, dest, first);
        else if (d.ring) sent += deliver_to_port(d, first, length_[dest]);
        else sent += deliver_to_nic(d, first);
        head_[dest] = kEnd;
        length_[dest] = 0;
    }
    kick_sleepers();
    for (std::uint32_t w = 0; w < outboxes_.size(); ++w) {
        if (!outbox_used_[w]) continue;
        outbox_used_[w] = false;
        kick_worker_(w);
    }
    touched_.clear();
    count_ = 0;
    arena_used_ = 0;
    return sent;
}

std::uint32_t Forwarder::deliver_to_port(const Destination& d, std::uint32_t first, std::uint32_t count) {
    PortRing& r = *d.ring;
    if (d.port->is_failed()) {
        drop_rest(r.stats, DropReason::port_failed, first);
        return 0;
    }
    if (r.fault) {
        const auto now = FaultInjector::Clock::now();
        for (std::uint32_t i = first; i != kEnd; i = frames_[i].next) {
            if (!r.fault->offer({frames_[i].data, frames_[i].len}, now)) r.stats.drop(DropReason::fault_injected);
        }
        return release_faulty(r);
    }
    const std::uint32_t room = r.rx.room(count);
    std::uint32_t n = 0;
    std::uint64_t bytes = 0;
    std::uint32_t i = first;
    for (; i != kEnd && n < room; i = frames_[i].next, ++n) {
        if (!put_rx(r, n, {frames_[i].data, frames_[i].len})) break;
        bytes += frames_[i].len;
    }
    if (!finish_rx(r, n, bytes)) {
        drop_rest(r.stats, DropReason::port_failed, first);
        return 0;
    }
    drop_rest(r.stats, DropReason::ring_full, i);
    return n;
}

bool Forwarder::put_rx(PortRing& r, std::uint32_t k, wire::Bytes frame) {
    wire::MutBytes buf = r.rx.buffer(k);
    if (buf.empty()) return false;  // a bad slot: the ring has latched its fault
    std::memcpy(buf.data(), frame.data(), frame.size());
    r.rx.set_length(k, static_cast<std::uint16_t>(frame.size()));
    tap_frame(r, frame, TapDirection::to_application);
    return true;
}

bool Forwarder::finish_rx(PortRing& r, std::uint32_t n, std::uint64_t bytes) {
    if (r.rx.failed()) {
        r.port_object->fail(r, r.rx.fault());
        return false;
    }
    r.rx.publish(n);
    if (n) published_.push_back(&r);
    r.stats.rx_frames.add(n);
    r.stats.rx_bytes.add(bytes);
    return true;
}

std::uint32_t Forwarder::deliver_to_nic(const Destination& d, std::uint32_t first) {
    NicQueue& q = *d.nic;
    const std::uint32_t room = q.tx_space();
    std::uint32_t n = 0;
    std::uint64_t bytes = 0;
    std::uint32_t i = first;
    for (; i != kEnd && n < room; i = frames_[i].next, ++n) {
        std::memcpy(q.tx_buffer(n).data(), frames_[i].data, frames_[i].len);
        q.tx_set_length(n, frames_[i].len);
        bytes += frames_[i].len;
    }
    q.tx_commit(n);
    d.stats->tx_frames.add(n);
    d.stats->tx_bytes.add(bytes);
    drop_rest(*d.stats, DropReason::ring_full, i);
    return n;
}

std::uint32_t Forwarder::deliver_to_inbox(std::uint32_t owner, std::uint32_t dest, std::uint32_t first) {
    FrameQueue& q = *outboxes_[owner];
    const std::uint32_t room = q.space();
    std::uint32_t n = 0;
    std::uint32_t i = first;
    const std::uint32_t generation = (*destinations_)[dest].generation;
    for (; i != kEnd && n < room; i = frames_[i].next, ++n) {
        FrameCell& c = q.producer_cell(n);
        (void)c.store({frames_[i].data, frames_[i].len});  // stage() bounded every frame to a cell
        c.tag = dest;
        c.generation = generation;
    }
    q.commit(n);
    outbox_used_[owner] = outbox_used_[owner] || n > 0;
    handoff_stats_.tx_frames.add(n);
    // The destination's counters belong to its owner, so an inbox overflow is counted
    // on this worker's own handoff counters.
    drop_rest(handoff_stats_, DropReason::ring_full, i);
    return n;
}

std::uint32_t Forwarder::release_faulty(PortRing& r) {
    if (r.port_object->is_failed()) return 0;
    const auto now = FaultInjector::Clock::now();
    std::uint32_t n = 0;
    std::uint64_t bytes = 0;
    while (auto f = r.fault->take_ready(now)) {
        if (r.rx.room(n + 1) <= n) {
            r.stats.drop(DropReason::ring_full);
            continue;
        }
        if (!put_rx(r, n, *f)) break;
        bytes += f->size();
        ++n;
    }
    return finish_rx(r, n, bytes) ? n : 0;
}

void Forwarder::kick_sleepers() {
    if (published_.empty()) return;
    // Dekker with AppRing::prepare_to_sleep: our tail stores must be visible before we
    // read the kick flags. One fence for every ring of the batch, not one per ring.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    for (PortRing* r : published_) {
        if (r->rx.application_asked_for_kick()) r->to_app.notify();
    }
    published_.clear();
}

void Forwarder::drop_rest(RingStats& stats, DropReason reason, std::uint32_t from) {
    std::uint64_t n = 0;
    for (std::uint32_t i = from; i != kEnd; i = frames_[i].next) ++n;
    if (n) stats.drop(reason, n);
}

}  // namespace ms::sw
