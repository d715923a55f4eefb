// Contract: `msctl sockets`: the TCP listeners and connections that applications publish
// in their ports' socket tables (ring/socket_table.hpp), as `ss -ti` shows the kernel's.
// It asks each port it may inspect for a fresh snapshot, waits briefly for it, then reads
// it page by page; a snapshot that changes while it is read is read again.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>

#include "client/multistack.hpp"

namespace ms::msctl {

// One entry per port: {port, pid, total, shown, age_ms, invalid, fresh, sockets: [...]}.
[[nodiscard]] nlohmann::json sockets_json(client::ControlSession& conn, std::optional<std::uint32_t> only_port);
void print_sockets(const nlohmann::json& ports);

}  // namespace ms::msctl
