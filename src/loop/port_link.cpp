#include "loop/port_link.hpp"

#include <algorithm>

#include "ring/abi.hpp"

namespace ms::loop {

namespace {

// Copies `from`'s two spans, from `offset` on, into `out`; returns the bytes copied.
std::size_t copy_out(const utcp::SplitBytes& from, std::size_t offset, wire::MutBytes out) {
    std::size_t done = 0;
    for (wire::Bytes part : {from.first, from.second}) {
        if (offset >= part.size()) {
            offset -= part.size();
            continue;
        }
        const std::size_t n = std::min(part.size() - offset, out.size() - done);
        wire::copy_bytes(out.data() + done, part.subspan(offset, n));
        done += n;
        offset = 0;
        if (done == out.size()) break;
    }
    return done;
}

}  // namespace

utcp::LinkTx PortLink::send_super(wire::Bytes headers, const utcp::SplitBytes& payload, std::uint16_t segment_size) {
    const auto first_ref = data_reference(payload.first);
    const auto second_ref = data_reference(payload.second);
    const bool by_reference = first_ref && (payload.second.empty() || second_ref);
    const std::size_t slots = 1 + (by_reference ? reference_slots(payload) : copy_slots(headers.size(), payload.size()));
    if (tx_room() < slots) return utcp::LinkTx::no_room;
    const wire::MutBytes first = next_tx_buffer();
    wire::copy_bytes(first.data(), headers);
    if (!by_reference) {
        copy_into_slots(payload, first, headers.size(), segment_size);
        return utcp::LinkTx::copied;
    }
    commit_chained(headers.size(), ring::kSlotSegment | ring::kSlotMore, segment_size);
    commit_references(*first_ref, payload.first.size(), payload.second.empty());
    if (!payload.second.empty()) commit_references(*second_ref, payload.second.size(), true);
    return utcp::LinkTx::by_reference;
}

std::optional<std::uint64_t> PortLink::data_reference(wire::Bytes bytes) const {
    const wire::MutBytes area = region_->data_area();
    if (area.empty() || bytes.data() < area.data() || bytes.data() + bytes.size() > area.data() + area.size()) {
        return std::nullopt;
    }
    return region_->layout().data_offset + static_cast<std::uint64_t>(bytes.data() - area.data());
}

std::size_t PortLink::reference_slots(const utcp::SplitBytes& payload) {
    const auto pieces = [](std::size_t n) { return (n + kMaxReference - 1) / kMaxReference; };
    return pieces(payload.first.size()) + pieces(payload.second.size());
}

std::size_t PortLink::copy_slots(std::size_t headers, std::size_t payload) {
    const std::size_t first_room = ring::kMaxFrameSize - headers;
    const std::size_t later = payload > first_room ? payload - first_room : 0;
    return (later + ring::kBufferSize - 1) / ring::kBufferSize;
}

void PortLink::commit_references(std::uint64_t offset, std::size_t len, bool ends_chain) {
    for (std::size_t done = 0; done < len;) {
        const std::size_t n = std::min(len - done, kMaxReference);
        done += n;
        tx_->set_reference(reserved_++, offset + done - n, static_cast<std::uint16_t>(n),
                           ends_chain && done == len ? 0 : ring::kSlotMore);
    }
}

void PortLink::copy_into_slots(const utcp::SplitBytes& payload, wire::MutBytes first, std::size_t headers,
                               std::uint16_t segment_size) {
    const std::size_t total = payload.size();
    const std::size_t first_room = ring::kMaxFrameSize - headers;
    std::size_t done = copy_out(payload, 0, first.subspan(headers, std::min(first_room, total)));
    commit_chained(headers + done, static_cast<std::uint16_t>(ring::kSlotSegment | (done < total ? ring::kSlotMore : 0)),
                   segment_size);
    while (done < total) {
        const wire::MutBytes buf = next_tx_buffer();
        const std::size_t n = copy_out(payload, done, buf.first(std::min(buf.size(), total - done)));
        done += n;
        commit_chained(n, done < total ? ring::kSlotMore : 0, 0);
    }
}

}  // namespace ms::loop
