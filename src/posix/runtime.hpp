// Contract: POSIX sockets over UTCP for one process (docs/DESIGN.md §7, "Unmodified
// applications"). One UTCP stack on one MultiStack port serves every accelerated socket
// of the process; one lock guards it. A stack thread sleeps on the port, the control
// socket and a wake-up descriptor, and takes the lock for each turn; application threads
// take the lock for their calls and do their own output (a send leaves in the caller's
// thread). Every socket is backed by a real descriptor (readiness.hpp). The program's
// epoll sets report UTCP sockets from the library's own part of each set, with no system
// call per socket (epoll_sets.hpp); once the kernel must see a socket (poll, select, a
// set the kernel keeps whole, a blocking call's sleep, another process), its descriptor
// shows its state to the kernel, so that every mix works. Blocking calls sleep on that
// descriptor, never spinning.
//
// Placement: a TCP socket of AF_INET or AF_INET6 starts as a kernel socket. At listen()
// or connect() on one of the interface's addresses (or the wildcard; a dual-stack ::
// listener takes IPv4 too, with v4-mapped names), the runtime claims its 3-tuple with that
// very socket as the proof, then puts the UTCP socket on the application's descriptor
// number (dup2). Loopback and other addresses stay with the kernel, and so does any
// socket whose claim is refused, with one log line (or the call fails, with
// MULTISTACK_REQUIRE=1). Every result carries Linux's errno for the failure.
//
// Polling: an application thread in epoll_wait does the stack's receive work itself, as
// the kernel's softirq would on its way: it runs a turn before it sleeps, and sleeps on
// the port too (the port's eventfd, added once to each epoll set it waits on, is taken
// out of what it returns). While a thread polls so, the stack thread leaves the port to
// it and wakes only for timers; it watches the port again when no thread polls and one
// waits elsewhere (a blocking call, or at the latest after kUnwatchedSleepMs). A set's
// wake-up eventfd, in the kernel's set beside the port's, wakes a sleeper when another
// thread makes one of the set's UTCP sockets ready.
//
// Processes: a forked child does not share the parent's stack; it opens its own on first
// use. A listener it inherited moves to the child's stack on the child's first accept or
// epoll_ctl on it (the daemon hands the claim over to the port that presents the same
// proof socket): nginx's master opens the listeners, its worker serves them. Two
// SO_REUSEPORT listeners of one process on one address and port share one stack
// listener; each keeps its own proof, which a child that inherits it presents. An
// inherited connection cannot move: it fails with EOPNOTSUPP (one log line) and can
// only be closed.
#pragma once

#include <netinet/in.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "loop/event_loop.hpp"
#include "posix/errno.hpp"
#include "posix/readiness.hpp"
#include "posix/socket.hpp"

