// Contract: the reasons header parsers give. Every parser returns
// base::Result<View, ParseError>: it rejects invalid input once, at the parse boundary,
// and names the reason; a view that parsed is safe to read without further bounds checks.
#pragma once

#include <string_view>

#include "base/result.hpp"

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

}  // namespace ms::wire
