// Contract: why attaching to an interface failed. The enum names the cause for callers
// to branch on; the detail is the whole message a user sees (it names the interface,
// the queue where there is one, and the system's reason).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

#include "base/result.hpp"

namespace ms::nic {

enum class NicError : std::uint8_t {
    no_interface,     // no interface of that name
    no_mac,           // SIOCGIFHWADDR failed
    foreign_program,  // another XDP program is attached
    bpf_open,         // libbpf could not open the embedded object
    bpf_load,         // the kernel refused the program
    bpf_attach,       // neither native nor generic attach worked
    no_queues,        // an AF_XDP attachment of zero queues
    umem,             // the UMEM could not be mapped or created
    xsk_socket,       // the AF_XDP socket could not be created
    xsk_map,          // the socket could not be put into the XSK map
    packet_socket,    // the GSO socket (AF_PACKET) or one of its options
    bad_record,       // what a previous daemon left on the interface cannot be read (left_behind.hpp)
};

struct NicFailure {
    NicError error;
    std::string detail;
};

// "IFNAME: WHAT: strerror(ERR)".
inline NicFailure nic_failure(NicError error, const std::string& ifname, const std::string& what, int err) {
    return {error, ifname + ": " + what + ": " + std::strerror(err)};
}

}  // namespace ms::nic
