#include "wire/icmp.hpp"

#include "wire/checksum.hpp"

namespace ms::wire {

Result<IcmpV4View> IcmpV4View::parse(Bytes message) {
    if (message.size() < kIcmpHeaderLen) return ParseError::truncated;
    return IcmpV4View(message);
}

bool IcmpV4View::checksum_ok() const { return ones_sum(p_) == 0xffff; }

void IcmpV4Repr::emit(MutBytes out, std::size_t payload_len) const {
    std::uint8_t* p = out.data();
    p[0] = type;
    p[1] = code;
    store_be16(p + 2, 0);
    store_be16(p + 4, ident);
    store_be16(p + 6, sequence);
    store_be16(p + 2, internet_checksum(out.first(kIcmpHeaderLen + payload_len)));
}

}  // namespace ms::wire
