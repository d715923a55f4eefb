#include "loop/event_loop.hpp"

#include <netinet/in.h>

#include <algorithm>
#include <ctime>

namespace ms::loop {

namespace {

bool is_link_local(const wire::IpAddr& a) {
    return a.family == wire::IpFamily::v6 && a.bytes[0] == 0xfe && (a.bytes[1] & 0xc0) == 0x80;
}

// The interface's first IPv4 address and first global IPv6 address.
std::vector<wire::IpAddr> interface_addresses(const ctl::InfoReply& info) {
    std::optional<wire::IpAddr> v4;
    std::optional<wire::IpAddr> v6;
    for (std::uint32_t k = 0; k < info.address_count && k < ctl::InfoReply::kMaxAddresses; ++k) {
        if (info.address_families[k] == static_cast<std::uint8_t>(wire::IpFamily::v4)) {
            if (!v4) v4 = wire::IpAddr::load_v4(info.addresses[k]);
        } else if (const wire::IpAddr a = wire::IpAddr::load_v6(info.addresses[k]); !v6 && !is_link_local(a)) {
            v6 = a;
        }
    }
    std::vector<wire::IpAddr> out;
    for (const auto& a : {v4, v6}) {
        if (a) out.push_back(*a);
    }
    return out;
}

// At most one address per family, and at least one.
std::optional<client::Failure> check_addresses(const std::vector<wire::IpAddr>& addresses) {
    if (addresses.empty()) {
        return client::Failure{client::Error::no_route, "UTCP needs an IPv4 or IPv6 address on the switch's interface"};
    }
    const auto v4 = std::count_if(addresses.begin(), addresses.end(),
                                  [](const wire::IpAddr& a) { return a.family == wire::IpFamily::v4; });
    if (v4 > 1 || addresses.size() - static_cast<std::size_t>(v4) > 1) {
        return client::Failure{client::Error::invalid_option, "a loop has at most one IPv4 and one IPv6 address"};
    }
    return std::nullopt;
}

client::Failure connect_failure(utcp::ConnectError e, const wire::IpAddr& remote) {
    const std::string why = std::string(utcp::to_string(e)) + " (" + remote.to_string() + ")";
    switch (e) {
        case utcp::ConnectError::no_route: return {client::Error::unreachable, why};
        case utcp::ConnectError::in_time_wait:
        case utcp::ConnectError::in_use: return {client::Error::address_in_use, why};
        case utcp::ConnectError::too_many_connections: return {client::Error::limit_reached, why};
    }
    return {client::Error::unreachable, why};
}

}  // namespace

std::uint64_t EventLoop::clock_us() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000 + static_cast<std::uint64_t>(ts.tv_nsec) / 1000;
}

base::Result<std::unique_ptr<EventLoop>, client::Failure> EventLoop::open(const std::string& socket_path,
                                                                          LoopOptions options) {
    auto control = client::ControlSession::open(socket_path);
    if (!control) return control.error();
    control->set_descriptor_floor(options.descriptor_floor);
    auto info = control->info();
    if (!info) return info.error();
    const std::vector<wire::IpAddr> addresses = options.addresses.empty() ? interface_addresses(info.value())
                                                                          : options.addresses;
    if (auto bad = check_addresses(addresses)) return *bad;
    auto port = control->attach(1, options.ring_slots, options.super_segments ? options.data_area_bytes : 0);
    if (!port) return port.error();
    const auto secrets = utcp::draw_secrets();
    if (!secrets) return client::Failure{client::Error::system, utcp::to_string(secrets.error())};
    std::unique_ptr<EventLoop> loop(new EventLoop(std::move(control.value()), *port.value(), options, socket_path));
    loop->batch_ = std::max<std::uint32_t>(options.batch, 1);
    loop->start_stack(info.value(), options, addresses, *secrets);
    utcp::CongestionRegistry& algorithms = loop->stack().congestion();
    for (auto& [name, make] : options.congestion_algorithms) algorithms.add(name, make);
    if (!algorithms.has(options.defaults.congestion)) {
        std::string known;
        for (const std::string& name : algorithms.names()) known += (known.empty() ? "" : ", ") + name;
        return client::Failure{client::Error::invalid_option,
                               "no congestion control '" + options.defaults.congestion + "' (known: " + known + ")"};
    }
    return loop;
}

