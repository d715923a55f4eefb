#include "utcp/link.hpp"

#include "wire/segmentation.hpp"

namespace ms::utcp {

LinkTx MemoryLink::send_super(wire::Bytes headers, const SplitBytes& payload, std::uint16_t segment_size) {
    const std::size_t frames = segment_size == 0 ? 1 : (payload.size() + segment_size - 1) / segment_size;
    if (pending_.size() + sent_.size() + frames > capacity_) return LinkTx::no_room;
    Frame whole(headers.begin(), headers.end());
    for (wire::Bytes piece : {payload.first, payload.second}) whole.insert(whole.end(), piece.begin(), piece.end());
    ++super_segments_taken_;
    const base::Result<wire::HeaderShape, wire::ShapeError> shape = wire::header_shape(whole);
    if (!shape) return LinkTx::copied;  // the stack wrote a header it cannot read: a test will notice the loss
    const wire::Bytes cut_payload[] = {wire::Bytes(whole).subspan(shape->header_len)};
    const wire::SuperSegment s{wire::Bytes(whole).first(shape->header_len), *shape, segment_size, cut_payload};
    wire::Segmenter cut(s);
    while (!cut.done()) {
        Frame f(s.max_frame_len());
        f.resize(cut.next(f));
        pending_.push_back(std::move(f));
    }
    return LinkTx::copied;
}

}  // namespace ms::utcp
