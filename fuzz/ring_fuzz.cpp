// libFuzzer target: a hostile application. The input is a script of writes into the
// shared ring control block and slots of one port, interleaved with the switch's own
// steps. Whatever is written, the switch must never touch memory outside the region
// (ASan watches) and must never hand out a frame outside the port's buffers.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "ring/switch_ring.hpp"

namespace {

using namespace ms::ring;

struct Script {
    const std::uint8_t* p;
    std::size_t n;
    bool take(std::uint32_t& v) {
        if (n < 4) return false;
        std::memcpy(&v, p, 4);
        p += 4;
        n -= 4;
        return true;
    }
};

void check(bool ok) {
    if (!ok) std::abort();
}

void check_within(const Region& r, ms::wire::Bytes frame) {
    const auto* begin = r.base() + r.layout().buffers_offset;
    const auto* end = r.base() + r.layout().region_size;
    check(frame.empty() || (frame.data() >= begin && frame.data() + frame.size() <= end));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static Region region = Region::create(1, 8).value();
    // A fresh ring state for each input: the control blocks and slots as created.
    static const std::vector<std::uint8_t> pristine(region.base(), region.base() + region.layout().buffers_offset);
    std::memcpy(region.base(), pristine.data(), pristine.size());
    SwitchTxRing tx(region, 0);
    SwitchRxRing rx(region, 0);
    Script s{data, size};
    std::uint32_t op;
    std::uint32_t value;
    while (s.take(op) && s.take(value)) {
        const std::uint32_t which = op % 8;
        const std::uint32_t slot = (op >> 8) % 8;
        switch (which) {
            case 0: region.control(tx_ring(0)).head = value; break;
            case 1: region.control(tx_ring(0)).cur = value; break;
            case 2: region.control(rx_ring(0)).head = value; break;
            case 3: {
                // Any length, offset, flags (chains, super-segments, unknown bits) and gso_size.
                const auto flags = static_cast<std::uint16_t>((op >> 11) & 0x1f);
                region.slots(tx_ring(0))[slot] = Slot{
                    value, static_cast<std::uint16_t>(op >> 16), flags, static_cast<std::uint16_t>(value >> 16), 0, 0};
                break;
            }
            case 4: region.slots(rx_ring(0))[slot] = Slot{value, static_cast<std::uint16_t>(op >> 16), 0}; break;
            case 5: region.control(value % 2 ? rx_ring(0) : tx_ring(0)).tail = op >> 8; break;
            case 6: {
                const std::uint32_t n = tx.sync();
                check(n < 8);
                std::uint32_t k = 0;
                TxFrame f;
                while (k < n && tx.whole_frame(k, n, f) == TxFrameStatus::ready) {
                    check(f.slots >= 1 && f.slots <= kMaxChainSlots && k + f.slots <= n);
                    check(f.piece_count + 1 == f.slots && (f.slots == 1 || f.segment()));
                    check_within(region, f.head);
                    for (const auto& piece : f.payload_pieces()) {
                        check_within(region, piece);
                        volatile std::uint8_t sink = piece[piece.size() - 1];
                        (void)sink;
                    }
                    volatile std::uint8_t sink = f.head[f.head.size() - 1];
                    (void)sink;
                    k += f.slots;
                }
                (void)tx.release(k);
                break;
            }
            case 7: {
                const std::uint32_t n = rx.room(1 + value % 8);
                check(n < 8);
                std::uint32_t k = 0;
                for (; k < n && k < 4; ++k) {
                    auto buf = rx.buffer(k);
                    if (buf.empty()) break;
                    check(buf.data() >= region.base() + region.layout().buffers_offset &&
                          buf.data() + buf.size() <= region.base() + region.layout().region_size);
                    buf[buf.size() - 1] = 0x5a;
                    rx.set_length(k, 60);
                }
                rx.publish(k);
                break;
            }
        }
    }
    return 0;
}
