// Contract: publishes a Stack's listeners and connections into its port's socket table
// (ring/socket_table.hpp) for `msctl sockets`: when the daemon asks (it bumps the
// table's request count and kicks the port), and every kPublishIntervalMs while the stack
// has any. At most kSocketSlots records go in; the total says how many there were.
#pragma once

#include <cstdint>
#include <vector>

#include "ring/socket_table.hpp"
#include "utcp/stack.hpp"

namespace ms::loop {

class SocketPublisher {
public:
    // `table`: the socket table's start in the mapped port region.
    explicit SocketPublisher(std::uint8_t* table) : table_(table) {}
    // Publishes into another port's table from now on (the loop attached again).
    void rebind(std::uint8_t* table) {
        table_ = table;
        answered_ = 0;
        published_any_ = false;
    }

    // Once per loop turn: cheap unless a snapshot is due.
    void maybe_publish(const utcp::Stack& stack, std::uint64_t now_ms);

    [[nodiscard]] static ring::SocketRecord record_of(const utcp::Connection& c);
    [[nodiscard]] static ring::SocketRecord record_of(const utcp::Listener& l, const utcp::StackConfig& config);

private:
    std::uint8_t* table_;
    std::uint32_t answered_ = 0;    // the request count last answered
    std::uint64_t last_ms_ = 0;
    bool published_any_ = false;    // the last snapshot had records (an empty one must follow)
    std::vector<ring::SocketRecord> records_;
};

}  // namespace ms::loop