namespace ms::posix {

// The environment's settings (README, "Unmodified applications").
struct Settings {
    std::string socket_path;   // MULTISTACK_SOCKET; else the one socket in /run/multistack
    std::string congestion;    // MULTISTACK_CC; empty: the stack's default
    int log_level = 1;         // MULTISTACK_LOG: 0 silent, 1 fallbacks and faults, 2 every placement
    bool require = false;      // MULTISTACK_REQUIRE=1: fail instead of falling back to the kernel
    // MULTISTACK_EXCLUDE names this program (a comma-separated list of program names): its
    // sockets all stay with the kernel (programs that use io_uring or raw system calls).
    bool excluded = false;
    static Settings from_environment();
};

// The process's settings, read once.
const Settings& settings();
// This program's name: argv[0]'s base name as the process started, read once (the preload
// library's constructor reads it first, before a program such as nginx rewrites its argv).
const std::string& program_name();

class Runtime;
struct OptionContext;

// Writes one line to stderr, prefixed "multistack: ", if `level` <= the log level.
void log_line(int level, const std::string& text);

// What recvmsg and sendmsg carry besides the bytes.
struct MessageInfo {
    sockaddr* from = nullptr;        // receive: a datagram's sender, or a stream's peer
    socklen_t* from_len = nullptr;
    const sockaddr* to = nullptr;    // send: a datagram's destination (streams ignore it)
    socklen_t to_len = 0;
    int flags_out = 0;               // receive: MSG_TRUNC when a datagram did not fit
};

// Where a socket went at listen() or connect().
enum class Placement : std::uint8_t { utcp, kernel };

class Runtime final : private utcp::Handler, private utcp::UdpHandler {
public:
    // The process's runtime, made on first use; null when there is none (no daemon, no
    // interface address, or a forked child), in which case sockets stay the kernel's.
    static Runtime* get();
    // The process's runtime if it was made (and this is not a forked child that has not
    // made its own), without making one.
    static Runtime* current();
    // In a forked child: the parent's runtime is not this process's.
    static void forget_after_fork();
    // True for a socket of another process's runtime (inherited across fork, or a stand-in
    // for one that arrives by exec or SCM_RIGHTS).
    static bool inherited(const Socket& s);
    // Moves an inherited listener on `fd` to this process's stack (runtime.hpp, Processes).
    base::Result<int, Errno> adopt_listener(int fd, Socket& inherited);

    // Connections that move between processes (handoff.cpp). Before fork() (the prepare
    // handler): every connection may be held by the child too, the child's poll, select
    // and epoll see every socket through its pair, and every epoll set the library keeps
    // becomes the kernel's (the child shares it). The lock stays held across the fork,
    // so that no socket closes meanwhile (its pair would be kept for reuse while the child
    // holds it); after_fork_in_parent() lets go of it.
    void prepare_fork();
    void after_fork_in_parent();
    // A connection that another process had (inherited, or passed): it moves to this
    // process's stack once that process has let go of it, which the daemon tells by
    // handing it over. EOPNOTSUPP if the other process keeps it past kTakeOverWaitMs.
    base::Result<int, Errno> take_over_connection(int fd, Socket& elsewhere);
    // After the program closed a number whose socket close() set aside (a connection
    // another process may hold): each goes to the daemon for the process that holds it,
    // or, if none does, closes as usual.
    void settle_closed_shared();
    // Before exec: the connection on `fd` goes to the daemon for the new image (arriving.hpp);
    // false if it stays (it cannot move, or the daemon refused).
    bool hand_off_for_exec(int fd);
    // Before an SCM_RIGHTS message carries connection `fd`: another process may hold it now.
    void note_passed(int fd);
    [[nodiscard]] bool closing_shared() const { return closing_shared_count_.load(std::memory_order_relaxed) > 0; }

    // Before exec hands this process's listener `s` to a new image (exec_listeners.hpp):
    // its stack listener leaves SYNs unanswered (the peer's next one reaches the new
    // image), and the connections it queued that the program never accepted are reset,
    // as they cannot follow. `handing` false: the exec failed, it answers again.
    void pause_for_exec(Socket& s, bool handing);

    // A TCP bind() of the program's failed with EADDRINUSE: if a closed listener's claim
    // still holds that address and port for its last connections (lingering_claims_), it
    // goes now, as Linux lets a new socket bind beside them, and true says to bind again.
    bool release_lingering_claim(const Endpoint& bound);

    // At exit(): waits, at most kExitDrainMs, while connections the program closed still
    // send (their data or FIN unacknowledged), as the kernel keeps sending for a process
    // that has gone. The stack thread does the work meanwhile. The preload library calls it
    // from an exit handler it registers before main(), so that it runs after the program's
    // own (GNU cat closes its standard output in one), and from _exit(). First the
    // connections the program still has close, as the kernel closes a process's
    // descriptors (close_at_exit).
    void drain_before_exit();

