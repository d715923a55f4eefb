// Contract: the error values that header parsers return. Every parser rejects invalid
// input once, at the parse boundary, and names the reason; a view that parsed is safe
// to read without further bounds checks.
#pragma once

#include <string_view>
#include <utility>

namespace ms::wire {

enum class ParseError {
    truncated,           // the buffer ends before the header (or a field it names) does
    bad_version,         // IP version field does not match the header type
    bad_header_length,   // IPv4 IHL below 5 or beyond the buffer
    bad_data_offset,     // TCP data offset below 5 or beyond the segment
    bad_total_length,    // IP total/payload length or UDP length beyond the frame, or too small
    bad_option,          // malformed TCP option (length < 2, overruns, wrong fixed size)
    bad_extension,       // IPv6 extension header chain overruns the packet
    bad_hardware_type,   // ARP hardware/protocol sizes are not Ethernet/IPv4
    unsupported,         // well-formed, but not of a kind the parser takes (an ICMP echo)
};

[[nodiscard]] std::string_view to_string(ParseError e);

// A parsed value or the reason it could not be parsed. T is a cheap view type.
template <class T>
class [[nodiscard]] Result {
public:
    Result(T value) : value_(std::move(value)), ok_(true) {}  // NOLINT: implicit by design
    Result(ParseError error) : error_(error), ok_(false) {}   // NOLINT: implicit by design

    [[nodiscard]] bool ok() const { return ok_; }
    explicit operator bool() const { return ok_; }
    [[nodiscard]] const T& value() const { return value_; }
    const T* operator->() const { return &value_; }
    const T& operator*() const { return value_; }
    [[nodiscard]] ParseError error() const { return error_; }

private:
    T value_{};
    ParseError error_{};
    bool ok_;
};

}  // namespace ms::wire
