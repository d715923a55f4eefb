// Contract: a Link over a MultiStack port's tx ring (ring pair 0). Buffers are the
// ring's own slots, so a frame is written once, in place; flush() publishes the batch
// with one index store and at most one kick of the switch. A super-segment's payload
// that lies in the port's data area goes by reference, not copied.
#pragma once

#include "ring/app_ring.hpp"
#include "utcp/link.hpp"

namespace ms::utcp {

class PortLink final : public Link {
public:
    PortLink(ring::AppTxRing& tx, const ring::Region& region) : tx_(tx), region_(region) {}

    wire::MutBytes next_tx_buffer() override {
        if (reserved_ >= space_ && (space_ = tx_.space()) <= reserved_) return {};
        return tx_.buffer(reserved_);
    }
    void commit_tx(std::size_t len) override { tx_.set_length(reserved_++, static_cast<std::uint16_t>(len)); }
    bool takes_super_segments() const override { return true; }
    std::size_t tx_room() override {
        space_ = tx_.space();
        return space_ > reserved_ ? space_ - reserved_ : 0;
    }
    void commit_chained(std::size_t len, std::uint16_t flags, std::uint16_t gso_size) override {
        tx_.set_slot(reserved_++, static_cast<std::uint16_t>(len), flags, gso_size);
    }
    std::optional<std::uint64_t> data_reference(wire::Bytes bytes) const override {
        const wire::MutBytes area = region_.data_area();
        if (area.empty() || bytes.data() < area.data() || bytes.data() + bytes.size() > area.data() + area.size()) {
            return std::nullopt;
        }
        return region_.layout().data_offset + static_cast<std::uint64_t>(bytes.data() - area.data());
    }
    void commit_reference(std::uint64_t region_offset, std::size_t len, std::uint16_t flags) override {
        tx_.set_reference(reserved_++, region_offset, static_cast<std::uint16_t>(len), flags);
    }
    void flush() override {
        if (reserved_ == 0) return;
        tx_.publish(reserved_);
        space_ -= reserved_;
        reserved_ = 0;
    }
    [[nodiscard]] bool full() const { return reserved_ >= space_ && tx_.space() <= reserved_; }

private:
    ring::AppTxRing& tx_;
    const ring::Region& region_;
    std::uint32_t reserved_ = 0;  // slots written since the last publish
    std::uint32_t space_ = 0;     // free slots when last looked at
};

}  // namespace ms::utcp
