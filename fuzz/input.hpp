// Contract: reads a libFuzzer input front to back; past its end every read is zero,
// so a script never runs off its input.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ms::fuzz {

struct Input {
    const std::uint8_t* p;
    std::size_t n;
    std::uint8_t byte() {
        if (n == 0) return 0;
        --n;
        return *p++;
    }
    std::uint16_t u16() { return static_cast<std::uint16_t>(byte() << 8 | byte()); }
};

}  // namespace ms::fuzz
