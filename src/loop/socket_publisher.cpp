#include "loop/socket_publisher.hpp"

#include <algorithm>
#include <cstring>

namespace ms::loop {
namespace {

static_assert(ring::kTcpStateNames.size() == static_cast<std::size_t>(utcp::State::time_wait) + 1);
static_assert(ring::kFastOpenNames.size() == static_cast<std::size_t>(utcp::FastOpen::data_accepted) + 1);

void put_address(std::uint8_t (&out)[16], std::uint8_t& family, const wire::IpAddr& a) {
    std::memcpy(out, a.bytes.data(), 16);
    family = a.family == wire::IpFamily::v4 ? 4 : 6;
}

template <std::size_t N>
void put_name(char (&out)[N], std::string_view name) {
    const std::size_t n = std::min(name.size(), sizeof out - 1);
    std::memcpy(out, name.data(), n);
    out[n] = '\0';
}

}  // namespace

ring::SocketRecord SocketPublisher::record_of(const utcp::Connection& c) {
    ring::SocketRecord r{};
    r.state = static_cast<std::uint8_t>(c.state());
    put_address(r.local, r.family, c.tuple().local);
    put_address(r.remote, r.family, c.tuple().remote);
    r.local_port = c.tuple().local_port;
    r.remote_port = c.tuple().remote_port;
    r.options = static_cast<std::uint8_t>((c.sack_enabled() ? ring::sockopt::sack : 0) |
                                          (c.timestamps_enabled() ? ring::sockopt::timestamps : 0) |
                                          (c.ecn_enabled() ? ring::sockopt::ecn : 0) |
                                          (c.snd().wnd_shift > 0 || c.rcv().wnd_shift > 0 ? ring::sockopt::window_scale : 0) |
                                          (c.options().fast_open ? ring::sockopt::fast_open : 0));
    r.fast_open = static_cast<std::uint8_t>(c.fast_open());
    r.mss = c.send_mss();
    r.cwnd = c.cwnd();
    r.ssthresh = c.ssthresh();
    r.srtt_us = c.rtt().srtt();
    r.rto_us = static_cast<std::uint32_t>(std::min<std::uint64_t>(c.rtt().rto(), UINT32_MAX));
    r.snd_wnd = c.snd().wnd;
    r.rcv_wnd = c.rcv().wnd();
    r.unacked = static_cast<std::uint32_t>(c.snd().max - c.snd().una);
    const utcp::ConnStats st = c.stats();
    r.retransmits = st.retransmits;
    r.timeouts = st.timeouts;
    r.recoveries = st.fast_retransmits;
    r.bytes_in = st.bytes_in;
    r.bytes_out = st.bytes_out;
    put_name(r.congestion, c.options().congestion);
    const utcp::CcModel model = c.congestion_control().model();
    r.pacing_rate = c.pacing_rate();
    r.bandwidth = model.bandwidth;
    r.min_rtt_us = model.min_rtt_us;
    put_name(r.phase, model.phase);
    return r;
}

ring::SocketRecord SocketPublisher::record_of(const utcp::Listener& l, const utcp::StackConfig& config) {
    ring::SocketRecord r{};
    r.state = static_cast<std::uint8_t>(utcp::State::listen);
    put_address(r.local, r.family, config.address);
    put_address(r.remote, r.family, wire::IpAddr::any(config.address.family));
    r.local_port = l.port;
    r.options = l.options.fast_open ? ring::sockopt::fast_open : 0;
    put_name(r.congestion, l.options.congestion);
    return r;
}

void SocketPublisher::maybe_publish(const utcp::Stack& stack, std::uint64_t now_ms) {
    const std::uint32_t requested = ring::sockets_requested(table_);
    const bool asked = requested != answered_;
    const bool has_any = stack.connection_count() > 0 || stack.listener_count() > 0;
    const bool due = (has_any || published_any_) && now_ms - last_ms_ >= ring::kPublishIntervalMs;
    if (!asked && !due) return;
    records_.clear();
    stack.for_each_listener([&](const utcp::Listener& l) {
        if (records_.size() < ring::kSocketSlots) records_.push_back(record_of(l, stack.config()));
    });
    stack.for_each_connection([&](const utcp::Connection& c) {
        if (records_.size() < ring::kSocketSlots) records_.push_back(record_of(c));
    });
    ring::publish_sockets(table_, records_, stack.connection_count() + stack.listener_count(), now_ms);
    answered_ = requested;
    last_ms_ = now_ms;
    published_any_ = !records_.empty();
}

}  // namespace ms::loop