    // A TCP socket this process received bound and neither listening nor connected, that
    // may be another process's UTCP listener: by SCM_RIGHTS (role passed: it serves), or
    // by exec from a process that had inherited it (role draining: it takes no new
    // connection; nginx's new binary, whose workers serve). If it proves a claim, this
    // process's stack listens on it as a member of that claim; otherwise it stays the
    // kernel's.
    base::Result<Placement, Errno> place_received_listener(int fd, std::uint32_t backlog, ctl::ClaimRole role);

    // Pending kernel sockets (FdTable::pending): listen or connect on UTCP, or say kernel.
    base::Result<Placement, Errno> listen(int fd, int backlog);
    // connect() to `to` as the program gave it (sockaddr_in or sockaddr_in6, whose flow label
    // the connection carries if the program asked for one: ip_marks.hpp).
    base::Result<Placement, Errno> connect(int fd, const sockaddr* to, socklen_t len);

    base::Result<int, Errno> accept(int fd, sockaddr* addr, socklen_t* len, int flags);
    base::Result<std::size_t, Errno> recv(int fd, std::span<const iovec> iov, int flags, MessageInfo* info = nullptr);
    base::Result<std::size_t, Errno> send(int fd, std::span<const iovec> iov, int flags, MessageInfo* info = nullptr);
    // connect() again on a TCP socket on UTCP: EALREADY while connecting, then the
    // connection's error once, then EISCONN.
    base::Result<int, Errno> connect_again(int fd);
    // UDP sockets of AF_INET and AF_INET6: placed at bind() on the interface's address or
    // the wildcard, or at the first sendto() or connect() of an unbound one (bound then to
    // the interface's address of the family it sends `toward`).
    base::Result<Placement, Errno> place_datagram(int fd, wire::IpFamily toward);
    // connect() on a UDP socket on UTCP: the default destination (AF_UNSPEC: none).
    base::Result<int, Errno> connect_datagram(int fd, const sockaddr* to, socklen_t len);
    base::Result<std::size_t, Errno> sendfile(int fd, int in_fd, off_t* offset, std::size_t count);
    base::Result<int, Errno> shutdown(int fd, int how);
    // Drops the descriptor's reference; the socket closes with its last one. The caller
    // then closes the number itself.
    void close(int fd);
    // dup, dup2, F_DUPFD: `to` names `from`'s socket too.
    void duplicate(int from, int to);
    base::Result<int, Errno> name(int fd, bool peer, sockaddr* addr, socklen_t* len);
    base::Result<int, Errno> get_option(int fd, int level, int name, void* value, socklen_t* len);
    base::Result<int, Errno> set_option(int fd, int level, int name, const void* value, socklen_t len);
    // O_NONBLOCK changed on the descriptor (fcntl F_SETFL, ioctl FIONBIO).
    void set_nonblocking(int fd, bool on);
    // epoll_wait and epoll_pwait (runtime.hpp, Polling); `real` is libc's epoll_pwait.
    using EpollPwait = int (*)(int, epoll_event*, int, int, const sigset_t*);
    int epoll_wait_polling(int epfd, epoll_event* events, int max, int timeout_ms, const sigset_t* mask, EpollPwait real);
    // epoll_ctl of the UTCP socket `fd` in the program's set `epfd`: kept in the library's
    // part of the set (epoll_sets.hpp), or, in a set the kernel keeps whole, made visible
    // and added to the kernel's.
    base::Result<int, Errno> epoll_control(int epfd, int op, int fd, epoll_event* event);
    // The kernel must see the UTCP socket `fd` (poll, select on it): its pair turns visible.
    void make_visible(int fd);
    // The kernel must see the program's set `epfd` whole (a dup of its number; poll, select
    // or another epoll set watching it): its UTCP members turn visible and join the
    // kernel's part, and the set is the kernel's from now on.
    void hand_epoll_set_to_kernel(int epfd);
    // Before an exec: every socket turns visible, and every set is the kernel's.
    void hand_everything_to_kernel();
    // Drops the library's own entries (the port's, a set's wake-up) from what the kernel's
    // epoll_wait reported; true if there was one. For a process whose runtime is not its
    // own (a forked child that shares a set with its parent) as well.
    static bool drop_library_marks(epoll_event* events, int& n);
    // The program closed the number of its set `epfd`.
    void forget_epoll_set(int epfd);
    // FIONREAD and SIOCOUTQ.
    base::Result<int, Errno> queued_bytes(int fd, bool outgoing);

private:
    // Under the lock: a connection whose last number closed moves to another process that
    // holds it (shared ones), or closes here.
    void settle_closed(Socket& s);
    // Under the lock: writes `s`'s connection out and hands it to the daemon (handoff.cpp);
    // false if it cannot move (it stays, and closes as usual).
    bool hand_off(Socket& s, const OpenSocketIdentity& token);
    // After a failed hand-off: the connection goes back into this stack, to close here.
    bool take_back(StreamState& stream, const utcp::ConnectionImage& image, const std::string& why);
    // Under the lock: keeps watching a connection handed off as `parcel` (handed_).
    void watch_handed(std::uint64_t parcel, int library_end);
    // Under the lock: the handed-off connections every holder closed: taken back from the
    // daemon if nobody took them up, and closed here with a FIN.
    void reclaim_orphans();
    // Under the lock, at exit: every connection the program still holds closes as its
    // last descriptor's close would (each of its numbers is closed now): it moves to a
    // process that holds it too (a forked child), or closes here.
    void close_at_exit();
    // Under the lock: the connection another process handed over, taken up by this
    // process's stack on the application's number `fd`.
    base::Result<int, Errno> adopt_connection(int fd, const Socket& elsewhere,
                                              const client::ControlSession::TakenConnection& taken,
                                              std::unique_lock<std::mutex>& lock);
    // A closed listener's claim, kept for its last connections (lingering_claims_).
    struct LingeringClaim {
        client::Claim claim;
        utcp::Listener* paused = nullptr;  // the stack listener kept, answering nothing, or null
    };

