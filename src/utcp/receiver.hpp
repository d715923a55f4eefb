// Contract: the receive half of a TCP connection (RFC 9293 §3.10.7.4, seventh and eighth
// checks; §3.8.6.2.2): RCV.NXT and the advertised window, the receive buffer with its
// out-of-order ranges, the peer's FIN position, and the ACK policy (when an ACK is owed,
// delayed ACKs, duplicate ACKs for out-of-order data, ACK points inside a batch). It does
// no I/O: the connection asks it what to put in the ACK field and window of each segment
// it sends, and tells it when one went. With SACK (RFC 2018) it reports the out-of-order
// ranges it holds, the one that changed last first, and a duplicate first of all (D-SACK,
// RFC 2883).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>

#include "utcp/buffers.hpp"
#include "utcp/segment.hpp"

namespace ms::utcp {

// RFC 9293 names (§3.3.1).
struct RecvVars {
    Seq32 nxt;
    Seq32 irs;
    Seq32 adv_edge;  // RCV.NXT + RCV.WND as last advertised; never moves left
    std::uint8_t wnd_shift = 0;
    [[nodiscard]] std::uint32_t wnd() const { return static_cast<std::uint32_t>(adv_edge - nxt); }
};

// What one segment's text did.
struct TextOutcome {
    bool stored = false;        // anything was kept (in order or not)
    bool out_of_order = false;  // it starts past RCV.NXT
    bool dropped = false;       // out of order and not kept (no room or no range)
    std::uint32_t in_order = 0; // bytes that became readable
};

class Receiver {
public:
    Receiver(std::size_t buffer_bytes, std::uint16_t local_mss, BufferPool& pool)
        : buf_(buffer_bytes, &pool), local_mss_(local_mss) {}

    // The peer's SYN carried `irs` (RFC 9293 §3.10.7.2, §3.10.7.3).
    void start(Seq32 irs);
    // A moved connection (connection_image.hpp): RCV.NXT (past the peer's FIN if it came)
    // and the edge last advertised; the buffer is filled by the caller.
    void resume(Seq32 irs, Seq32 nxt, Seq32 adv_edge, bool fin_received) {
        vars_.irs = irs;
        vars_.nxt = nxt;
        vars_.adv_edge = Seq32::max(adv_edge, nxt);
        fin_received_ = fin_received;
    }
    void set_window_shift(std::uint8_t shift) { vars_.wnd_shift = shift; }
    // Segments ACKed at once from the start (slow start wants quick ACKs).
    void start_quick_acks(std::uint32_t count) { quick_acks_left_ = count; }

    // §3.10.7.4 first check: the four cases of segment length and receive window.
    [[nodiscard]] bool acceptable(const Segment& seg) const;
    // §3.10.7.4 seventh check: data, trimmed to the window, placed in order or kept out of
    // order; decides when an ACK is owed (RFC 5681 §4.2, RFC 1122 §4.2.3.2). With
    // `discard_readable` (nobody will read), in-order bytes are dropped once counted.
    TextOutcome on_text(const Segment& seg, std::uint32_t ack_every, bool discard_readable);
    // Notes where the peer's FIN sits; true if it came ahead of data still missing.
    bool note_fin(const Segment& seg);
    // True when every byte before the peer's FIN has arrived and the FIN is not taken yet.
    [[nodiscard]] bool fin_due() const { return fin_at_ && !fin_received_ && vars_.nxt == *fin_at_; }
    // §3.10.7.4 eighth check: the FIN takes one sequence number.
    void take_fin();
    [[nodiscard]] bool fin_received() const { return fin_received_; }

