// Contract: how many descriptors this process has open, from /proc/self/fd; for
// msctl status and for the tests that prove no descriptor leaks.
#pragma once

#include <cstdint>

namespace ms::daemon {

[[nodiscard]] std::uint32_t open_descriptor_count();

}  // namespace ms::daemon
