// Contract: congestion control behind an interface (DESIGN §7), so that the algorithm is
// chosen per connection at run time. The sender owns loss detection (duplicate ACKs,
// recovery points, the RTO) and tells the algorithm what happened; the algorithm owns
// cwnd and ssthresh. NewReno (RFC 5681 + RFC 6582) is the one implementation now.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

namespace ms::utcp {

class CongestionControl {
public:
    virtual ~CongestionControl() = default;
    [[nodiscard]] virtual std::string_view name() const = 0;
    [[nodiscard]] virtual std::uint32_t cwnd() const = 0;
    [[nodiscard]] virtual std::uint32_t ssthresh() const = 0;
    // New data acknowledged outside recovery.
    virtual void on_ack(std::uint32_t acked_bytes, std::uint32_t smss) = 0;
    // Three duplicate ACKs: recovery starts with `flight` bytes outstanding.
    virtual void on_enter_recovery(std::uint32_t flight, std::uint32_t smss) = 0;
    // A duplicate ACK during recovery (one more segment has left the network).
    virtual void on_dup_ack_in_recovery(std::uint32_t smss) = 0;
    // An ACK that covers part but not all of the recovery point.
    virtual void on_partial_ack(std::uint32_t acked_bytes, std::uint32_t smss) = 0;
    // The ACK that covers the recovery point; `flight` is what is still outstanding.
    virtual void on_exit_recovery(std::uint32_t flight, std::uint32_t smss) = 0;
    // The retransmission timer expired with `flight` bytes outstanding.
    virtual void on_rto(std::uint32_t flight, std::uint32_t smss) = 0;
    // After an idle period longer than the RTO (RFC 5681 §4.1).
    virtual void on_idle_restart(std::uint32_t smss) = 0;
};

enum class CongestionAlgorithm { new_reno };

[[nodiscard]] std::unique_ptr<CongestionControl> make_congestion_control(CongestionAlgorithm algorithm,
                                                                         std::uint32_t smss);

}  // namespace ms::utcp
