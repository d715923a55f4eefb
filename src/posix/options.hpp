// Contract: getsockopt and setsockopt on a UTCP socket (socket.hpp), mapped onto UTCP's
// ConnOptions: a connection takes a change at once, a listener passes it on to the
// connections it accepts. Every kind keeps the same options; what reads a connection
// (TCP_INFO, TCP_MAXSEG, SO_ERROR) or a listener (SO_ACCEPTCONN) asks the socket's state.
// Errors as Linux gives them: EFAULT without a value, EINVAL for a value too short,
// ENOPROTOOPT for an option or level it does not know, ENOENT for an unknown congestion
// control, EDOM for a timeval out of range. Needs the runtime only through
// OptionContext, so that it runs without a daemon. The caller holds the runtime's lock.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <functional>

#include "posix/errno.hpp"
#include "posix/socket.hpp"
#include "utcp/congestion.hpp"

namespace ms::posix {

// What an option call needs besides the socket.
struct OptionContext {
    const utcp::CongestionRegistry& congestion;  // the names TCP_CONGESTION takes
    std::uint32_t unconnected_mss = 0;           // TCP_MAXSEG before a connection has its own
    int app_fd = -1;                             // the application's end: SO_RCVTIMEO is mirrored onto it
    std::function<void()> push_output;           // sends what a change let go (after an application call)
};

[[nodiscard]] base::Result<int, Errno> get_socket_option(Socket& s, const OptionContext& context, int level, int name,
                                                         void* value, socklen_t* len);
[[nodiscard]] base::Result<int, Errno> set_socket_option(Socket& s, const OptionContext& context, int level, int name,
                                                         const void* value, socklen_t len);
// What the connection gets: the socket's options, with Nagle on while corked.
[[nodiscard]] utcp::ConnOptions effective_options(const Socket& s);

}  // namespace ms::posix