EventLoop::EventLoop(client::ControlSession control, client::AppPort& port, const LoopOptions& options,
                     std::string socket_path)
    : control_(std::move(control)),
      port_(&port),
      socket_path_(std::move(socket_path)),
      log_(options.log),
      data_area_bytes_(options.super_segments ? options.data_area_bytes : 0),
      publisher_(port.region().base() + port.region().layout().sockets_offset) {}

std::vector<wire::IpAddr> EventLoop::addresses() const {
    std::vector<wire::IpAddr> out;
    for (const auto family : {wire::IpFamily::v4, wire::IpFamily::v6}) {
        if (const auto a = stack_->local_address(family)) out.push_back(*a);
    }
    return out;
}

base::Result<std::vector<client::Claim>, client::Failure> EventLoop::claim_everywhere(std::uint8_t protocol,
                                                                                      std::uint16_t port,
                                                                                      client::Sharing sharing) {
    std::vector<client::Claim> claims;
    for (const wire::IpAddr& a : addresses()) {
        auto claim = control_.claim(protocol, a, claims.empty() ? port : claims.front().port, sharing);
        if (!claim) {
            for (const client::Claim& c : claims) (void)control_.release(c);
            return claim.error();
        }
        claims.push_back(claim.value());
    }
    return claims;
}

EventLoop::~EventLoop() {
    stack_.reset();  // connections first; claims go with the control connection
}

void EventLoop::start_stack(const ctl::InfoReply& info, const LoopOptions& options,
                            const std::vector<wire::IpAddr>& addresses, const utcp::StackSecrets& secrets) {
    utcp::StackConfig config;
    std::copy(std::begin(info.mac), std::end(info.mac), config.mac.octets.begin());
    config.address = wire::IpAddr::any(wire::IpFamily::v4);
    for (const wire::IpAddr& a : addresses) {
        if (a.family == wire::IpFamily::v4) config.address = a;
        else config.address6 = a;
    }
    config.mtu = info.mtu != 0 ? info.mtu : 1500;
    config.defaults = options.defaults;
    config.time_wait_ms = options.time_wait_ms;
    config.super_segments = options.super_segments;
    config.resolve = [this](const wire::IpAddr& a) { return resolve(a); };
    link_ = std::make_unique<PortLink>(port_->tx(), port_->region());
    stack_ = std::make_unique<utcp::Stack>(std::move(config), *link_, clock_us(), secrets);
    stack_->on_port_free = [this](std::uint16_t p) { release_ephemeral(p); };
    stack_->buffers().set_shared_area(port_->region().data_area());
}

std::optional<wire::MacAddr> EventLoop::resolve(const wire::IpAddr& addr) {
    auto mac = control_.resolve(addr);
    if (!mac) return std::nullopt;
    return mac.value();
}

base::Result<utcp::Listener*, client::Failure> EventLoop::listen(std::uint16_t port, utcp::Handler& handler,
                                                                 const utcp::ConnOptions* options, client::Sharing sharing) {
    auto claims = claim_everywhere(IPPROTO_TCP, port, sharing);
    if (!claims) return claims.error();
    utcp::Listener* l = stack_->listen(claims->front().port, &handler, options);
    if (!l) return client::Failure{client::Error::address_in_use, "this loop listens on that port already"};
    return l;
}

base::Result<std::pair<utcp::Listener*, client::Claim>, client::Failure> EventLoop::listen_socket(
    int bound_fd, utcp::Handler* handler, const utcp::ConnOptions* options, ctl::ClaimRole role) {
    auto claim = control_.claim_socket(bound_fd, role);
    if (!claim) return claim.error();
    utcp::Listener* l = stack_->listen(claim->port, handler, options);
    if (!l) {
        (void)control_.release(claim.value());
        return client::Failure{client::Error::address_in_use, "this loop listens on that port already"};
    }
    return std::pair{l, claim.value()};
}

base::Result<utcp::Connection*, client::Failure> EventLoop::connect(const wire::IpAddr& remote, std::uint16_t port,
                                                                    utcp::Handler& handler,
                                                                    const utcp::ConnOptions* options) {
    const auto local = stack_->local_address(remote.family);
    if (!local) {
        return client::Failure{client::Error::no_route, std::string("this loop has no ") +
                                                            (remote.family == wire::IpFamily::v6 ? "IPv6" : "IPv4") +
                                                            " address to reach " + remote.to_string() + " from"};
    }
    auto claim = control_.claim(IPPROTO_TCP, *local, 0);
    if (!claim) return claim.error();
    return connect_claimed(claim.value(), remote, port, handler, options);
}

