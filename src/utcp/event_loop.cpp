#include "utcp/event_loop.hpp"

#include <netinet/in.h>

#include <algorithm>
#include <ctime>

namespace ms::utcp {

namespace {

std::optional<wire::IpAddr> first_ipv4(const ctl::InfoReply& info) {
    for (std::uint32_t k = 0; k < info.address_count && k < ctl::InfoReply::kMaxAddresses; ++k) {
        if (info.address_families[k] == static_cast<std::uint8_t>(wire::IpFamily::v4)) {
            return wire::IpAddr::load_v4(info.addresses[k]);
        }
    }
    return std::nullopt;
}

client::Failure connect_failure(ConnectError e, const wire::IpAddr& remote) {
    const std::string why = std::string(to_string(e)) + " (" + remote.to_string() + ")";
    switch (e) {
        case ConnectError::no_route: return {client::Error::unreachable, why};
        case ConnectError::in_time_wait:
        case ConnectError::in_use: return {client::Error::address_in_use, why};
        case ConnectError::too_many_connections: return {client::Error::limit_reached, why};
    }
    return {client::Error::unreachable, why};
}

}  // namespace

std::uint64_t EventLoop::clock_ms() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000 + static_cast<std::uint64_t>(ts.tv_nsec) / 1'000'000;
}

client::Result<std::unique_ptr<EventLoop>> EventLoop::open(const std::string& socket_path, LoopOptions options) {
    auto control = client::Connection::open(socket_path);
    if (!control) return control.failure();
    auto info = control->info();
    if (!info) return info.failure();
    const std::optional<wire::IpAddr> address = options.address ? options.address : first_ipv4(info.value());
    if (!address || address->family != wire::IpFamily::v4) {
        return client::Failure{client::Error::no_route, "UTCP needs an IPv4 address on the switch's interface"};
    }
    auto port = control->attach(1, options.ring_slots, options.super_segments ? options.data_area_bytes : 0);
    if (!port) return port.failure();
    std::unique_ptr<EventLoop> loop(new EventLoop(std::move(control.value()), *port.value(), *address));
    loop->batch_ = std::max<std::uint32_t>(options.batch, 1);
    loop->start_stack(info.value(), options);
    CongestionRegistry& algorithms = loop->stack().congestion();
    for (auto& [name, make] : options.congestion_algorithms) algorithms.add(name, make);
    if (!algorithms.has(options.defaults.congestion)) {
        std::string known;
        for (const std::string& name : algorithms.names()) known += (known.empty() ? "" : ", ") + name;
        return client::Failure{client::Error::invalid_option,
                               "no congestion control '" + options.defaults.congestion + "' (known: " + known + ")"};
    }
    return loop;
}

EventLoop::EventLoop(client::Connection control, client::Port& port, const wire::IpAddr& address)
    : control_(std::move(control)),
      port_(port),
      address_(address),
      publisher_(port.region().base() + port.region().layout().sockets_offset) {}

EventLoop::~EventLoop() {
    stack_.reset();  // connections first; claims go with the control connection
}

void EventLoop::start_stack(const ctl::InfoReply& info, const LoopOptions& options) {
    StackConfig config;
    std::copy(std::begin(info.mac), std::end(info.mac), config.mac.octets.begin());
    config.address = address_;
    config.mtu = info.mtu != 0 ? info.mtu : 1500;
    config.defaults = options.defaults;
    config.time_wait_ms = options.time_wait_ms;
    config.super_segments = options.super_segments;
    config.resolve = [this](const wire::IpAddr& a) { return resolve(a); };
    link_ = std::make_unique<PortLink>(port_.tx(), port_.region());
    stack_ = std::make_unique<Stack>(std::move(config), *link_, clock_ms());
    stack_->on_port_free = [this](std::uint16_t p) { release_ephemeral(p); };
    stack_->buffers().set_shared_area(port_.region().data_area());
}

std::optional<wire::MacAddr> EventLoop::resolve(const wire::IpAddr& addr) {
    auto mac = control_.resolve(addr);
    if (!mac) return std::nullopt;
    return mac.value();
}

client::Result<Listener*> EventLoop::listen(std::uint16_t port, Handler& handler, const ConnOptions* options) {
    auto claim = control_.claim(IPPROTO_TCP, address_, port);
    if (!claim) return claim.failure();
    Listener* l = stack_->listen(claim->port, &handler, options);
    if (!l) return client::Failure{client::Error::address_in_use, "this loop listens on that port already"};
    return l;
}

