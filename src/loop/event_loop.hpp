// Contract: UTCP's event API (docs/DESIGN.md §7): a Stack on a MultiStack port, driven by a
// single-threaded loop. Each turn takes a batch of frames from the rx ring, feeds them
// to the stack, fires due timers, and flushes once (one publish, ACKs coalesced); with
// nothing to do it sleeps on the port's eventfd until frames arrive or the next timer
// is due. Applications implement Handler (stack.hpp) and UdpHandler; every callback
// runs on the loop's thread.
//
// The loop also does the control-plane work that a stack must not: it claims each
// listening port, each UDP port and each active open's ephemeral port from multistackd
// (proved by a kernel socket, docs/DESIGN.md §3), resolves next hops through the daemon, and
// releases an ephemeral port's claim when its last connection and TIME_WAIT record go.
// If multistackd goes away (it crashed, was killed, or restarts), the control socket
// hangs up and the loop attaches again (reattach.cpp; docs/DESIGN.md §6, "Restarts and
// upgrades"): it retries with a bounded back-off for the daemon's outage limit, then
// attaches a new port and proves its claims again with the proofs it kept; the stack and
// its connections carry on, and TCP resends what the outage lost. The stack runs its
// timers meanwhile. Past the limit, or at once if the daemon stopped for good (SIGTERM),
// the loop stops (daemon_gone()).
// Each turn also publishes the stack's sockets for `msctl sockets` when they are due
// (socket_publisher.hpp).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "client/multistack.hpp"
#include "loop/port_link.hpp"
#include "loop/socket_publisher.hpp"
#include "utcp/stack.hpp"

namespace ms::loop {

struct LoopOptions {
    // The local addresses, at most one IPv4 and one IPv6 (dual stack); empty: the
    // interface's first IPv4 address and its first global IPv6 address (not link-local),
    // each if it has one. listen() and udp_bind() claim the port on every one of them.
    std::vector<wire::IpAddr> addresses;
    utcp::ConnOptions defaults;               // defaults.congestion must name a known algorithm
    // The application's own congestion control algorithms, added to the stack's registry
    // before `defaults.congestion` is checked.
    std::vector<std::pair<std::string, utcp::CongestionRegistry::Factory>> congestion_algorithms;
    std::uint32_t ring_slots = 1024;
    std::uint32_t batch = 256;          // frames taken from the rx ring per turn
    std::uint32_t time_wait_ms = 60'000;
    bool super_segments = true;         // send bulk data as TCP super-segments (utcp::StackConfig)
    // The port's data area (ring/abi.hpp), where send buffers live so that their bytes
    // leave by reference; buffers beyond it come from the heap and are copied into slots.
    // Its pages are allocated as they are first used.
    std::uint64_t data_area_bytes = std::uint64_t{64} << 20;
    // Descriptors the loop keeps (copies of proofs) go at or above this number.
    int descriptor_floor = 0;
    // Where the loop's few lines go (multistackd going away and coming back); default stderr.
    std::function<void(const std::string&)> log;
};

class EventLoop {
public:
    // Connects to multistackd at `socket_path` and attaches a port. Fails with
    // invalid_option if defaults.congestion names no algorithm.
    static base::Result<std::unique_ptr<EventLoop>, client::Failure> open(const std::string& socket_path,
                                                                          LoopOptions options = {});
    ~EventLoop();
    EventLoop(const EventLoop&) = delete;
    EventLoop& operator=(const EventLoop&) = delete;

    // Claims TCP port on each of the loop's addresses and listens; port 0 takes an
    // ephemeral port. With `sharing` reuse_port, loops of other processes of the same user
    // may listen on the same port: the switch spreads new connections over them.
    base::Result<utcp::Listener*, client::Failure> listen(std::uint16_t port, utcp::Handler& handler,
                                                          const utcp::ConnOptions* options = nullptr,
                                                          client::Sharing sharing = client::Sharing::exclusive);
    // Claims what the caller's bound TCP socket holds and listens on its port; a null
    // handler is the raw API (connections wait in the listener's accept queue). The
    // caller releases the claim (control().release) after Stack::unlisten. `role` is how
    // the loop shares a claim that another process holds with the same socket.
    base::Result<std::pair<utcp::Listener*, client::Claim>, client::Failure> listen_socket(
        int bound_fd, utcp::Handler* handler, const utcp::ConnOptions* options = nullptr,
        ctl::ClaimRole role = ctl::ClaimRole::serving);
    // Claims an ephemeral TCP port on the loop's address of the remote's family and opens
    // a connection to (remote, port).
    base::Result<utcp::Connection*, client::Failure> connect(const wire::IpAddr& remote, std::uint16_t port,
                                                             utcp::Handler& handler,
                                                             const utcp::ConnOptions* options = nullptr);
    // The same from the port the caller's bound TCP socket holds; the loop releases the
    // claim when the port's last connection and TIME_WAIT record go.
    base::Result<utcp::Connection*, client::Failure> connect_socket(int bound_fd, const wire::IpAddr& remote,
                                                                    std::uint16_t port, utcp::Handler& handler,
                                                                    const utcp::ConnOptions* options = nullptr);
    // Claims UDP port on each of the loop's addresses; returns the port (an ephemeral one for 0).
    base::Result<std::uint16_t, client::Failure> udp_bind(std::uint16_t port, utcp::UdpHandler& handler);
    // Claims what the caller's bound UDP socket holds and takes its datagrams; the caller
    // releases the claim (control().release) after Stack::udp_unbind.
    base::Result<client::Claim, client::Failure> udp_bind_socket(int bound_fd, utcp::UdpHandler& handler);
    // Sends at the end of this turn; false if the next hop is unknown or the ring is full.
    bool udp_send(std::uint16_t from_port, const wire::IpAddr& to, std::uint16_t to_port, wire::Bytes payload);