base::Result<utcp::Connection*, client::Failure> EventLoop::connect_socket(int bound_fd, const wire::IpAddr& remote,
                                                                           std::uint16_t port, utcp::Handler& handler,
                                                                           const utcp::ConnOptions* options) {
    auto claim = control_.claim_socket(bound_fd);
    if (!claim) return claim.error();
    return connect_claimed(claim.value(), remote, port, handler, options);
}

base::Result<utcp::Connection*, client::Failure> EventLoop::connect_claimed(const client::Claim& claim,
                                                                            const wire::IpAddr& remote, std::uint16_t port,
                                                                            utcp::Handler& handler,
                                                                            const utcp::ConnOptions* options) {
    const utcp::ConnectResult made = stack_->connect(claim.port, remote, port, &handler, options);
    if (!made) {
        (void)control_.release(claim);
        return connect_failure(made.error(), remote);
    }
    ephemeral_[claim.port] = claim;
    return *made;
}

void EventLoop::release_ephemeral(std::uint16_t port) {
    auto it = ephemeral_.find(port);
    if (it == ephemeral_.end()) return;
    (void)control_.release(it->second);  // a failure leaves it to the daemon's cleanup at exit
    ephemeral_.erase(it);
}

base::Result<std::uint16_t, client::Failure> EventLoop::udp_bind(std::uint16_t port, utcp::UdpHandler& handler) {
    auto claims = claim_everywhere(IPPROTO_UDP, port);
    if (!claims) return claims.error();
    if (!stack_->udp_bind(claims->front().port, handler)) {
        for (const client::Claim& c : claims.value()) (void)control_.release(c);
        return client::Failure{client::Error::address_in_use, "this loop has that UDP port already"};
    }
    return claims->front().port;
}

base::Result<client::Claim, client::Failure> EventLoop::udp_bind_socket(int bound_fd, utcp::UdpHandler& handler) {
    return udp_bind_claimed(control_.claim_socket(bound_fd), handler);
}

base::Result<client::Claim, client::Failure> EventLoop::udp_bind_claimed(base::Result<client::Claim, client::Failure> claim,
                                                                         utcp::UdpHandler& handler) {
    if (!claim) return claim.error();
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
    const std::uint64_t now = clock_us();
    if (turn(now) == 0) sleep_until_due(now, max_sleep_ms);
}

std::uint32_t EventLoop::turn(std::uint64_t now_us) {
    const std::uint64_t now_ms = utcp::ms_from_us(now_us);
    if (outage_) reattach_if_due(now_ms);
    const std::uint32_t frames = outage_ ? 0 : take_batch(now_us);
    stack_->advance(now_us);
    stack_->flush(now_us);
    publisher_.maybe_publish(*stack_, now_ms);
    return frames;
}

std::uint32_t EventLoop::take_batch(std::uint64_t now_us) {
    ring::AppRxRing& rx = port_->rx();
    const std::uint32_t n = std::min(rx.available(), batch_);
    for (std::uint32_t k = 0; k < n; ++k) stack_->input(rx.frame(k), now_us);
    if (n > 0) rx.release(n);
    return n;
}

void EventLoop::sleep_until_due(std::uint64_t now_us, int max_sleep_ms) {
    if (outage_) return sleep_while_detached(now_us, stack_->poll_at(), max_sleep_ms);
    const std::uint64_t due = stack_->poll_at();
    if (due <= now_us) {
        // Output is waiting for tx room: sleep until the switch frees slots.
        if (link_->full()) port_->wait_for_room(0, 1);
        return;
    }
    std::uint64_t wait = due == UINT64_MAX ? UINT64_MAX : due - now_us;
    if (max_sleep_ms >= 0) wait = std::min(wait, utcp::us_from_ms(static_cast<std::uint64_t>(max_sleep_ms)));
    // Wake at least every 100 ms so that stop() from a signal handler is seen.
    // The control socket is watched too: if multistackd goes away, the port is dead.
    const auto limit = static_cast<std::int64_t>(std::min(wait, utcp::us_from_ms(100)));
    if (port_->wait_us(0, limit, control_.fd())) begin_outage(clock_ms());
}

}  // namespace ms::loop