    Runtime(Settings settings, std::unique_ptr<loop::EventLoop> loop);
    // In a forked child: closes its copies of the parent runtime's control descriptors,
    // so that the parent's session ends with the parent.
    void abandon_in_child();
    static Runtime* open();
    void serve();
    void sleep_while_idle(std::uint64_t now_us);
    // A turn from an application thread: frames in, timers, output, readiness. Returns
    // the clock it ran at.
    std::uint64_t run_turn();
    // Under the lock: a timer now due before the stack thread would wake wakes it.
    void wake_stack_thread_if_due();
    void wake_stack_thread() const;
    // Adds the port's eventfd to `epfd` once (FdTable's watching_epoll bit remembers it).
    void watch_port_from(int epfd);
    // Wakes the stack thread to watch the port if no thread polls it and one waits.
    void ensure_port_watched();
    // After an application call changed the stack: output now, readiness, and a wake-up
    // for the stack thread if a timer is now due before it would wake.
    void after_call(std::unique_lock<std::mutex>& lock);
    void fail_for_good(Socket& s, int error);
    // After each turn: follows the loop onto a new port if it attached again, or fails
    // every connection if multistackd stayed away past its outage limit.
    void follow_attachment();
    // What getsockopt and setsockopt on `fd` need of this runtime (options.hpp).
    OptionContext option_context(int fd, std::unique_lock<std::mutex>& lock);
    [[nodiscard]] Socket* live(int fd) const;
    Socket& allocate(SocketState state);
    void recycle(Socket& s);
    // Under the lock: the socket's state shown again (its pair, its epoll entries); `arrival`:
    // new data came, a new edge for EPOLLET entries.
    void refresh(Socket& s, bool arrival = false);
    [[nodiscard]] std::uint32_t events_of(const Socket& s) const;
    // Under the lock: the kernel sees `s` from now on (a blocking call sleeps on its pair).
    static void expose(Socket& s);
    // The library's part of the program's set `epfd` (made on first use); null if `epfd`
    // is not a set the program made, or the kernel keeps it whole.
    EpollSet* library_epoll_set(int epfd);
    // Drops `s`'s entries from the library's epoll sets (its close).
    void forget_watches(Socket& s);
    // Moves the library's part of `set` into the kernel's set, and forgets it.
    void merge_into_kernel(EpollSet& set);
    // Under the lock: hand_everything_to_kernel().
    void show_everything_to_kernel();
    // Reads what epoll_wait found ready: the library's part of set `epfd` (if any) and the
    // kernel's, in turn, without sleeping.
    int gather_ready(int epfd, epoll_event* events, int max, const sigset_t* mask, EpollPwait real);
    // Drops the port's and the set's wake-up entries from what the kernel reported; true if
    // there was one (frames came, or a UTCP entry turned ready).
    bool drop_wake_events(int epfd, epoll_event* events, int& n);
    void refresh_listeners();
    // Releases the lingering claims whose port no connection uses any more.
    void release_unused_claims();
    void release_lingering(const LingeringClaim& lingering);
    // Under the lock: releases the lingering claims on `bound`'s address and port; true
    // if there was one.
    bool release_lingering_claims_on(const Endpoint& bound);
    // The listener answers no more SYNs, and the connections it queued that the program
    // never accepted are reset.
    void stop_accepting(utcp::Listener& l);
    // `role`: standby for a listener this process opened (it may be a master that only
    // hands it to workers), serving for one it inherited and now accepts on.
    base::Result<int, Errno> place_listener(Socket& s, int fd, std::uint32_t backlog, ctl::ClaimRole role);
    // Under the lock: a listener state with a copy of the kernel socket on `fd` as its
    // proof and the socket's options, placed (place_listener).
    base::Result<int, Errno> listen_on_utcp(int fd, std::uint32_t backlog, ctl::ClaimRole role);
    // A listener of this process bound to the same address and port as `s`, both with
    // SO_REUSEPORT (nginx's master opens one per worker): `s` shares its stack listener
    // and claim, and each worker that inherits one presents its own proof to the daemon.
    [[nodiscard]] Socket* reuseport_sibling(const Socket& s) const;
    // True while a listener socket of this process still uses `listener`.
    [[nodiscard]] bool listening_on(const utcp::Listener* listener) const;
    // Puts a fresh UTCP socket on the application's number `fd` (dup2 over what it was).
    base::Result<int, Errno> take_number(Socket& s, int fd);
    void release(Socket& s);
    // Waits for `events` on `fd` as the socket's timeout allows: 0, or the errno.
    int wait(int fd, short events, int timeout_ms);
    int sleep_on(int fd, short events, int timeout_ms);
    enum class Direction : std::uint8_t { in, out };
    base::Result<std::size_t, Errno> transfer(int fd, std::span<const iovec> iov, int flags, Direction direction,
                                              MessageInfo* info);
    // One try, by the socket's kind: EAGAIN where Linux would block.
    base::Result<std::size_t, Errno> try_transfer(Socket& s, std::span<const iovec> iov, int flags, Direction direction,
                                                  MessageInfo* info);
    base::Result<std::size_t, Errno> try_recv(Socket& s, std::span<const iovec> iov, int flags);
    base::Result<std::size_t, Errno> try_send(Socket& s, std::span<const iovec> iov);
    // `family`: the socket's, in which the sender's address is written.
    base::Result<std::size_t, Errno> try_recv_datagram(DatagramState& d, int family, std::span<const iovec> iov, int flags,
                                                       MessageInfo* info);
    base::Result<std::size_t, Errno> try_send_datagram(const Socket& s, std::span<const iovec> iov, MessageInfo* info);
    [[nodiscard]] bool interface_address(const Endpoint& e) const;
    // Where an active socket (connect, or a UDP socket's first send) is bound: an unbound one
    // is bound first to the interface's address of `family` (the peer's) and an ephemeral
    // port. Nothing if it is bound elsewhere, or cannot be bound: it stays with the kernel.
    [[nodiscard]] std::optional<Endpoint> bound_to_interface(int fd, wire::IpFamily family);
    base::Result<Placement, Errno> refuse(const std::string& why, int error);
    [[nodiscard]] utcp::ConnOptions defaults() const;

