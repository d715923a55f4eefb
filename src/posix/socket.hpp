// Contract: one UTCP socket of the POSIX layer, as the runtime keeps it (runtime.hpp):
// what every kind has (its descriptor's facts, the options setsockopt left) in Socket,
// and what only one kind has in that kind's state. A field of one kind cannot be
// reached from a socket of another: a socket is made in its kind's state at placement
// (listen, connect, accept, a UDP bind or first send) and goes back to Unused when it
// closes; it never changes kind in between. Not thread-safe: the runtime's lock guards it.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "client/multistack.hpp"
#include "posix/epoll_sets.hpp"
#include "posix/ip_marks.hpp"
#include "posix/readiness.hpp"
#include "posix/sockaddr.hpp"
#include "utcp/stack.hpp"

namespace ms::posix {

class Runtime;

// One received UDP datagram, waiting to be read.
struct Datagram {
    Endpoint from;
    std::vector<std::uint8_t> bytes;
};

// A slot in the free list, for the next socket.
struct Unused {};

// A 3-tuple this socket claimed on the switch, and the kernel socket that proves it
// (docs/DESIGN.md §3): a forked child takes the claim over with it.
struct Claimed {
    client::Claim claim;
    int proof_fd = -1;
};

// listen() on UTCP.
struct ListenerState : Claimed {
    utcp::Listener* listener = nullptr;
    bool adopted = false;  // inherited across fork and moved here: its claim is shared
};

// A TCP connection from connect() or accept(), from its handshake until it is closed,
// and after the stack closed it (what was left unread, and the error, stay readable).
struct StreamState {
    utcp::Connection* conn = nullptr;    // null once the stack closed it
    utcp::FourTuple tuple;               // kept after the connection goes
    std::string leftover;                // bytes the connection held when the stack closed it
    int pending_error = 0;               // SO_ERROR, cleared when read
    bool connecting = false;
    bool read_shut = false, write_shut = false;
    // Another process may hold its descriptor (a fork since it was made, or SCM_RIGHTS):
    // its last close here checks whether the connection moves (handoff.cpp).
    bool shared = false;
    // Inherited, and the process that had it never let go: it stays there (EOPNOTSUPP here).
    bool stays_elsewhere = false;
};

// A UDP socket on UTCP.
struct DatagramState : Claimed {
    Endpoint local;                      // the bound address and port
    std::deque<Datagram> inbox;
    std::size_t inbox_bytes = 0;         // bounded by options.recv_buffer, as SO_RCVBUF bounds Linux's
    std::uint64_t datagrams_dropped = 0;  // arrived with the inbox full
    std::optional<Endpoint> peer;        // connect(): the default destination, and the only source
    // What a send to each family gives, as placed (family_error): 0, or Linux's errno.
    int v4_error = 0, v6_error = EAFNOSUPPORT;

    [[nodiscard]] int error_toward(const Endpoint& to) const {
        return to.addr.family == wire::IpFamily::v4 ? v4_error : v6_error;
    }
};

using SocketState = std::variant<Unused, ListenerState, StreamState, DatagramState>;

// A visitor made of lambdas, one per state (or a generic one for the rest).
template <class... Cases>
struct Overloaded : Cases... {
    using Cases::operator()...;
};

// A UTCP socket. Type-stable: a Socket is reused, never freed, so that a number read
// from the descriptor table without the lock can be checked again under it. What every
// kind has (the descriptor's facts, the options setsockopt left) is here; the rest is
// in its state.
struct Socket {
    SocketState state;
    Runtime* owner = nullptr;            // the process's runtime that made it (fork: another's)
    std::optional<Readiness> ready;
    std::uint32_t events = 0;            // its state as epoll events, as refresh() last saw it
    std::vector<std::unique_ptr<EpollWatch>> watches;  // its entries in the library's epoll sets
    int references = 0;                  // descriptor numbers that name it
    int family = AF_INET;                // AF_INET or AF_INET6: how its names are written
    bool v6only = false;                 // IPV6_V6ONLY, as the kernel socket had it when placed
    bool nonblocking = false;            // O_NONBLOCK of its open file description (kept here: no fcntl per call)
    // options, as setsockopt left them
    utcp::ConnOptions options;
    bool reuse_addr = false, reuse_port = false;
    bool corked = false;                 // TCP_CORK: partial segments wait until uncorked
    std::optional<linger> linger_option;
    int recv_timeout_ms = -1, send_timeout_ms = -1;  // SO_RCVTIMEO, SO_SNDTIMEO; -1: none
    int priority = 0;  // SO_PRIORITY: kept, no effect on UTCP
    IpOptions ip;  // IP_TOS, IPV6_TCLASS, the flow label (options.marks follows it)

    template <class State>
    [[nodiscard]] bool is() const {
        return std::holds_alternative<State>(state);
    }
    template <class State>
    [[nodiscard]] State* as() {
        return std::get_if<State>(&state);
    }
    template <class State>
    [[nodiscard]] const State* as() const {
        return std::get_if<State>(&state);
    }
    [[nodiscard]] bool in_use() const { return !is<Unused>(); }
    // The stream's connection, while the stack has it; else null.
    [[nodiscard]] utcp::Connection* connection() const {
        const auto* stream = as<StreamState>();
        return stream ? stream->conn : nullptr;
    }
    // The listener's UTCP listener; else null.
    [[nodiscard]] utcp::Listener* listener() const {
        const auto* listening = as<ListenerState>();
        return listening ? listening->listener : nullptr;
    }
    // SO_ERROR: a stream's pending error, cleared by the read; other kinds have none.
    int take_pending_error() {
        auto* stream = as<StreamState>();
        return stream ? std::exchange(stream->pending_error, 0) : 0;
    }
    // The claim's part of a listener or a UDP socket; else null.
    [[nodiscard]] Claimed* claimed() {
        return std::visit(
            [](auto& st) -> Claimed* {
                if constexpr (std::is_base_of_v<Claimed, std::decay_t<decltype(st)>>) {
                    return &st;
                } else {
                    return nullptr;
                }
            },
            state);
    }
};

}  // namespace ms::posix
