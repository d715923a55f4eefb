#include "wire/bytes.hpp"

#include <arpa/inet.h>

#include <cstdio>

namespace ms::wire {

std::string MacAddr::to_string() const {
    char text[18];
    std::snprintf(text, sizeof text, "%02x:%02x:%02x:%02x:%02x:%02x", octets[0], octets[1],
                  octets[2], octets[3], octets[4], octets[5]);
    return text;
}

IpAddr IpAddr::v4(std::uint32_t host_order) {
    IpAddr a;
    store_be32(a.bytes.data(), host_order);
    return a;
}

IpAddr IpAddr::load_v4(const std::uint8_t* p) {
    IpAddr a;
    std::memcpy(a.bytes.data(), p, 4);
    return a;
}

IpAddr IpAddr::load_v6(const std::uint8_t* p) {
    IpAddr a{IpFamily::v6, {}};
    std::memcpy(a.bytes.data(), p, 16);
    return a;
}

std::string IpAddr::to_string() const {
    char text[INET6_ADDRSTRLEN];
    const int af = family == IpFamily::v4 ? AF_INET : AF_INET6;
    return inet_ntop(af, bytes.data(), text, sizeof text) ? text : "?";
}

bool parse_ip(const std::string& text, IpAddr& out) {
    IpAddr a;
    if (inet_pton(AF_INET, text.c_str(), a.bytes.data()) == 1) {
        out = a;
        return true;
    }
    a.family = IpFamily::v6;
    if (inet_pton(AF_INET6, text.c_str(), a.bytes.data()) == 1) {
        out = a;
        return true;
    }
    return false;
}

}  // namespace ms::wire
