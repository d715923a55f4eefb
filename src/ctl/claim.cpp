#include "ctl/claim.hpp"

#include <cstring>

namespace ms::ctl {

Tuple to_tuple(const Claim& c) {
    Tuple t;
    t.protocol = c.protocol;
    t.family = static_cast<std::uint8_t>(c.addr.family);
    t.port = c.port;
    std::memcpy(t.addr, c.addr.bytes.data(), 16);
    return t;
}

Claim from_tuple(const Tuple& t) {
    Claim c;
    c.protocol = t.protocol;
    c.addr.family = t.family == 6 ? wire::IpFamily::v6 : wire::IpFamily::v4;
    std::memcpy(c.addr.bytes.data(), t.addr, 16);
    c.port = t.port;
    return c;
}

}  // namespace ms::ctl
