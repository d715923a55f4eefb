// Contract: a Link over a MultiStack port's tx ring (ring pair 0). Buffers are the
// ring's own slots, so a frame is written once, in place; flush() publishes the batch
// with one index store and at most one kick of the switch. A super-segment's payload
// that lies in the port's data area goes by reference, not copied.
#pragma once

#include <optional>

#include "ring/app_ring.hpp"
#include "utcp/link.hpp"

namespace ms::loop {

class PortLink final : public utcp::Link {
public:
    PortLink(ring::AppTxRing& tx, const ring::Region& region) : tx_(&tx), region_(&region) {}
    // Sends through another port from now on (the loop attached again); what was written
    // and not published is dropped with the old port.
    void rebind(ring::AppTxRing& tx, const ring::Region& region) {
        tx_ = &tx;
        region_ = &region;
        reserved_ = 0;
        space_ = 0;
    }

    wire::MutBytes next_tx_buffer() override {
        if (reserved_ >= space_ && (space_ = tx_->space()) <= reserved_) return {};
        return tx_->buffer(reserved_);
    }
    void commit_tx(std::size_t len) override { tx_->set_length(reserved_++, static_cast<std::uint16_t>(len)); }
    bool takes_super_segments() const override { return true; }
    // The headers in one slot, then the payload by reference when it lies in the port's
    // data area, else copied into as many slots as it needs (ring/abi.hpp).
    utcp::LinkTx send_super(wire::Bytes headers, const utcp::SplitBytes& payload, std::uint16_t segment_size) override;
    void flush() override {
        if (reserved_ == 0) return;
        tx_->publish(reserved_);
        space_ -= reserved_;
        reserved_ = 0;
    }
    [[nodiscard]] bool full() const { return reserved_ >= space_ && tx_->space() <= reserved_; }

private:
    static constexpr std::size_t kMaxReference = 65535;  // bytes one payload slot refers to

    // Slots free now beyond those written since the last publish.
    [[nodiscard]] std::size_t tx_room() {
        space_ = tx_->space();
        return space_ > reserved_ ? space_ - reserved_ : 0;
    }
    void commit_chained(std::size_t len, std::uint16_t flags, std::uint16_t gso_size) {
        tx_->set_slot(reserved_++, static_cast<std::uint16_t>(len), flags, gso_size);
    }
    // Where `bytes` lie in the port's data area, if they do.
    [[nodiscard]] std::optional<std::uint64_t> data_reference(wire::Bytes bytes) const;
    [[nodiscard]] static std::size_t reference_slots(const utcp::SplitBytes& payload);
    [[nodiscard]] static std::size_t copy_slots(std::size_t headers, std::size_t payload);
    // Slots that refer to `len` bytes at `offset` of the region, the last ending the chain if asked.
    void commit_references(std::uint64_t offset, std::size_t len, bool ends_chain);
    // The payload copied behind the headers in `first`, and on into further slots.
    void copy_into_slots(const utcp::SplitBytes& payload, wire::MutBytes first, std::size_t headers,
                         std::uint16_t segment_size);

    ring::AppTxRing* tx_;
    const ring::Region* region_;
    std::uint32_t reserved_ = 0;  // slots written since the last publish
    std::uint32_t space_ = 0;     // free slots when last looked at
};

}  // namespace ms::loop
