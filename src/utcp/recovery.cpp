#include "utcp/recovery.hpp"

#include <utility>

namespace ms::utcp {

void NewRenoRecovery::on_new_ack(const AckContext& ack, std::uint32_t acked, CongestionControl& cc) {
    dup_acks_ = 0;
    if (in_recovery_ && ack.una >= recover_) {
        in_recovery_ = false;  // RFC 6582 §3.2 step 6: a full acknowledgment
        cc.on_exit_recovery(ack.flight, ack.smss);
    } else if (in_recovery_) {
        cc.on_partial_ack(acked, ack.smss);  // step 5: resend the next hole at once
        retransmit_una_ = true;
    } else {
        cc.on_ack(acked, ack.smss);
    }
}

// RFC 5681 §3.2, with RFC 6582 §3.2 step 1: no new recovery for losses from before the
// last recovery point.
DupAckOutcome NewRenoRecovery::on_duplicate_ack(const AckContext& ack, CongestionControl& cc) {
    if (in_recovery_) {
        cc.on_dup_ack_in_recovery(ack.smss);
        return DupAckOutcome::inflated;
    }
    if (++dup_acks_ != 3 || ack.una <= recover_) return DupAckOutcome::counted;
    in_recovery_ = true;
    recover_ = ack.max;
    cc.on_enter_recovery(ack.flight, ack.smss);
    retransmit_una_ = true;
    return DupAckOutcome::fast_retransmit;
}

void NewRenoRecovery::on_rto(const AckContext& ack, CongestionControl& cc) {
    cc.on_rto(ack.flight, ack.smss);
    in_recovery_ = false;
    retransmit_una_ = false;
    recover_ = ack.max;
    dup_acks_ = 0;
}

bool NewRenoRecovery::take_retransmit() { return std::exchange(retransmit_una_, false); }

}  // namespace ms::utcp
