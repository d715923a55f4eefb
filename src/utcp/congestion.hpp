// Contract: congestion control behind an interface (docs/DESIGN.md §7), so that the
// algorithm is chosen per connection at run time, and an application can bring its own.
// Loss recovery (recovery.hpp) owns loss detection and tells the algorithm what happened,
// with a sample of the ACK (bytes delivered, bytes in flight, the RTT, the time); the
// algorithm owns cwnd and ssthresh. Built in: NewReno (RFC 5681, RFC 6582) and CUBIC
// (RFC 9438) with HyStart++ (RFC 9406), the default as in Linux. Algorithms are made by
// name from a CongestionRegistry that each stack owns; an application registers its own.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "utcp/delivery_rate.hpp"
#include "utcp/seq.hpp"

namespace ms::utcp {

// What an ACK (or a timeout) tells the algorithm.
struct CcSample {
    std::uint64_t now_us = 0;
    std::uint32_t smss = 0;
    std::uint32_t acked = 0;   // bytes newly delivered (acknowledged or SACKed)
    std::uint32_t flight = 0;  // bytes outstanding: SND.MAX - SND.UNA
    std::uint32_t rtt_us = 0;  // an RTT sample from this ACK; 0: none
    Seq32 una;                 // SND.UNA after the ACK
    Seq32 max;                 // the highest sequence number sent
    // With SACK: the ACK's delivery rate sample (delivery_rate.hpp); null without.
    const RateSample* rate = nullptr;
};

// What a model-based algorithm knows of the path (msctl sockets shows it); zeros and no
// phase for the others.
struct CcModel {
    std::uint64_t bandwidth = 0;  // bytes per second
    std::uint32_t min_rtt_us = 0;
    std::string_view phase;       // [a-z_], at most 11 characters
};

class CongestionControl {
public:
    virtual ~CongestionControl() = default;
    [[nodiscard]] virtual std::string_view name() const = 0;
    [[nodiscard]] virtual std::uint32_t cwnd() const = 0;
    [[nodiscard]] virtual std::uint32_t ssthresh() const = 0;
    // Every ACK that delivered data, SACKed some or revealed a loss, in recovery or not,
    // before the calls below: what a model-based algorithm (BBR) learns from. Nothing for
    // the others.
    virtual void on_every_ack(const CcSample& /*s*/) {}
    // New data delivered outside recovery.
    virtual void on_ack(const CcSample& s) = 0;
    // A loss starts recovery: back off (set ssthresh; cwnd as fast recovery wants it).
    virtual void on_enter_recovery(const CcSample& s) = 0;
    // NewReno recovery (no SACK): a duplicate ACK means one more segment left the network.
    virtual void on_dup_ack_in_recovery(const CcSample& s) = 0;
    // NewReno recovery: an ACK that covers part but not all of the recovery point.
    virtual void on_partial_ack(const CcSample& s) = 0;
    // The ACK that covers the recovery point.
    virtual void on_exit_recovery(const CcSample& s) = 0;
    // The retransmission timer expired.
    virtual void on_rto(const CcSample& s) = 0;
    // The peer echoed Congestion Experienced (RFC 3168 §6.1.2): back off as for a loss,
    // without retransmitting; at most once per window (the connection sees to it).
    virtual void on_ecn(const CcSample& s) = 0;
    // After an idle period longer than the RTO (RFC 5681 §4.1).
    virtual void on_idle_restart(const CcSample& s) = 0;
    // The rate the connection's sends are paced to, bytes per second (pacer.hpp); 0 leaves
    // pacing to ConnOptions::pacing.
    [[nodiscard]] virtual std::uint64_t pacing_rate() const { return 0; }
    [[nodiscard]] virtual CcModel model() const { return {}; }
    // True while the algorithm itself holds the sender below what the path carries (BBR's
    // ProbeRTT): loss recovery then marks what goes application-limited, so that its low
    // delivery rates do not lower a bandwidth model.
    [[nodiscard]] virtual bool holds_sender_back() const { return false; }
    // A moved connection (connection_image.hpp) goes on with the window it had. An
    // algorithm that keeps more state than these two may ignore it and start afresh.
    virtual void resume(std::uint32_t /*cwnd*/, std::uint32_t /*ssthresh*/) {}
};

// The shared part of loss-based algorithms: slow start (RFC 5681 §3.1, with byte
// counting), fast recovery's window (RFC 5681 §3.2, RFC 6582 §3.2), the RTO's loss window
// and the idle restart. An algorithm says how far it backs off and how it grows after
// slow start. Public, so that an application's own algorithm can build on it.
class LossBasedControl : public CongestionControl {
public:
    [[nodiscard]] std::uint32_t cwnd() const override { return cwnd_; }
    [[nodiscard]] std::uint32_t ssthresh() const override { return ssthresh_; }
    void on_ack(const CcSample& s) override;
    void on_enter_recovery(const CcSample& s) override;
    void on_dup_ack_in_recovery(const CcSample& s) override { cwnd_ += s.smss; }  // RFC 5681 §3.2 step 4
    void on_partial_ack(const CcSample& s) override;
    void on_exit_recovery(const CcSample& s) override;
    void on_rto(const CcSample& s) override;
    void on_ecn(const CcSample& s) override;
    void on_idle_restart(const CcSample& s) override;
    void resume(std::uint32_t cwnd, std::uint32_t ssthresh) override {
        cwnd_ = cwnd;
        ssthresh_ = ssthresh;
    }

protected:
    explicit LossBasedControl(std::uint32_t smss);
    // The ssthresh after a loss (a recovery or an RTO).
    [[nodiscard]] virtual std::uint32_t back_off(const CcSample& s) = 0;
    // Congestion avoidance: grows cwnd_ for what `s` delivered.
    virtual void grow(const CcSample& s) = 0;
    // Slow start: grows cwnd_ by what was delivered (Linux's byte counting).
    virtual void slow_start(const CcSample& s);

    std::uint32_t cwnd_;
    std::uint32_t ssthresh_ = 0xffffffff;  // RFC 5681 §3.1: arbitrarily high at first
};

// Makes algorithms by name for one stack: "newreno" and "cubic" from the start.
class CongestionRegistry {
public:
    using Factory = std::function<std::unique_ptr<CongestionControl>(std::uint32_t smss)>;
    static constexpr std::string_view kDefault = "cubic";

    CongestionRegistry();
    // Adds an algorithm; false if the name is taken.
    bool add(std::string name, Factory make);
    // A new instance; null if no algorithm has the name.
    [[nodiscard]] std::unique_ptr<CongestionControl> make(std::string_view name, std::uint32_t smss) const;
    [[nodiscard]] bool has(std::string_view name) const { return factories_.find(name) != factories_.end(); }
    [[nodiscard]] std::vector<std::string> names() const;

private:
    std::map<std::string, Factory, std::less<>> factories_;
};

}  // namespace ms::utcp