    // utcp::Handler: every event refreshes the socket's readiness.
    void on_connected(utcp::Connection& c) override;
    void on_readable(utcp::Connection& c) override;
    void on_writable(utcp::Connection& c) override;
    void on_peer_closed(utcp::Connection& c) override;
    void on_error(utcp::Connection& c, utcp::ConnError e) override;
    void on_closed(utcp::Connection& c) override;
    // utcp::UdpHandler: a datagram for one of the process's UDP sockets.
    void on_datagram(const wire::IpAddr& from, std::uint16_t from_port, std::uint16_t to_port, wire::Bytes payload) override;

    Settings settings_;
    std::unique_ptr<loop::EventLoop> loop_;
    mutable std::mutex mutex_;
    std::deque<Socket> sockets_;
    ReadinessPool pairs_;
    // The library's part of the program's epoll sets, by the set's number (epoll_sets.hpp).
    std::unordered_map<int, std::unique_ptr<EpollSet>> epoll_sets_;
    std::vector<Socket*> free_;
    std::vector<Socket*> listeners_;
    std::unordered_map<std::uint16_t, Socket*> datagram_ports_;  // UDP sockets by local port
    // Claims of closed listeners whose accepted connections still run: as in Linux, a
    // listener's close leaves them be, so the claim stays until the last one is gone. The
    // member drains: the switch gives it no new connection. An own claim's stack listener
    // goes at once (a SYN that reaches it is reset, as in Linux); a shared claim's stays
    // paused, so that SYNs steered here before the drain are sent again to other members.
    std::vector<LingeringClaim> lingering_claims_;
    std::vector<Socket*> closing_shared_;  // closed, waiting for settle_closed_shared()
    // Connections this process handed off, watched until every holder has closed them:
    // the parcel number, and a duplicate of the readiness pair's library end (it hangs up
    // then). One nobody took up comes back, to close here (reclaim_orphans).
    struct Handed {
        std::uint64_t parcel;
        int watch_fd;
    };
    std::vector<Handed> handed_;
    std::atomic<int> closing_shared_count_{0};
    static constexpr int kTakeOverWaitMs = 2000;
    int wake_fd_ = -1;       // eventfd: an application call moved a timer earlier
    int sleep_set_ = -1;     // epoll over wake_fd_ and the control socket (Port::wait's also_fd)
    std::uint64_t asleep_until_ = 0;  // while the stack thread sleeps: when it wakes (µs, as the stack's timers); else 0
    // An epoll set over the port's rx eventfd, added to the application's epoll sets in its
    // place: it stays the same descriptor when the loop attaches again to another port.
    int port_event_fd_ = -1;
    std::uint64_t attachments_ = 1;   // the loop's attachments() this runtime has caught up with
    std::atomic<int> pollers_{0};     // application threads asleep in epoll_wait, port included
    std::atomic<std::uint64_t> last_polled_ms_{0};  // when an application thread last left epoll_wait
    static constexpr int kPollerGraceMs = 10;
    std::atomic<int> waiters_{0};     // application threads asleep in a blocking call
    std::atomic<bool> stack_watches_port_{false};
    static constexpr int kUnwatchedSleepMs = 200;  // the stack thread's longest sleep off the port
    static constexpr std::uint64_t kExitDrainMs = 2000;
    bool daemon_gone_ = false;
    std::string last_failure_;  // why the last claim failed, for the log line
    std::thread thread_;
};

}  // namespace ms::posix
