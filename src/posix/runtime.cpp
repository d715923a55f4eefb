#include "posix/runtime.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "bbr/bbr.hpp"
#include "posix/fd_table.hpp"
#include "posix/reentry.hpp"
#include "posix/sockaddr.hpp"

namespace ms::posix {

namespace {

// The process's runtime; made again after fork() (Runtime::forget_after_fork).
std::atomic<Runtime*> g_runtime{nullptr};
std::atomic<bool> g_opened{false};
std::mutex* g_open_mutex = new std::mutex;  // never freed: a process may open until its end

std::string env_or(const char* name, const char* fallback) {
    const char* v = std::getenv(name);
    return v ? v : fallback;
}

// The daemon's default is /run/multistack/IFACE.sock: take it when it is the only one.
std::string only_daemon_socket() {
    DIR* dir = ::opendir("/run/multistack");
    if (!dir) return {};
    std::string found;
    int count = 0;
    while (const dirent* e = ::readdir(dir)) {
        const std::string name = e->d_name;
        if (name.size() > 5 && name.ends_with(".sock")) {
            found = "/run/multistack/" + name;
            ++count;
        }
    }
    ::closedir(dir);
    return count == 1 ? found : std::string{};
}

// Whether the comma-separated `names` (spaces around each ignored) holds program_name().
bool names_this_program(std::string_view names) {
    const std::string_view self = program_name();
    for (std::size_t at = 0; at < names.size();) {
        const std::size_t end = std::min(names.find(',', at), names.size());
        std::string_view name = names.substr(at, end - at);
        name.remove_prefix(std::min(name.find_first_not_of(' '), name.size()));
        name.remove_suffix(name.size() - (name.find_last_not_of(' ') + 1));
        if (!name.empty() && name == self) return true;
        at = end + 1;
    }
    return false;
}

}  // namespace

const std::string& program_name() {
    static const std::string name = program_invocation_short_name;
    return name;
}

Settings Settings::from_environment() {
    Settings s;
    s.socket_path = env_or("MULTISTACK_SOCKET", "");
    if (s.socket_path.empty()) s.socket_path = only_daemon_socket();
    s.congestion = env_or("MULTISTACK_CC", "");
    s.log_level = std::atoi(env_or("MULTISTACK_LOG", "1").c_str());
    s.excluded = names_this_program(env_or("MULTISTACK_EXCLUDE", ""));
    s.require = !s.excluded && env_or("MULTISTACK_REQUIRE", "0") == "1";
    return s;
}

const Settings& settings() {
    static const Settings read = Settings::from_environment();
    return read;
}

void log_line(int level, const std::string& text) {
    if (level > settings().log_level) return;
    const std::string line = "multistack: " + text + "\n";
    (void)!::write(STDERR_FILENO, line.data(), line.size());
}

// --- the runtime's life ---------------------------------------------------------------

Runtime* Runtime::get() {
    if (g_opened.load(std::memory_order_acquire)) return g_runtime.load(std::memory_order_acquire);
    std::lock_guard lock(*g_open_mutex);
    if (!g_opened.load(std::memory_order_relaxed)) {
        g_runtime.store(open(), std::memory_order_release);
        g_opened.store(true, std::memory_order_release);
    }
    return g_runtime.load(std::memory_order_acquire);
}

Runtime* Runtime::current() {
    return g_opened.load(std::memory_order_acquire) ? g_runtime.load(std::memory_order_acquire) : nullptr;
}

// Runs in the child right after fork(), with only the forking thread: the parent's
// runtime (its thread, its lock's state) is not this process's.
void Runtime::forget_after_fork() {
    g_open_mutex = new std::mutex;  // the old one may have been held by a thread that is gone
    if (Runtime* parent = g_runtime.load(std::memory_order_relaxed)) parent->abandon_in_child();
    g_runtime.store(nullptr, std::memory_order_relaxed);
    g_opened.store(false, std::memory_order_relaxed);
}

void Runtime::abandon_in_child() {
    InsideLibrary inside;
    loop_->control().forget_proofs();  // the parent's copies: its claims are not the child's
    ::close(loop_->control().fd());
    ::close(wake_fd_);
    ::close(sleep_set_);
    pairs_.forget();
    epoll_sets_.clear();  // their wake-up eventfds (this process's copies)
}

// A stand-in (arriving.hpp) has no owner: it is another process's even before this one
// has a runtime.
bool Runtime::inherited(const Socket& s) {
    return s.in_use() && (s.owner == nullptr || s.owner != g_runtime.load(std::memory_order_acquire));
}

Runtime* Runtime::open() {
    InsideLibrary inside;
    Settings settings = posix::settings();
    if (settings.excluded) {
        log_line(2, program_name() + " is in MULTISTACK_EXCLUDE: sockets stay with the kernel");
        return nullptr;
    }
    if (settings.socket_path.empty()) {
        log_line(1, std::string("no multistackd socket (set MULTISTACK_SOCKET): ") +
                        (settings.require ? "UTCP sockets fail (MULTISTACK_REQUIRE=1)" : "sockets stay with the kernel"));
        return nullptr;
    }
    loop::LoopOptions options;
    options.data_area_bytes = 0;  // send buffers on the heap: no 64 MiB reservation per process
    options.super_segments = false;
    options.descriptor_floor = fd_table().own_fd_floor();
    options.log = [](const std::string& line) { log_line(1, line); };
    if (!settings.congestion.empty()) options.defaults.congestion = settings.congestion;
    options.congestion_algorithms.push_back(bbr::algorithm());  // the library ships BBR (TCP_CONGESTION "bbr")
    auto loop = loop::EventLoop::open(settings.socket_path, options);
    if (!loop) {
        log_line(1, "no UTCP: " + loop.error().message() + ": " +
                        (settings.require ? "UTCP sockets fail (MULTISTACK_REQUIRE=1)" : "sockets stay with the kernel"));
        return nullptr;
    }
    // Never freed: a process may use sockets until its last instruction.
    return new Runtime(std::move(settings), std::move(loop.value()));
}

Runtime::Runtime(Settings settings, std::unique_ptr<loop::EventLoop> loop)
    : settings_(std::move(settings)), loop_(std::move(loop)) {
    const int floor = fd_table().own_fd_floor();
    wake_fd_ = move_descriptor_above(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), floor);
    sleep_set_ = move_descriptor_above(::epoll_create1(EPOLL_CLOEXEC), floor);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ::epoll_ctl(sleep_set_, EPOLL_CTL_ADD, wake_fd_, &ev);
    ev.events = EPOLLIN | EPOLLRDHUP;
    ::epoll_ctl(sleep_set_, EPOLL_CTL_ADD, loop_->control().fd(), &ev);
    port_event_fd_ = move_descriptor_above(::epoll_create1(EPOLL_CLOEXEC), floor);
    ev.events = EPOLLIN;
    ::epoll_ctl(port_event_fd_, EPOLL_CTL_ADD, loop_->port().rx_event_fd(), &ev);
    log_line(2, "UTCP on " + loop_->address().to_string() + " through " + settings_.socket_path);
    // The stack thread takes no signal: the program's handlers (nginx's SIGCHLD, which
    // reaps its workers) must run on its own threads, as they would without the library.
    sigset_t all;
    sigset_t before;
    ::sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &before);
    thread_ = std::thread([this] { serve(); });
    ::pthread_sigmask(SIG_SETMASK, &before, nullptr);
    thread_.detach();
}

