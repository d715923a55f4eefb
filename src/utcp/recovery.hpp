// Contract: loss recovery behind an interface (issue 10), so that NewReno and SACK-based
// recovery can be chosen per connection. The sender tells it about every ACK that moves
// SND.UNA and every duplicate ACK (RFC 5681 §2 decides which are duplicates) and about
// retransmission timeouts; recovery decides when to retransmit from SND.UNA and tells the
// congestion controller what happened. It does no I/O.
#pragma once

#include <cstdint>
#include <memory>

#include "utcp/congestion.hpp"
#include "utcp/seq.hpp"

namespace ms::utcp {

// What the sender knows when an ACK arrives.
struct AckContext {
    Seq32 una;             // SND.UNA after the ACK
    Seq32 max;             // the highest sequence number sent
    std::uint32_t flight;  // bytes outstanding after the ACK
    std::uint32_t smss;
};

enum class DupAckOutcome : std::uint8_t {
    counted,          // remembered; nothing to send
    inflated,         // in recovery: the window grew, new data may go
    fast_retransmit,  // recovery starts: resend from SND.UNA
};

class LossRecovery {
public:
    virtual ~LossRecovery() = default;
    // The connection's initial send sequence number.
    virtual void start(Seq32 iss) = 0;
    // An ACK acknowledged `acked` new bytes.
    virtual void on_new_ack(const AckContext& ack, std::uint32_t acked, CongestionControl& cc) = 0;
    virtual DupAckOutcome on_duplicate_ack(const AckContext& ack, CongestionControl& cc) = 0;
    // The retransmission timer expired; recovery ends (RFC 6298 §5, RFC 6582 §4).
    virtual void on_rto(const AckContext& ack, CongestionControl& cc) = 0;
    // True once per segment that should go again from SND.UNA now.
    [[nodiscard]] virtual bool take_retransmit() = 0;
    [[nodiscard]] virtual bool in_recovery() const = 0;
};

// RFC 5681 §3.2 fast retransmit and fast recovery, with RFC 6582's partial ACKs.
class NewRenoRecovery final : public LossRecovery {
public:
    void start(Seq32 iss) override { recover_ = iss; }
    void on_new_ack(const AckContext& ack, std::uint32_t acked, CongestionControl& cc) override;
    DupAckOutcome on_duplicate_ack(const AckContext& ack, CongestionControl& cc) override;
    void on_rto(const AckContext& ack, CongestionControl& cc) override;
    bool take_retransmit() override;
    [[nodiscard]] bool in_recovery() const override { return in_recovery_; }

private:
    std::uint32_t dup_acks_ = 0;
    bool in_recovery_ = false;
    Seq32 recover_;                // RFC 6582 §3.2: the recovery point
    bool retransmit_una_ = false;  // fast retransmit or partial ACK: resend one segment
};

}  // namespace ms::utcp
