#include "utcp/link.hpp"

#include "ring/abi.hpp"
#include "wire/segmentation.hpp"

namespace ms::utcp {

void MemoryLink::commit_chained(std::size_t len, std::uint16_t flags, std::uint16_t gso_size) {
    Frame piece = std::move(pending_.back());
    pending_.pop_back();
    piece.resize(len);
    if (flags & ring::kSlotSegment) {
        chain_ = std::move(piece);
        chain_gso_ = gso_size;
    } else {
        chain_.insert(chain_.end(), piece.begin(), piece.end());
    }
    if (flags & ring::kSlotMore) return;
    ++super_segments_taken_;
    const wire::ShapeResult shape = wire::header_shape(chain_);
    if (!shape) return;  // the stack wrote a header it cannot read: a test will notice the loss
    const wire::Bytes payload[] = {wire::Bytes(chain_).subspan(shape->header_len)};
    const wire::SuperSegment s{wire::Bytes(chain_).first(shape->header_len), *shape, chain_gso_, payload};
    wire::Segmenter cut(s);
    while (!cut.done()) {
        Frame f(s.max_frame_len());
        f.resize(cut.next(f));
        pending_.push_back(std::move(f));
    }
}

}  // namespace ms::utcp