void Runtime::serve() {
    t_inside_library = true;  // for good: every call this thread makes is the library's
    std::unique_lock lock(mutex_);
    while (!daemon_gone_) {
        const std::uint64_t now = loop::EventLoop::clock_us();
        const std::uint32_t frames = loop_->turn(now);
        follow_attachment();
        if (daemon_gone_) break;
        refresh_listeners();
        release_unused_claims();
        if (!handed_.empty()) reclaim_orphans();
        if (frames == 0) sleep_while_idle(now);
        lock.unlock();  // let application threads in between turns
        lock.lock();
    }
}

// Sleeps (without the lock) until frames arrive, the next timer is due, an application
// call asks (wake_fd_), or the daemon goes away.
void Runtime::sleep_while_idle(std::uint64_t now_us) {
    (void)loop_->stack().take_soonest_work();  // what is scheduled from here on may wake it
    const std::uint64_t now_ms = utcp::ms_from_us(now_us);
    if (loop_->detached()) {
        const std::uint64_t due = loop_->stack().poll_at();  // under the lock
        mutex_.unlock();
        loop_->sleep_while_detached(now_us, due, kUnwatchedSleepMs);
        mutex_.lock();
        return;
    }
    const std::uint64_t due = loop_->stack().poll_at();
    if (due <= now_us && !loop_->tx_full()) return;
    // Microseconds (-1: no limit), as the stack's timers count them; output that waits for
    // tx room looks again after a millisecond.
    std::int64_t timeout = due <= now_us       ? static_cast<std::int64_t>(utcp::kMicrosPerMilli)
                           : due == UINT64_MAX ? -1
                                               : static_cast<std::int64_t>(std::min(due - now_us, utcp::us_from_ms(60'000)));
    // The port is left to application threads that poll it (runtime.hpp, Polling).
    // A thread that polled the port a moment ago is coming back to epoll_wait: the stack
    // thread leaves the port to it, and looks again after kPollerGraceMs.
    const bool polled_lately = now_ms < last_polled_ms_.load(std::memory_order_relaxed) + kPollerGraceMs;
    const bool watch_port = pollers_.load() == 0 && !polled_lately;
    const auto cap = [&timeout](int ms) {
        const auto limit = static_cast<std::int64_t>(utcp::us_from_ms(static_cast<std::uint64_t>(ms)));
        return timeout < 0 ? limit : std::min(timeout, limit);
    };
    if (polled_lately && pollers_.load() == 0) timeout = cap(kPollerGraceMs);
    // Pollers asleep wait for the port's kicks: the switch sends them only while the kick
    // flag is set, and Port::wait cleared it when this thread woke. Set again; frames that
    // came in between are taken by another turn now.
    if (pollers_.load() > 0 && !watch_port && loop_->port().rx().prepare_to_sleep()) return;
    const std::int64_t sleep_us = watch_port ? timeout : cap(kUnwatchedSleepMs);
    asleep_until_ = sleep_us < 0 ? UINT64_MAX : now_us + static_cast<std::uint64_t>(sleep_us);
    stack_watches_port_.store(watch_port);
    client::AppPort& port = loop_->port();
    mutex_.unlock();
    bool woken = false;
    if (due <= now_us) {
        port.wait_for_room(0, 1);
    } else if (watch_port) {
        woken = port.wait_us(0, sleep_us, sleep_set_);
    } else {
        pollfd set{sleep_set_, POLLIN, 0};
        const timespec limit{.tv_sec = sleep_us / 1'000'000, .tv_nsec = (sleep_us % 1'000'000) * 1000};
        woken = ::ppoll(&set, 1, &limit, nullptr) > 0;
    }
    mutex_.lock();
    stack_watches_port_.store(false);
    asleep_until_ = 0;
    if (!woken) return;
    std::uint64_t count = 0;
    (void)!::read(wake_fd_, &count, sizeof count);
    pollfd control{loop_->control().fd(), POLLIN | POLLRDHUP, 0};
    if (::poll(&control, 1, 0) > 0) loop_->daemon_hung_up(loop::EventLoop::clock_ms());
}

void Runtime::follow_attachment() {
    if (loop_->daemon_gone() && !daemon_gone_) {
        daemon_gone_ = true;
        // For good: each connection reports ENETDOWN once, then reads what it held and
        // the end of the stream; it never looks alive again.
        for (Socket& s : sockets_) {
            if (s.connection()) fail_for_good(s, ENETDOWN);
        }
        return;
    }
    if (loop_->attachments() == attachments_) return;
    attachments_ = loop_->attachments();
    // The old port's eventfd and control socket leave the sets as they close.
    epoll_event ev{};
    ev.events = EPOLLIN;
    ::epoll_ctl(port_event_fd_, EPOLL_CTL_ADD, loop_->port().rx_event_fd(), &ev);
    ev.events = EPOLLIN | EPOLLRDHUP;
    ::epoll_ctl(sleep_set_, EPOLL_CTL_ADD, loop_->control().fd(), &ev);
    wake_stack_thread();
}

std::uint64_t Runtime::run_turn() {
    const std::uint64_t now_us = loop::EventLoop::clock_us();
    const std::uint64_t now = utcp::ms_from_us(now_us);
    std::unique_lock lock(mutex_);
    if (daemon_gone_) return now;
    loop_->turn(now_us);
    follow_attachment();
    if (daemon_gone_) return now;
    refresh_listeners();
    release_unused_claims();
    wake_stack_thread_if_due();
    return now;
}

void Runtime::drain_before_exit() {
    const std::uint64_t deadline = loop::EventLoop::clock_ms() + kExitDrainMs;
    std::unique_lock lock(mutex_);
    close_at_exit();
    while (!daemon_gone_ && loop_->stack().orphans_sending() && loop::EventLoop::clock_ms() < deadline) {
        lock.unlock();
        ::usleep(1000);
        lock.lock();
    }
}

void Runtime::release_unused_claims() {
    std::erase_if(lingering_claims_, [this](const LingeringClaim& lingering) {
        if (loop_->stack().port_in_use(lingering.claim.port)) return false;
        release_lingering(lingering);
        return true;
    });
}

void Runtime::release_lingering(const LingeringClaim& lingering) {
    if (lingering.paused) loop_->stack().unlisten(lingering.claim.port);
    (void)loop_->control().release(lingering.claim);
}

void Runtime::wake_stack_thread() const {
    const std::uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof one);
}

void Runtime::wake_stack_thread_if_due() {
    if (asleep_until_ != 0 && loop_->stack().take_soonest_work() < asleep_until_) wake_stack_thread();
}

void Runtime::ensure_port_watched() {
    if (pollers_.load() == 0 && waiters_.load() > 0 && !stack_watches_port_.load()) wake_stack_thread();
}

void Runtime::after_call(std::unique_lock<std::mutex>& /*held*/) {
    loop_->stack().flush(loop::EventLoop::clock_us());
    refresh_listeners();
    wake_stack_thread_if_due();
}

// The stack lets go of the stream's connection, which then reports `error` once.
void Runtime::fail_for_good(Socket& s, int error) {
    utcp::Connection& c = *s.connection();
    on_closed(c);
    c.handler = nullptr;
    c.abort();
    std::get<StreamState>(s.state).pending_error = error;
    refresh(s);
}

Socket* Runtime::live(int fd) const {
    Socket* s = fd_table().socket(fd);
    return s && s->in_use() ? s : nullptr;
}

Socket& Runtime::allocate(SocketState state) {
    Socket* s;
    if (!free_.empty()) {
        s = free_.back();
        free_.pop_back();
    } else {
        s = &sockets_.emplace_back();
    }
    // `owner` is never seen other than `this`: a lock-free reader may hold a stale pointer.
    *s = Socket{.state = std::move(state), .owner = this};
    s->options = defaults();
    return *s;
}

void Runtime::recycle(Socket& s) {
    forget_watches(s);
    if (s.ready) pairs_.give_back(std::move(*s.ready), s.nonblocking);
    s.ready.reset();
    s.events = 0;
    if (Claimed* claimed = s.claimed(); claimed && claimed->proof_fd >= 0) ::close(claimed->proof_fd);
    s.state = Unused{};
    free_.push_back(&s);
}

utcp::ConnOptions Runtime::defaults() const { return loop_->stack().config().defaults; }

// --- readiness ---------------------------------------------------------------------------

namespace {

// Writable as Linux's tcp_poll says it (sk_stream_is_writeable): the free space is at
// least half of what is queued, a third of the buffer. A program that writes a large
// chunk after poll then rarely blocks in the write; with "any room" it would block, and
// two such programs echoing to each other (socat, for one) could block each other for good.
bool send_side_writable(const utcp::Connection& c) {
    const std::size_t room = c.send_room();
    return room > 0 && room >= c.unsent_or_unacked() / 2;
}

constexpr std::uint32_t kReadable = EPOLLIN | EPOLLRDNORM;
constexpr std::uint32_t kWritable = EPOLLOUT | EPOLLWRNORM;

// As Linux's tcp_poll reports it.
std::uint32_t stream_events(const StreamState& s) {
    if (!s.conn || s.pending_error != 0) {
        // Reset, failed, or closed by the stack: what is left reads at once, then end of
        // stream or the error; writes fail at once.
        return kReadable | kWritable | EPOLLRDHUP | EPOLLHUP | (s.pending_error != 0 ? std::uint32_t{EPOLLERR} : 0u);
    }
    const utcp::Connection& c = *s.conn;
    std::uint32_t events = 0;
    if (c.peer_closed() || s.read_shut) events |= kReadable | EPOLLRDHUP;
    if (c.readable() > 0) events |= kReadable;
    if (!s.connecting && (send_side_writable(c) || s.write_shut)) events |= kWritable;
    return events;
}

// The stream `c` belongs to, if the application still has it.
Socket* socket_of(const utcp::Connection& c) { return static_cast<Socket*>(c.context); }

}  // namespace

std::uint32_t Runtime::events_of(const Socket& s) const {
    return std::visit(Overloaded{
                          [](const ListenerState& l) { return l.listener->accept_queue.empty() ? 0 : kReadable; },
                          [](const DatagramState& d) { return (d.inbox.empty() ? 0 : kReadable) | kWritable; },
                          [](const StreamState& stream) { return stream_events(stream); },
                          [](const Unused&) { return std::uint32_t{0}; },
                      },
                      s.state);
}

void Runtime::refresh(Socket& s, bool arrival) {
    const std::uint32_t now = events_of(s);
    const std::uint32_t edge = (now & ~s.events) | (arrival ? now & kReadable : 0);
    s.events = now;
    if (s.ready) s.ready->show(now);
    for (const auto& watch : s.watches) watch->set->offer(*watch, now, edge);
}

void Runtime::expose(Socket& s) {
    if (s.ready) s.ready->make_visible();
}

void Runtime::refresh_listeners() {
    for (Socket* s : listeners_) refresh(*s);
}

// A connection's context is its stream socket (placement.cpp, stream_calls.cpp).
void Runtime::on_connected(utcp::Connection& c) {
    if (Socket* s = socket_of(c)) {
        std::get<StreamState>(s->state).connecting = false;
        refresh(*s);
    }
}

void Runtime::on_readable(utcp::Connection& c) {
    if (Socket* s = socket_of(c)) refresh(*s, true);
}

void Runtime::on_writable(utcp::Connection& c) {
    if (Socket* s = socket_of(c)) refresh(*s);
}

void Runtime::on_peer_closed(utcp::Connection& c) {
    if (Socket* s = socket_of(c)) refresh(*s);
}

void Runtime::on_error(utcp::Connection& c, utcp::ConnError e) {
    if (Socket* s = socket_of(c)) {
        auto& stream = std::get<StreamState>(s->state);
        stream.pending_error = errno_for(e);
        stream.connecting = false;
        refresh(*s);
    }
}

void Runtime::on_closed(utcp::Connection& c) {
    Socket* s = socket_of(c);
    if (!s) return;
    auto& stream = std::get<StreamState>(s->state);
    // What the application has not read yet stays readable, as in Linux.
    const utcp::SplitBytes unread = c.peek();
    for (const wire::Bytes part : {unread.first, unread.second}) {
        stream.leftover.append(reinterpret_cast<const char*>(part.data()), part.size());
    }
    stream.conn = nullptr;
    stream.connecting = false;
    c.context = nullptr;
    refresh(*s);
}

void Runtime::on_datagram(const wire::IpAddr& from, std::uint16_t from_port, std::uint16_t to_port, wire::Bytes payload) {
    auto it = datagram_ports_.find(to_port);
    if (it == datagram_ports_.end()) return;
    Socket& s = *it->second;
    auto& udp = std::get<DatagramState>(s.state);
    const Endpoint source{from, from_port};
    // A connected UDP socket takes datagrams from its peer only, as in Linux.
    if (udp.peer && *udp.peer != source) return;
    if (udp.inbox_bytes + payload.size() > s.options.recv_buffer) {
        ++udp.datagrams_dropped;
        return;
    }
    udp.inbox.push_back({source, {payload.begin(), payload.end()}});
    udp.inbox_bytes += payload.size();
    refresh(s, true);
}

}  // namespace ms::posix
