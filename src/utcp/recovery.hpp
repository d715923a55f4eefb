// Contract: loss detection and recovery behind an interface, chosen per
// connection: NewReno (RFC 5681 §3.2, RFC 6582) when the peer does not SACK, and RACK-TLP
// (RFC 8985) with SACK-based recovery (RFC 6675) and Proportional Rate Reduction (RFC
// 6937) when it does, as in Linux. The connection tells it about every segment sent and
// every ACK (with its SACK blocks) and about retransmission timeouts; recovery decides
// which segments are lost, what may be resent and how much new data congestion control
// allows now, and tells the congestion controller what happened. It does no I/O and
// reads no clock: times come with each call.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>

#include "utcp/congestion.hpp"
#include "utcp/scoreboard.hpp"
#include "utcp/seq.hpp"
#include "wire/transport.hpp"

namespace ms::utcp {

// What the sender knows when an ACK arrives, or a timer fires.
struct AckContext {
    Seq32 una;                 // SND.UNA (after the ACK)
    Seq32 max;                 // the highest sequence number sent
    std::uint32_t flight = 0;  // bytes outstanding: SND.MAX - SND.UNA
    std::uint32_t smss = 0;
    std::uint64_t now_us = 0;
    std::uint32_t rtt_us = 0;  // an RTT sample this ACK gave; 0: none
    const RateSample* rate = nullptr;  // with SACK, the ACK's delivery rate sample

    // What congestion control is told of `delivered` bytes.
    [[nodiscard]] CcSample sample(std::uint32_t delivered) const {
        return {.now_us = now_us,
                .smss = smss,
                .acked = delivered,
                .flight = flight,
                .rtt_us = rtt_us,
                .una = una,
                .max = max,
                .rate = rate};
    }
};

struct AckInput {
    AckContext ctx;
    std::uint32_t acked = 0;   // bytes SND.UNA moved (SYN and FIN included)
    bool duplicate = false;    // a duplicate ACK (RFC 5681 §2)
    std::span<const wire::SackBlock> sacks;
    std::uint32_t srtt_us = 0; // 0: no sample yet
};

struct AckVerdict {
    bool recovery_started = false;  // fast retransmit or fast recovery began
    bool wake = false;              // something may be sent now
};

// A retransmission due: `max_len` bytes of sequence space from `seq` at most (the
// connection caps it at one segment).
struct Resend {
    Seq32 seq;
    std::uint32_t max_len;
};

// Counters of what recovery did, for ConnStats.
struct RecoveryStats {
    std::uint64_t lost_segments = 0;  // deemed lost (RACK, or all outstanding at an RTO)
    std::uint64_t loss_probes = 0;    // TLPs sent
    std::uint64_t reordering = 0;     // segments delivered out of the order they were sent
};

class LossRecovery {
public:
    virtual ~LossRecovery() = default;
    // The connection's initial send sequence number.
    virtual void start(Seq32 iss) = 0;
    // A segment [seq, seq + len) went out (a retransmission too).
    virtual void on_sent(Seq32 seq, std::uint32_t len, std::uint64_t now_us) = 0;
    virtual AckVerdict on_ack(const AckInput& ack, CongestionControl& cc) = 0;
    // An RTT sample from the RTT sampler (the handshake's included).
    virtual void on_rtt_sample(std::uint32_t) {}
    // The sender has nothing more to send while the window has room: rate samples until
    // what is in flight is delivered measure the application (delivery_rate.hpp).
    virtual void on_app_limited() {}
    // The retransmission timer expired (RFC 6298 §5, RFC 6675 §5.1).
    virtual void on_rto(const AckContext& ctx, CongestionControl& cc) = 0;
    // After an RTO: true if the sender goes back to SND.UNA and resends everything
    // (NewReno), false if only what the scoreboard holds lost is resent.
    [[nodiscard]] virtual bool rewinds_on_rto() const = 0;
    // The path carries segments of `max_len` bytes at most (the MSS dropped): larger ones
    // in flight are lost, and go again in pieces of that size. Recovery that rewinds on an
    // RTO does nothing here: the connection rewinds.
    virtual void on_mss_lowered(std::uint32_t) {}
    // Whether the segment holding `seq` is deemed lost (RACK's scoreboard; NewReno keeps none).
    [[nodiscard]] virtual bool deemed_lost(Seq32) const { return false; }
    // The next retransmission due now, if congestion control allows it.
    [[nodiscard]] virtual std::optional<Resend> next_resend(const AckContext& ctx, std::uint32_t cwnd) = 0;
    // Bytes of new data that congestion control allows now.
    [[nodiscard]] virtual std::uint32_t send_room(const AckContext& ctx, std::uint32_t cwnd) const = 0;
    [[nodiscard]] virtual bool in_recovery() const = 0;

