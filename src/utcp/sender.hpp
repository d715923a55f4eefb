// Contract: the send half of a TCP connection (RFC 9293 §3.3.1, §3.8.6, §3.10.7.4): the
// send sequence variables, the send buffer from SND.UNA on, our FIN's place, the peer's
// window (SND.WND with SND.WL1/WL2), and how much new data may go now (the window, then
// sender-side silly window avoidance and Nagle's algorithm). It does no I/O and keeps no
// timers: the connection builds and emits the segments it allows.
#pragma once

#include <cstdint>
#include <optional>

#include "utcp/buffers.hpp"
#include "utcp/segment.hpp"

namespace ms::utcp {

// RFC 9293 names (§3.3.1).
struct SendVars {
    Seq32 una, nxt, max;  // max: the highest sequence number sent (snd.nxt may go back after an RTO)
    std::uint32_t wnd = 0;  // scaled
    Seq32 wl1, wl2;
    Seq32 iss;
    std::uint8_t wnd_shift = 0;
    std::uint32_t max_wnd = 0;  // largest window the peer offered (RFC 9293 §3.8.6.2.1, RFC 5961 §5.2)
};

// What an ACK of new data released.
struct Acked {
    std::uint32_t bytes = 0;  // sequence space acknowledged (SYN and FIN included)
    bool fin = false;         // our FIN is acknowledged
};

// Whether a segment's window was taken (§3.10.7.4).
struct WindowUpdate {
    bool taken = false;
    bool grew = false;
};

class Sender {
public:
    Sender(std::size_t buffer_bytes, BufferPool& pool) : buf_(buffer_bytes, &pool) {}

    void start(Seq32 iss);
    // The peer's SYN: its window is never scaled (RFC 7323 §2.2).
    void take_syn_window(const Segment& syn, Seq32 wl2);
    void set_window_shift(std::uint8_t shift) { vars_.wnd_shift = shift; }

    // SND.UNA moves to `ack` (> SND.UNA); releases the acknowledged bytes.
    Acked on_new_ack(Seq32 ack);
    // §3.10.7.4: SND.WL1/WL2 keep old segments from changing the window.
    WindowUpdate update_window(const Segment& seg);
    // A segment [seq, seq + len) went out.
    void on_sent(Seq32 seq, std::uint32_t len, std::uint64_t now_us);
    // An RTO: send again from SND.UNA.
    void rewind() { vars_.nxt = vars_.una; }
    // A moved connection (connection_image.hpp): its variables, with everything in flight
    // to be sent again (SND.NXT back at SND.UNA).
    void resume(const SendVars& vars) {
        vars_ = vars;
        vars_.nxt = vars_.una;
    }

    // How much new data may go now (0: hold back); sets `with_fin` if our FIN may follow.
    // `cwnd_room`: the new bytes congestion control allows; `max_len`: the most one
    // emission may carry (smss, or a super-segment's worth); `force`: the SWS override
    // timer fired (RFC 1122 §4.2.3.4). Beyond one segment, only whole segments go, unless
    // the small tail could go alone (Nagle's rule applies to it as to any segment).
    [[nodiscard]] std::uint32_t len_to_send(std::uint32_t cwnd_room, std::uint32_t smss, std::uint32_t max_len, bool nodelay,
                                            bool force, bool& with_fin) const;

    // The application's end of the stream.
    void queue_fin() { fin_queued_ = true; }
    [[nodiscard]] bool fin_queued() const { return fin_queued_; }
    [[nodiscard]] const std::optional<Seq32>& fin_seq() const { return fin_seq_; }
    void fin_sent_at(Seq32 seq) { fin_seq_ = seq; }
    // Data or a FIN that has not gone yet.
    // Data queued but not sent, and what the peer's window takes beyond what is in flight.
    [[nodiscard]] std::size_t queued() const { return buf_.size() - (flight() - syn_in_flight()); }
    [[nodiscard]] std::uint32_t window_room() const { return vars_.wnd > flight() ? vars_.wnd - flight() : 0; }
    [[nodiscard]] bool unsent() const { return buf_.size() > flight() - syn_in_flight() || (fin_queued_ && !fin_seq_); }

    // A zero-window probe octet is in flight; when the window opens it goes again with
    // the data that follows it instead of waiting for a retransmission timeout.
    void probe_sent(bool with_octet) { probe_outstanding_ = with_octet; }
    void window_opened();

    [[nodiscard]] std::uint32_t flight() const { return static_cast<std::uint32_t>(vars_.nxt - vars_.una); }
    [[nodiscard]] std::uint32_t syn_in_flight() const { return vars_.una == vars_.iss ? 1 : 0; }
    // Where the data at `seq` is in the buffer, which starts at SND.UNA (after our SYN).
    [[nodiscard]] std::size_t data_offset(Seq32 seq) const {
        return static_cast<std::uint32_t>(seq - vars_.una) - syn_in_flight();
    }
    [[nodiscard]] std::uint64_t last_send_us() const { return last_send_us_; }
    [[nodiscard]] const SendVars& vars() const { return vars_; }
    [[nodiscard]] SendBuffer& buffer() { return buf_; }
    [[nodiscard]] const SendBuffer& buffer() const { return buf_; }

private:
    SendVars vars_;
    SendBuffer buf_;
    bool fin_queued_ = false;         // the application has no more data (FIN after the buffer)
    std::optional<Seq32> fin_seq_;    // the sequence number of our FIN, once sent
    bool probe_outstanding_ = false;  // a zero-window probe octet is in flight
    std::uint64_t last_send_us_ = 0;
};

}  // namespace ms::utcp