    // ACK policy.
    void owe_ack() { ack_now_ = true; }
    [[nodiscard]] bool ack_due() const { return ack_now_; }
    // Full segments received since the last ACK: the delayed-ACK timer runs for them.
    [[nodiscard]] bool ack_delayed() const { return unacked_segments_ > 0; }
    // Every segment we send carries the ACK: nothing more is owed. A D-SACK is reported
    // once, by the first segment that carries SACK blocks.
    void on_ack_sent(bool reported_sack);
    // ACK points of this batch: RCV.NXT after every `ack_every` in-order segments.
    [[nodiscard]] std::span<const Seq32> ack_points() const { return {ack_points_.data(), ack_point_count_}; }
    void clear_ack_points();
    // One duplicate ACK owed per out-of-order segment of this batch (at most 8); none
    // once every hole is filled, as they would duplicate an ACK of new data.
    [[nodiscard]] bool owes_dup_ack();
    void dup_ack_sent() { --dup_acks_owed_; }

    // SACK (RFC 2018 §4): on once both SYNs carried SACK-permitted.
    void use_sack(bool on) { sack_ = on; }
    // A segment entirely below RCV.NXT arrived again: RFC 2883 reports it first.
    void note_duplicate(const Segment& seg);
    // The SACK blocks the next ACK carries (at most `max_blocks`); none without SACK.
    [[nodiscard]] std::size_t sack_block_count(std::size_t max_blocks) const;
    void fill_sack(wire::TcpOptions& options, std::size_t max_blocks) const;

    // Window advertisement (§3.8.6.2.2): the right edge moves by at least the SWS
    // threshold and never left. With `whole_buffer`, all of it is offered (the
    // application closed: what arrives is discarded).
    [[nodiscard]] std::uint16_t advertise_window(bool whole_buffer);
    // The window of our SYN or SYN,ACK (never scaled, RFC 7323 §2.2); `set_edge` in a SYN,ACK.
    [[nodiscard]] std::uint16_t syn_window(bool set_edge);
    // The window field for an ACK of `point`, an earlier RCV.NXT.
    [[nodiscard]] std::uint16_t window_at(Seq32 point) const;
    // A pure window update is worth a segment only after the application read, when the
    // edge may move by the SWS threshold and the peer may be short of window (it has
    // under half the buffer). Otherwise the next ACK carries the new window anyway.
    [[nodiscard]] bool window_update_due() const;
    void on_app_read() { read_since_update_ = true; }

    [[nodiscard]] const RecvVars& vars() const { return vars_; }
    [[nodiscard]] RecvBuffer& buffer() { return buf_; }
    [[nodiscard]] const RecvBuffer& buffer() const { return buf_; }

private:
    [[nodiscard]] std::uint32_t sws_threshold() const;
    [[nodiscard]] std::uint32_t offer(std::size_t room) const;
    // Remembers the out-of-order range that holds `seq` as the most recent one.
    void note_recent(Seq32 seq);
    // The blocks to report, most recent first: at most 4 (the option's limit).
    [[nodiscard]] std::size_t sack_blocks(std::array<wire::SackBlock, 4>& out, std::size_t max_blocks) const;

    RecvVars vars_;
    RecvBuffer buf_;
    std::uint16_t local_mss_;
    bool ack_now_ = false;
    bool read_since_update_ = false;      // the application read since our last segment
    std::uint32_t unacked_segments_ = 0;  // full segments received since our last ACK
    std::uint32_t dup_acks_owed_ = 0;     // out-of-order segments in this batch
    // ACK points inside this batch, sent as ACKs of their own so that a batch of many
    // segments is not acknowledged only once.
    std::array<Seq32, 8> ack_points_{};
    std::uint32_t ack_point_count_ = 0;
    std::uint32_t segments_since_point_ = 0;
    std::uint32_t quick_acks_left_ = 0;
    bool sack_ = false;
    std::array<Seq32, 4> recent_{};  // starts of the most recently changed ranges, newest first
    std::size_t recent_count_ = 0;
    std::optional<wire::SackBlock> duplicate_;  // D-SACK for the next ACK
    bool fin_received_ = false;
    std::optional<Seq32> fin_at_;  // a FIN that arrived before the data preceding it
};

}  // namespace ms::utcp