    // Runs turns until stop() (which a callback or a signal handler may call).
    void run();
    // One turn; sleeps at most `max_sleep_ms` (-1: until the next timer) if idle.
    void run_once(int max_sleep_ms = -1);
    // A turn without the sleep: a batch of frames in, timers, one flush, the socket
    // table. Returns the frames taken. For callers that sleep on their own terms.
    std::uint32_t turn(std::uint64_t now_us);
    // True while output waits for room in the tx ring.
    [[nodiscard]] bool tx_full() const { return link_->full(); }
    [[nodiscard]] client::AppPort& port() { return *port_; }
    void stop() { stopping_.store(true, std::memory_order_relaxed); }
    [[nodiscard]] bool stopping() const { return stopping_.load(std::memory_order_relaxed); }
    // True once the loop stopped because multistackd went away for longer than its outage limit.
    [[nodiscard]] bool daemon_gone() const { return daemon_gone_; }
    // True while multistackd is away and the loop tries to attach again.
    [[nodiscard]] bool detached() const { return outage_.has_value(); }
    // How many times the loop has attached: 1, and one more after each outage. The port,
    // its descriptors and the control socket change with it.
    [[nodiscard]] std::uint64_t attachments() const { return attachments_; }
    // For callers that sleep on their own terms (turn()): the control socket hung up.
    void daemon_hung_up(std::uint64_t now_ms) { begin_outage(now_ms); }
    // While detached: sleeps until the next try or timer, at most `max_sleep_ms` (-1: no limit).
    void sleep_while_detached(std::uint64_t now_us, std::uint64_t due_us, int max_sleep_ms);

    [[nodiscard]] utcp::Stack& stack() { return *stack_; }
    // The IPv4 address (any() if the loop has none), and every address the loop has.
    [[nodiscard]] const wire::IpAddr& address() const { return stack_->config().address; }
    [[nodiscard]] std::vector<wire::IpAddr> addresses() const;
    [[nodiscard]] client::ControlSession& control() { return control_; }
    // CLOCK_MONOTONIC: microseconds for the stack (utcp/clock.hpp), milliseconds for
    // what counts in them (timeouts of calls, sessions, outages).
    [[nodiscard]] static std::uint64_t clock_us();
    [[nodiscard]] static std::uint64_t clock_ms() { return utcp::ms_from_us(clock_us()); }

private:
    EventLoop(client::ControlSession control, client::AppPort& port, const LoopOptions& options, std::string socket_path);
    // Claims `port` (0: an ephemeral one) on every address of the loop: the first claim's
    // port is claimed on the others. All or none.
    base::Result<std::vector<client::Claim>, client::Failure> claim_everywhere(
        std::uint8_t protocol, std::uint16_t port, client::Sharing sharing = client::Sharing::exclusive);
    // The stack, with the loop's addresses (checked: at most one per family).
    void start_stack(const ctl::InfoReply& info, const LoopOptions& options, const std::vector<wire::IpAddr>& addresses,
                     const utcp::StackSecrets& secrets);
    std::optional<wire::MacAddr> resolve(const wire::IpAddr& addr);
    void release_ephemeral(std::uint16_t port);
    base::Result<client::Claim, client::Failure> udp_bind_claimed(base::Result<client::Claim, client::Failure> claim,
                                                                  utcp::UdpHandler& handler);
    base::Result<utcp::Connection*, client::Failure> connect_claimed(const client::Claim& claim, const wire::IpAddr& remote,
                                                                     std::uint16_t port, utcp::Handler& handler,
                                                                     const utcp::ConnOptions* options);
    std::uint32_t take_batch(std::uint64_t now_us);
    void sleep_until_due(std::uint64_t now_us, int max_sleep_ms);

    // reattach.cpp: the daemon's outages. The control socket hung up: the outage starts.
    void begin_outage(std::uint64_t now_ms);
    // One try to attach again if it is due; stops the loop past the outage limit.
    void reattach_if_due(std::uint64_t now_ms);
    // No daemon to attach to: says why, lets the claims go and stops the loop.
    void give_up(const std::string& why);
    // Moves the loop onto `next`'s port; the old port's memory stays mapped for buffers
    // that still point into it.
    void switch_to(client::ControlSession next, std::uint64_t now_ms);
    // Every TCP connection of the stack, as the switch steers them (restore_flows).
    [[nodiscard]] std::vector<ctl::RestoredFlow> connection_flows() const;
    void log(const std::string& line) const;

    client::ControlSession control_;
    client::AppPort* port_;
    std::string socket_path_;
    std::function<void(const std::string&)> log_;
    std::uint64_t data_area_bytes_;  // each port's, for send buffers that leave by reference
    std::optional<client::ReattachSchedule> outage_;
    std::vector<std::unique_ptr<client::AppPort>> retired_ports_;  // still mapped: buffers may point into them
    std::uint64_t attachments_ = 1;
    std::uint32_t batch_ = 256;
    std::unique_ptr<PortLink> link_;
    std::unique_ptr<utcp::Stack> stack_;
    SocketPublisher publisher_;
    std::unordered_map<std::uint16_t, client::Claim> ephemeral_;  // active opens' claims by port
    std::atomic<bool> stopping_{false};
    bool daemon_gone_ = false;
};

}  // namespace ms::loop
