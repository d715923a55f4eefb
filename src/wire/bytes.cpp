#include "wire/bytes.hpp"

#include <arpa/inet.h>

#include <cstdio>

namespace ms::wire {

std::string MacAddr::to_string() const {
    char text[18];
    std::snprintf(text, sizeof text, "%02x:%02x:%02x:%02x:%02x:%02x", octets[0], octets[1], octets[2], octets[3], octets[4],
                  octets[5]);
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

bool parse_mac(const std::string& text, MacAddr& out) {
    unsigned m[6];
    char tail;
    if (std::sscanf(text.c_str(), "%x:%x:%x:%x:%x:%x%c", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5], &tail) != 6) {
        return false;
    }
    for (int i = 0; i < 6; ++i) {
        if (m[i] > 0xff) return false;
        out.octets[i] = static_cast<std::uint8_t>(m[i]);
    }
    return true;
}

std::string endpoint_to_string(const IpAddr& addr, std::uint16_t port) {
    const std::string host = addr.family == IpFamily::v6 ? "[" + addr.to_string() + "]" : addr.to_string();
    return host + ":" + std::to_string(port);
}

bool parse_endpoint(const std::string& text, IpAddr& addr, std::uint16_t& port) {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos || colon + 1 == text.size()) return false;
    std::string host = text.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    const std::string digits = text.substr(colon + 1);
    if (digits.size() > 5 || digits.find_first_not_of("0123456789") != std::string::npos) return false;
    const unsigned long value = std::stoul(digits);
    if (value > 65535 || !parse_ip(host, addr)) return false;
    port = static_cast<std::uint16_t>(value);
    return true;
}

}  // namespace ms::wire