    // RACK's reorder timer (RFC 8985 §6.2 step 5): when to look for losses again.
    [[nodiscard]] virtual std::optional<std::uint64_t> reorder_deadline() const { return std::nullopt; }
    virtual AckVerdict on_reorder_timeout(const AckContext&, CongestionControl&) { return {}; }
    // The tail loss probe's timeout (RFC 8985 §7.2) from now, if one may be sent; `srtt_us`
    // is empty before the first RTT sample.
    [[nodiscard]] virtual std::optional<std::uint64_t> probe_timeout(const AckContext&, std::optional<std::uint32_t>,
                                                                     std::uint64_t) const {
        return std::nullopt;
    }
    // The probe went (new data, or a segment again).
    virtual void on_probe_sent() {}
    // What a probe sends again when it carries no new data: the last segment sent, or in
    // recovery the first one not delivered.
    [[nodiscard]] virtual std::optional<Resend> probe_segment() const { return std::nullopt; }
    [[nodiscard]] const RecoveryStats& stats() const { return stats_; }

protected:
    RecoveryStats stats_;
};

// RFC 5681 §3.2 fast retransmit and fast recovery, with RFC 6582's partial ACKs.
class NewRenoRecovery final : public LossRecovery {
public:
    void start(Seq32 iss) override { recover_ = iss; }
    void on_sent(Seq32, std::uint32_t, std::uint64_t) override {}
    AckVerdict on_ack(const AckInput& ack, CongestionControl& cc) override;
    void on_rto(const AckContext& ctx, CongestionControl& cc) override;
    [[nodiscard]] bool rewinds_on_rto() const override { return true; }
    [[nodiscard]] std::optional<Resend> next_resend(const AckContext& ctx, std::uint32_t cwnd) override;
    [[nodiscard]] std::uint32_t send_room(const AckContext& ctx, std::uint32_t cwnd) const override;
    [[nodiscard]] bool in_recovery() const override { return in_recovery_; }

private:
    void on_new_ack(const AckContext& ctx, std::uint32_t acked, CongestionControl& cc);
    AckVerdict on_duplicate_ack(const AckContext& ctx, CongestionControl& cc);

    std::uint32_t dup_acks_ = 0;
    bool in_recovery_ = false;
    Seq32 recover_;                // RFC 6582 §3.2: the recovery point
    bool retransmit_una_ = false;  // fast retransmit or partial ACK: resend one segment
};

// RACK-TLP loss detection (RFC 8985) over a SACK scoreboard, with SACK-based recovery
// (RFC 6675) paced by PRR (RFC 6937).
class RackRecovery final : public LossRecovery {
public:
    void start(Seq32 iss) override { recover_ = highest_delivered_ = iss; }
    void on_sent(Seq32 seq, std::uint32_t len, std::uint64_t now_us) override;
    AckVerdict on_ack(const AckInput& ack, CongestionControl& cc) override;
    void on_rtt_sample(std::uint32_t us) override { min_rtt_us_ = std::min(min_rtt_us_, us); }
    void on_app_limited() override { rate_.on_app_limited(board_.in_flight()); }
    void on_rto(const AckContext& ctx, CongestionControl& cc) override;
    [[nodiscard]] bool rewinds_on_rto() const override { return false; }
    void on_mss_lowered(std::uint32_t max_len) override;
    [[nodiscard]] bool deemed_lost(Seq32 seq) const override { return board_.is_lost(seq); }
    [[nodiscard]] std::optional<Resend> next_resend(const AckContext& ctx, std::uint32_t cwnd) override;
    [[nodiscard]] std::uint32_t send_room(const AckContext& ctx, std::uint32_t cwnd) const override;
    [[nodiscard]] bool in_recovery() const override { return fast_recovery_ || loss_recovery_; }

    [[nodiscard]] std::optional<std::uint64_t> reorder_deadline() const override { return reorder_deadline_; }
    AckVerdict on_reorder_timeout(const AckContext& ctx, CongestionControl& cc) override;
    [[nodiscard]] std::optional<std::uint64_t> probe_timeout(const AckContext& ctx, std::optional<std::uint32_t> srtt_us,
                                                             std::uint64_t rto_us) const override;
    void on_probe_sent() override;
    [[nodiscard]] std::optional<Resend> probe_segment() const override;

private:
    // RFC 8985 §6.2 step 2: the most recently sent segment that was delivered.
    // Returns the RTT it measured, 0 if none.
    std::uint32_t on_delivered(const SentSegment& s, std::uint64_t now_us);
    [[nodiscard]] std::uint32_t reorder_window(std::uint32_t srtt_us) const;
    // §6.2 step 5: marks lost what was sent before the latest delivery by more than the
    // RTT and the reordering window; arms the reorder timer for the rest.
    void detect_losses(std::uint64_t now_us, std::uint32_t srtt_us);
    // Starts fast recovery if a loss was found (RFC 6675 §5, RFC 6937 §3).
    AckVerdict react_to_losses(const AckContext& ctx, CongestionControl& cc, std::uint32_t delivered);
    void reduce(const AckContext& ctx, std::uint32_t delivered, std::uint32_t ssthresh);

    Scoreboard board_;
    DeliveryRate rate_;
    Seq32 recover_;
    bool fast_recovery_ = false;  // RFC 6675 fast recovery, paced by PRR
    bool loss_recovery_ = false;  // after an RTO, until SND.MAX at the RTO is acknowledged
    // RACK (RFC 8985 §5.2).
    std::uint64_t rack_sent_us_ = 0;
    std::uint64_t rack_order_ = 0;  // 0: nothing delivered yet
    std::uint32_t rack_rtt_us_ = 0;
    std::uint32_t min_rtt_us_ = UINT32_MAX;
    Seq32 highest_delivered_;      // RACK.fack
    bool reordering_seen_ = false;
    std::optional<std::uint64_t> reorder_deadline_;
    std::uint32_t last_srtt_us_ = 0;
    // TLP (§7).
    bool probe_outstanding_ = false;
    // PRR (RFC 6937 §3).
    std::uint32_t recover_fs_ = 0;
    std::uint64_t prr_delivered_ = 0;
    std::uint64_t prr_out_ = 0;
    std::uint32_t send_quota_ = 0;  // bytes PRR lets go on this ACK
};

// The recovery a connection uses: RACK-TLP with SACK, NewReno without.
[[nodiscard]] std::unique_ptr<LossRecovery> make_loss_recovery(bool sack);

}  // namespace ms::utcp
