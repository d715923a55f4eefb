// Contract: stack.hpp's connections that move between stacks (connection_image.hpp).
#include <algorithm>

#include "utcp/connection_image.hpp"
#include "utcp/stack.hpp"

namespace ms::utcp {

base::Result<ConnectionImage, ImageError> Stack::export_connection(const FourTuple& t) {
    auto it = conns_.find(t);
    if (it == conns_.end()) return ImageError::not_movable;
    Connection& c = *it->second;
    auto image = c.write_image();
    if (!image) return image;
    c.detach();
    std::erase(dirty_, &c);
    std::erase(work_, &c);
    if (train_.conn == &c) train_.conn = nullptr;
    for (auto& [port, l] : listeners_) std::erase(l->accept_queue, &c);
    // The port stays in use while segments of the tuple may still come (MovedTuples).
    moved_.add(t, now_us_, [this](const FourTuple& pushed_out) { release_port_if_free(pushed_out.local_port); });
    conns_.erase(it);
    ++stats_.connections_exported;
    return image;
}

base::Result<Connection*, ImageError> Stack::import_connection(const ConnectionImage& image, Handler* handler,
                                                               std::uint64_t now_us) {
    const FourTuple& t = image.tuple;
    const auto ours = local_address(t.local.family);
    if (!ours || *ours != t.local) return ImageError::wrong_address;
    if (conns_.contains(t) || time_wait_.find(t)) return ImageError::tuple_in_use;
    const auto mac = next_hop(t.remote);
    if (!mac) return ImageError::no_route;
    ConnOptions options = config_.defaults;
    options.nodelay = image.nodelay;
    options.keepalive = image.keepalive;
    options.min_rto_ms = image.min_rto_ms;
    options.max_rto_ms = image.max_rto_ms;
    options.delayed_ack_ms = image.delayed_ack_ms;
    options.keepalive_idle_ms = image.keepalive_idle_ms;
    options.keepalive_interval_ms = image.keepalive_interval_ms;
    options.keepalive_probes = image.keepalive_probes;
    options.send_buffer = image.send_buffer;
    options.recv_buffer = image.recv_buffer;
    options.sack = image.sack;
    options.timestamps = image.timestamps;
    options.ecn = image.ecn;
    options.congestion = congestion_.has(image.congestion) ? image.congestion : std::string(CongestionRegistry::kDefault);
    now_us_ = now_us;
    auto made = create({t, *mac}, options, handler);
    if (!made) return ImageError::too_many_connections;
    if (moved_.contains(t)) {  // it comes back: its port counts once, as a connection's
        moved_.erase(t);
        release_port_if_free(t.local_port);
    }
    Connection& c = *made.value();
    c.restore(image, now_us);
    ++stats_.connections_imported;
    return &c;
}

}  // namespace ms::utcp