client::Result<std::pair<Listener*, client::Claim>> EventLoop::listen_socket(int bound_fd, Handler* handler,
                                                                             const ConnOptions* options) {
    auto claim = control_.claim_socket(bound_fd);
    if (!claim) return claim.failure();
    Listener* l = stack_->listen(claim->port, handler, options);
    if (!l) {
        (void)control_.release(claim.value());
        return client::Failure{client::Error::address_in_use, "this loop listens on that port already"};
    }
    return std::pair{l, claim.value()};
}

client::Result<Connection*> EventLoop::connect(const wire::IpAddr& remote, std::uint16_t port, Handler& handler,
                                               const ConnOptions* options) {
    auto claim = control_.claim(IPPROTO_TCP, address_, 0);
    if (!claim) return claim.failure();
    return connect_claimed(claim.value(), remote, port, handler, options);
}

client::Result<Connection*> EventLoop::connect_socket(int bound_fd, const wire::IpAddr& remote, std::uint16_t port,
                                                      Handler& handler, const ConnOptions* options) {
    auto claim = control_.claim_socket(bound_fd);
    if (!claim) return claim.failure();
    return connect_claimed(claim.value(), remote, port, handler, options);
}

client::Result<Connection*> EventLoop::connect_claimed(const client::Claim& claim, const wire::IpAddr& remote,
                                                       std::uint16_t port, Handler& handler,
                                                       const ConnOptions* options) {
    const ConnectResult made = stack_->connect(claim.port, remote, port, &handler, options);
    if (!made) {
        (void)control_.release(claim);
        return connect_failure(made.error(), remote);
    }
    ephemeral_[claim.port] = claim;
    return &made.conn();
}

void EventLoop::release_ephemeral(std::uint16_t port) {
    auto it = ephemeral_.find(port);
    if (it == ephemeral_.end()) return;
    (void)control_.release(it->second);  // a failure leaves it to the daemon's cleanup at exit
    ephemeral_.erase(it);
}

client::Result<std::uint16_t> EventLoop::udp_bind(std::uint16_t port, UdpHandler& handler) {
    auto claim = udp_bind_claimed(control_.claim(IPPROTO_UDP, address_, port), handler);
    if (!claim) return claim.failure();
    return claim->port;
}

client::Result<client::Claim> EventLoop::udp_bind_socket(int bound_fd, UdpHandler& handler) {
    return udp_bind_claimed(control_.claim_socket(bound_fd), handler);
}

client::Result<client::Claim> EventLoop::udp_bind_claimed(client::Result<client::Claim> claim, UdpHandler& handler) {
    if (!claim) return claim.failure();
    if (!stack_->udp_bind(claim->port, handler)) {
        (void)control_.release(claim.value());
        return client::Failure{client::Error::address_in_use, "this loop has that UDP port already"};
    }
    return claim;
}

bool EventLoop::udp_send(std::uint16_t from_port, const wire::IpAddr& to, std::uint16_t to_port, wire::Bytes payload) {
    return stack_->udp_send(from_port, to, to_port, payload);
}

void EventLoop::run() {
    while (!stopping()) run_once();
}

void EventLoop::run_once(int max_sleep_ms) {
    const std::uint64_t now = clock_ms();
    if (turn(now) == 0) sleep_until_due(now, max_sleep_ms);
}

std::uint32_t EventLoop::turn(std::uint64_t now_ms) {
    const std::uint32_t frames = take_batch(now_ms);
    stack_->advance(now_ms);
    stack_->flush(now_ms);
    publisher_.maybe_publish(*stack_, now_ms);
    return frames;
}

std::uint32_t EventLoop::take_batch(std::uint64_t now_ms) {
    ring::AppRxRing& rx = port_.rx();
    const std::uint32_t n = std::min(rx.available(), batch_);
    for (std::uint32_t k = 0; k < n; ++k) stack_->input(rx.frame(k), now_ms);
    if (n > 0) rx.release(n);
    return n;
}

void EventLoop::sleep_until_due(std::uint64_t now_ms, int max_sleep_ms) {
    const std::uint64_t due = stack_->poll_at();
    if (due <= now_ms) {
        // Output is waiting for tx room: sleep until the switch frees slots.
        if (link_->full()) port_.wait_for_room(0, 1);
        return;
    }
    std::uint64_t wait = due == UINT64_MAX ? UINT64_MAX : due - now_ms;
    if (max_sleep_ms >= 0) wait = std::min<std::uint64_t>(wait, static_cast<std::uint64_t>(max_sleep_ms));
    // Wake at least every 100 ms so that stop() from a signal handler is seen.
    // The control socket is watched too: if multistackd goes away, the port is dead.
    if (port_.wait(0, static_cast<int>(std::min<std::uint64_t>(wait, 100)), control_.fd())) {
        daemon_gone_ = true;
        stop();
    }
}

}  // namespace ms::utcp
