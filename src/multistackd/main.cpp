// multistackd: the MultiStack switch daemon (docs/DESIGN.md §1-§6). It attaches to one
// interface (the XDP claim program plus one AF_XDP socket per queue), runs the switch
// workers, and serves applications on a control socket. It runs in the foreground and
// logs to stderr; SIGTERM and SIGINT shut it down, detaching everything. SIGUSR2 makes it
// leave for a restart: the XDP program stays with the claims, which the next daemon
// adopts while the applications attach again (docs/DESIGN.md §6, "Restarts and
// upgrades"); `--upgrade` starts a daemon that way in place of a running one.
#include <CLI/CLI.hpp>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>
#include <thread>
#include <utility>

#include "daemon/control_server.hpp"
#include "multistackd/hand_over.hpp"
#include "multistackd/interface_lock.hpp"
#include "multistackd/nic_data_path.hpp"
#include "multistackd/service_manager.hpp"
#include "netlink/netlink.hpp"
#include "nic/af_xdp_nic.hpp"
#include "nic/xdp_program.hpp"
#include "sw/switch.hpp"

namespace {

using ms::multistackd::HandOverState;
using ms::multistackd::InterfaceLock;
using ms::multistackd::kRunDir;
using ms::multistackd::StartFailure;

struct Options {
    std::string iface;
    std::uint32_t queues = 1;
    std::uint32_t workers = 1;
    std::string socket;
    std::uint32_t max_ports = 1024;
    std::string group;
    std::string fault;
    std::uint32_t spin_rounds = ms::sw::SwitchConfig{}.spin_rounds;
    bool no_segmentation_offload = false;
    bool huge_pages = false;
    ms::daemon::Limits limits;
    std::uint64_t port_memory_mib = ms::daemon::Limits{}.port_memory_per_user >> 20;
    std::uint64_t unread_replies_mib = ms::daemon::Limits{}.outbox_bytes_per_user >> 20;
    std::uint32_t outage_limit_ms = 10'000;
    bool upgrade = false;
    bool detach = false;
    bool fd_store = false;
};

// The group that may use the control socket besides root; nothing: root only.
ms::base::Result<std::optional<gid_t>, StartFailure> group_id(const std::string& name) {
    if (name.empty()) return std::optional<gid_t>{};
    const group* g = ::getgrnam(name.c_str());
    if (!g) return StartFailure{"no such group: " + name};
    return std::optional<gid_t>{g->gr_gid};
}

int blocked_signal_fd() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);  // before any thread starts, so all inherit it
    return ::signalfd(-1, &set, SFD_CLOEXEC);
}

std::vector<ms::wire::IpAddr> local_addresses(const ms::netlink::InterfaceInfo& info) {
    std::vector<ms::wire::IpAddr> out;
    for (const auto& a : info.addresses) out.push_back(a.addr);
    return out;
}

// Claims hold descriptors (one kernel socket each), so the daemon takes all the
// descriptors it may; the per-user limits keep any one user to a share of them.
void raise_descriptor_limit() {
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur == lim.rlim_max) return;
    lim.rlim_cur = lim.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) {
        std::cerr << "multistackd: cannot raise the descriptor limit: " << std::strerror(errno) << "\n";
    }
}

ms::base::Result<ms::daemon::ProofScope, StartFailure> proof_scope(const ms::netlink::InterfaceInfo& info) {
    const std::uint64_t cookie = ms::daemon::own_netns_cookie();
    if (cookie == 0) {
        return StartFailure{"the kernel does not report network namespace cookies (SO_NETNS_COOKIE, Linux 5.14): "
                            "claims could not be checked"};
    }
    return ms::daemon::ProofScope{cookie, info.ifindex, local_addresses(info)};
}

// Says why the daemon cannot run; run() returns it as the exit status.
int report(const std::string& why) {
    std::cerr << "multistackd: " << why << "\n";
    return 1;
}

constexpr int kUpgradeWaitMs = 5000;  // for the running daemon to leave

std::string pid_text(pid_t pid) { return "pid " + std::to_string(pid); }

// --upgrade: checks what the running daemon will leave on the interface, then asks it to
// leave for a restart (SIGUSR2) and takes the interface's lock once it has gone. If the
// record cannot be read, nothing is asked and the running daemon keeps running.
ms::base::Result<std::unique_ptr<InterfaceLock>, StartFailure> take_over_from_running(const std::string& iface) {
    const pid_t old = InterfaceLock::running_daemon(iface);
    if (old <= 0) return StartFailure{"--upgrade: no multistackd runs on " + iface};
    const std::string keeps = ": not upgrading; the running daemon (" + pid_text(old) + ") keeps running";
    const auto left = ms::nic::find_left_behind(iface);
    if (!left) return StartFailure{"--upgrade: " + left.error().detail + keeps};
    if (!*left) return StartFailure{"--upgrade: no MultiStack XDP program on " + iface + keeps};
    if (!(*left)->unreadable.empty()) {
        return StartFailure{"--upgrade: the running daemon's record cannot be read (" + (*left)->unreadable + ")" + keeps};
    }
    if (::kill(old, SIGUSR2) != 0) {
        return StartFailure{"--upgrade: cannot signal the running daemon (" + pid_text(old) + "): " + std::strerror(errno)};
    }
    return InterfaceLock::acquire(iface, kUpgradeWaitMs);
}

// Says what the previous daemon left on the interface and what becomes of it.
void report_left_behind(const std::string& iface, const ms::nic::LeftBehind& left) {
    std::cerr << "multistackd: a previous daemon " << (left.left_for_restart() ? "left" : "died and left")
              << " its XDP program on " << iface << ": ";
    if (!left.unreadable.empty()) {
        std::cerr << "its record cannot be read (" << left.unreadable << "); its claims are not adopted\n";
    } else if (left.expired) {
        std::cerr << "its outage limit has passed; its claims are released\n";
    } else {
        std::cerr << "adopting its " << left.claims.size() << " claim(s) until their owners prove them again\n";
    }
}

// --detach: removes what a daemon left on the interface, at once.
int detach_left_program(const std::string& iface) {
    const auto lock = InterfaceLock::acquire(iface);
    if (!lock) return report(lock.error().why);
    const auto removed = ms::nic::remove_stale_program(iface);
    if (!removed) return report(removed.error().detail);
    std::cerr << "multistackd: " << (*removed ? "removed the XDP program and claims left on " : "nothing left on ") << iface
              << "\n";
    return 0;
}

// What a daemon that takes over received from the running one: its state, and the
// session to answer on.
struct Takeover {
    HandOverState state;
    int session = -1;
};

ms::base::Result<std::optional<Takeover>, StartFailure> refused_hand_over(int session,
                                                                          const ms::multistackd::HandOverFailure& failed);

// --upgrade: asks the running daemon to hand everything over. Nothing if it predates
// hand-overs or cannot be reached at `path` (the caller then upgrades by a restart,
// take_over_from_running(), which finds the daemon by its lock).
ms::base::Result<std::optional<Takeover>, StartFailure> receive_hand_over(const std::string& path) {
    // A running daemon busy with connections in hand-off between processes is asked again
    // for this long: such a hand-off ends within milliseconds.
    constexpr auto kBusyFor = std::chrono::seconds(2);
    const auto give_up = std::chrono::steady_clock::now() + kBusyFor;
    for (;;) {
        const auto session = ms::multistackd::connect_to_daemon(path);
        if (!session) {
            std::cerr << "multistackd: --upgrade: " << session.error().detail << ": upgrading by a restart\n";
            return std::optional<Takeover>{};
        }
        auto state = ms::multistackd::request(*session, kUpgradeWaitMs);
        if (state && !state->queues.empty() && !ms::nic::AfXdpNic::maps_bound_sockets(state->queues.front())) {
            ms::multistackd::refuse(*session);
            ms::multistackd::close_descriptors(*state);
            ::close(*session);
            std::cerr << "multistackd: --upgrade: this kernel cannot map the rings of a bound AF_XDP socket (Linux "
                         "6.6 and later can), so the sockets cannot be handed over: upgrading by a restart\n";
            return std::optional<Takeover>{};
        }
        if (state) return std::optional<Takeover>(Takeover{std::move(state).value(), *session});
        if (state.error().error != ms::multistackd::HandOverError::busy || std::chrono::steady_clock::now() >= give_up) {
            return refused_hand_over(*session, state.error());
        }
        ::close(*session);
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
}

// Why the running daemon did not hand over: the restart way if it predates hand-overs,
// else a failure.
ms::base::Result<std::optional<Takeover>, StartFailure> refused_hand_over(int session,
                                                                          const ms::multistackd::HandOverFailure& failed) {
    if (failed.error == ms::multistackd::HandOverError::malformed) ms::multistackd::refuse(session);
    ::close(session);
    if (failed.error == ms::multistackd::HandOverError::unsupported) {
        std::cerr << "multistackd: --upgrade: " << failed.detail << ": upgrading by a restart\n";
        return std::optional<Takeover>{};
    }
    return StartFailure{"--upgrade: " + failed.detail + "; the running daemon keeps running"};
}

// A failure before the taker has answered: the running daemon is told, and serves on. A
// hand-over from the service manager's store has nobody to tell: the next start (the
// unit's Restart=) begins afresh, and the applications attach to it again.
int refuse_takeover(std::optional<Takeover>& taking, const std::string& why) {
    if (!taking) return report(why);
    ms::multistackd::close_descriptors(taking->state);
    if (taking->session < 0) return report("the stored hand-over cannot be taken up: " + why);
    ms::multistackd::refuse(taking->session);
    return report("--upgrade: " + why + "; the running daemon keeps running");
}

// The hand-over the service manager kept for this start (--fd-store), if any.
std::optional<Takeover> take_from_service_manager() {
    auto stored = ms::multistackd::stored_hand_over();
    if (!stored) {
        std::cerr << "multistackd: the service manager passed a hand-over that cannot be read (" << stored.error().detail
                  << "); starting afresh\n";
        return std::nullopt;
    }
    if (!*stored) return std::nullopt;
    std::cerr << "multistackd: taking over from the service manager's file-descriptor store\n";
    return Takeover{std::move(**stored), -1};
}

ms::sw::SwitchConfig switch_config(const Options& o, const ms::sw::FaultSpec& fault, std::uint32_t mtu) {
    ms::sw::SwitchConfig config;
    config.workers = o.workers;
    config.max_ports = o.max_ports;
    config.fault = fault;
    config.spin_rounds = o.spin_rounds;
    config.mtu = mtu;
    config.huge_pages = o.huge_pages;
    return config;
}

// The handed-over ports and claims into the switch: empty, or why they do not fit it.
std::string adopt_ports_and_claims(ms::sw::Switch& sw, HandOverState& st) {
    std::string failed;
    for (auto& port : st.ports) {
        auto adopted = sw.adopt_port(std::exchange(port, ms::sw::PortState{}));
        if (!adopted && failed.empty()) failed = adopted.error().detail;
    }
    st.ports.clear();
    for (const auto& claim : st.claims) {
        if (!failed.empty()) break;
        const auto restored = sw.registry().restore(claim);
        if (!restored) failed = "a handed-over claim cannot be made again";
        if (restored && *restored > 0) {
            std::cerr << "multistackd: " << *restored << " handed-over connection(s) of a shared claim not recorded again\n";
        }
    }
    return failed;
}

ms::daemon::Limits limits_of(const Options& o) {
    ms::daemon::Limits limits = o.limits;
    limits.port_memory_per_user = o.port_memory_mib << 20;
    limits.outbox_bytes_per_user = o.unread_replies_mib << 20;
    return limits;
}

void report_started(const Options& o, const ms::netlink::InterfaceInfo& info, const ms::nic::XdpProgram& xdp,
                    const ms::nic::AfXdpNic& nic, const ms::daemon::ControlServer& server, const std::string& path) {
    const ms::daemon::Limits& fitted = server.limits();
    std::cerr << "multistackd: each user may hold " << fitted.descriptors_per_user << " descriptors, "
              << fitted.claims_per_user << " claims, " << fitted.sessions_per_user << " sessions and "
              << fitted.ports_per_user << " ports; all users together " << fitted.descriptors_for_users << " descriptors, "
              << ms::daemon::kReservedDescriptors << " more kept for privileged peers\n";
    std::cerr << "multistackd: attached to " << o.iface << " (ifindex " << info.ifindex << ", MAC " << info.mac.to_string()
              << "), XDP " << ms::nic::to_string(xdp.mode()) << " mode, AF_XDP " << (nic.zero_copy() ? "zero-copy" : "copy")
              << " mode, segmentation offload " << (nic.offloads_segmentation() ? "on" : "off") << ", " << o.queues
              << " queue(s), " << o.workers << " worker(s); listening on " << path << std::endl;
}

// The parts a running daemon hands over.
struct Running {
    ms::daemon::ControlServer& server;
    ms::sw::Switch& sw;
    const ms::nic::AfXdpNic& nic;
    ms::nic::XdpProgram& xdp;
    const InterfaceLock& lock;
};

// Hands everything over, to the daemon on `session` or (-1) to the service manager's
// store: true once it is taken (this one then exits), false if it is not (this one serves on).
bool give_over(int session, const Running& r) {
    const auto began = std::chrono::steady_clock::now();
    r.sw.stop();
    auto control = r.server.hand_over_state(session);
    if (!control) {
        if (session >= 0) ms::multistackd::decline(session, control.error());
        r.server.hand_over_refused(session);
        r.sw.start();
        return false;
    }
    const HandOverState state{ms::multistackd::kHandOverVersion,
                              r.lock.fd(),
                              r.nic.hand_over_state(),
                              r.sw.hand_over_ports(),
                              r.sw.registry().hand_over_claims(),
                              std::move(control).value()};
    const auto encoded = ms::multistackd::encode(state);
    const auto given = session >= 0 ? ms::multistackd::give(session, encoded, kUpgradeWaitMs)
                                    : ms::multistackd::store_hand_over(encoded);
    if (!given) {
        std::cerr << "multistackd: hand-over failed: " << given.error().detail << "\n";
        r.server.hand_over_refused(session);
        r.sw.start();
        return false;
    }
    r.xdp.leave_for_restart();
    const auto ms_taken = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - began);
    std::cerr << "multistackd: handed over " << state.ports.size() << " port(s), " << state.control.sessions.size()
              << " session(s) and " << state.claims.size() << " claim(s) in " << ms_taken.count() << " ms"
              << (session >= 0 ? "" : " to the service manager's file-descriptor store") << "; exiting" << std::endl;
    return true;
}

// SIGUSR2: leaves the XDP program and the claims for the next daemon, and exits.
[[noreturn]] void leave_for_restart(const Options& o, ms::nic::XdpProgram& xdp, InterfaceLock& lock, ms::sw::Switch& sw,
                                    std::unique_ptr<ms::nic::AfXdpNic>& nic) {
    xdp.leave_for_restart();
    std::cerr << "multistackd: leaving for a restart: the XDP program keeps " << o.iface << "'s claims for "
              << o.outage_limit_ms << " ms" << std::endl;
    // The next daemon may start now (--upgrade waits on the lock) while this one closes
    // its AF_XDP sockets, whose release the kernel finishes only after an RCU grace
    // period. Everything else stays as it is for the next daemon: the kernel closes what
    // this one held (the sessions, the proofs) faster than the destructors would.
    lock.release();
    sw.stop();
    nic.reset();
    ::_exit(0);
}

int run(const Options& o) {
    const auto fault = ms::sw::FaultSpec::parse(o.fault);  // before touching the interface
    if (!fault) return report("--fault: " + fault.error().detail);
    const int signal_fd = blocked_signal_fd();
    raise_descriptor_limit();
    const auto group = group_id(o.group);
    if (!group) return report(group.error().why);
    // Loaded before an upgrade asks the running daemon to leave: the verifier's work is
    // most of a start's time. So is reading the interface.
    const auto program = ms::nic::XdpProgram::load(o.iface);
    if (!program) return report(program.error().detail);
    ms::nic::XdpProgram& xdp = **program;
    const auto netlink = ms::netlink::Netlink::open();
    if (!netlink) return report(netlink.error().detail);
    const auto read = (*netlink)->read_interface(o.iface);
    if (!read) return report(read.error().detail);
    const ms::netlink::InterfaceInfo& info = *read;
    const auto scope = proof_scope(info);
    if (!scope) return report(scope.error().why);
    const std::string path = o.socket.empty() ? std::string(kRunDir) + "/" + o.iface + ".sock" : o.socket;
    std::optional<Takeover> taking = take_from_service_manager();
    if (o.upgrade && !taking) {
        auto received = receive_hand_over(path);
        if (!received) return report(received.error().why);
        taking = std::move(received).value();
    }
    auto lock = taking      ? InterfaceLock::adopt(std::exchange(taking->state.lock_fd, -1))
                : o.upgrade ? take_over_from_running(o.iface)
                            : InterfaceLock::acquire(o.iface);
    if (!lock) return refuse_takeover(taking, lock.error().why);
    auto left = ms::nic::find_left_behind(o.iface);
    if (!left) return refuse_takeover(taking, left.error().detail);
    if (*left && !taking) report_left_behind(o.iface, **left);
    if (*left && taking) {
        // The running daemon's program is replaced whole; a record that cannot be read says
        // that something on the interface is not as a daemon left it.
        if (!(*left)->unreadable.empty()) {
            return refuse_takeover(taking, "the running daemon's record cannot be read (" + (*left)->unreadable + ")");
        }
        (*left)->record.flags |= ms::nic::DaemonRecord::kLeftForRestart;  // counted as an upgrade
    }
    // The addresses first: an adopted wildcard claim covers them from the first frame on.
    if (!xdp.set_local_addresses(local_addresses(info))) {
        return refuse_takeover(taking, o.iface + ": the XDP address map refused an address: " + std::strerror(errno));
    }
    const std::uint64_t outage_limit_ns = std::uint64_t{o.outage_limit_ms} * 1'000'000;
    if (!taking) {
        const auto attached = xdp.attach(*left ? &**left : nullptr, outage_limit_ns);
        if (!attached) return report(attached.error().detail);
    }
    const ms::nic::AfXdpConfig nic_config{
        .ifname = o.iface, .queues = o.queues, .segmentation_offload = !o.no_segmentation_offload};
    // A handed-over socket goes into this program's XSK map before the program replaces
    // the running one's, so that no frame meets a program without it.
    auto opened = taking ? ms::nic::AfXdpNic::adopt(nic_config, std::exchange(taking->state.queues, {}), xdp)
                         : ms::nic::AfXdpNic::open(nic_config, xdp);
    if (!opened) return refuse_takeover(taking, opened.error().detail);
    ms::nic::AfXdpNic& nic = **opened;
    const auto created = ms::sw::Switch::create(nic, switch_config(o, *fault, info.mtu));
    if (!created) return refuse_takeover(taking, created.error().detail);
    ms::sw::Switch& sw = **created;
    if (fault->active()) std::cerr << "multistackd: fault injection on: " << o.fault << "\n";
    sw.registry().set_local_addresses(local_addresses(info));
    if (taking) {
        if (const std::string failed = adopt_ports_and_claims(sw, taking->state); !failed.empty()) {
            return refuse_takeover(taking, failed);
        }
        if (taking->session >= 0) {
            if (auto taken = ms::multistackd::take(taking->session, kUpgradeWaitMs); !taken) {
                ms::multistackd::close_descriptors(taking->state);
                return report("--upgrade: " + taken.error().detail + "; the running daemon keeps running");
            }
        }
        (*lock)->write_own_pid();  // only now: a refused hand-over leaves the file naming the giver
        const auto attached = xdp.attach(*left ? &**left : nullptr, outage_limit_ns);
        if (!attached) return report(attached.error().detail);
    }
    left->reset();
    sw.start();
    ms::multistackd::NicDataPath data_path(xdp, nic, **netlink, info.ifindex);
    ms::daemon::ServerContext context{sw, data_path, info, *scope, limits_of(o)};
    context.outage_limit_ms = o.outage_limit_ms;
    auto serving = taking ? ms::daemon::ControlServer::adopt(std::move(context), path, std::move(taking->state.control))
                          : ms::daemon::ControlServer::open(std::move(context), path, *group);
    if (!serving) return report(serving.error().message);
    ms::daemon::ControlServer& server = **serving;
    if (taking && taking->session >= 0) ::close(taking->session);
    report_started(o, info, xdp, nic, server, path);
    ms::multistackd::notify_ready();
    for (;;) {
        const ms::daemon::RunEnd end = server.run(signal_fd);
        if (end.hand_over_fd >= 0) {
            if (give_over(end.hand_over_fd, {server, sw, nic, xdp, **lock})) ::_exit(0);
            continue;
        }
        if (end.signal == SIGUSR2 && o.fd_store && give_over(-1, {server, sw, nic, xdp, **lock})) ::_exit(0);
        if (end.signal == SIGUSR2) leave_for_restart(o, xdp, **lock, sw, opened.value());
        std::cerr << "multistackd: signal " << end.signal << ", shutting down\n";
        break;
    }
    sw.stop();
    std::cerr << "multistackd: detached from " << o.iface << "\n";
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"multistackd: the MultiStack switch. Shares one interface between user-level stacks and the kernel."};
    Options o;
    app.add_option("--iface", o.iface, "interface to attach to")->required();
    app.add_option("--queues", o.queues, "NIC queues to serve, one AF_XDP socket each")
        ->check(CLI::Range(1, 64))
        ->capture_default_str();
    app.add_option("--workers", o.workers, "switch worker threads")->check(CLI::Range(1, 64))->capture_default_str();
    app.add_option("--socket", o.socket, "control socket path (default /run/multistack/IFACE.sock)");
    app.add_option("--max-ports", o.max_ports, "most application ports at once")
        ->check(CLI::Range(1, 4096))
        ->capture_default_str();
    app.add_option("--group", o.group, "group allowed to attach (the socket is mode 0660)");
    app.add_option("--fault", o.fault,
                   "inject faults into what ports receive, for testing stacks: "
                   "loss=P,dup=P,reorder=P,corrupt=P,delay=MS,seed=N (off by default)");
    app.add_flag("--no-segmentation-offload", o.no_segmentation_offload,
                 "cut applications' TCP super-segments into frames in the switch instead of handing them to the "
                 "interface's own GSO/TSO (an AF_PACKET socket with a virtio_net_hdr)");
    app.add_flag("--huge-pages", o.huge_pages,
                 "ask for transparent huge pages on port rings (MADV_HUGEPAGE, honoured when "
                 "/sys/kernel/mm/transparent_hugepage/shmem_enabled is advise or always); measured slower at many "
                 "ports, see docs/DESIGN.md §12");
    app.add_option("--spin-rounds", o.spin_rounds,
                   "empty polling rounds before a worker sleeps: more is lower latency under load, "
                   "0 sleeps at once and saves CPU")
        ->capture_default_str();
    app.add_option("--max-claims-per-session", o.limits.claims_per_session,
                   "claims one application connection may hold (each holds a kernel socket)")
        ->check(CLI::Range(1u, 1u << 20))
        ->capture_default_str();
    app.add_option("--max-sessions-per-user", o.limits.sessions_per_user, "control connections one uid may have open")
        ->check(CLI::Range(1u, 1u << 20))
        ->capture_default_str();
    app.add_option("--max-ports-per-user", o.limits.ports_per_user, "ports one uid may have attached")
        ->check(CLI::Range(1u, 4096u))
        ->capture_default_str();
    app.add_option("--max-port-memory-per-user", o.port_memory_mib,
                   "MiB of port rings one uid may have (a port of 1 ring pair of 1024 slots takes 4 MiB)")
        ->check(CLI::Range(1ull, 1ull << 30))
        ->capture_default_str();
    app.add_option("--max-claims-per-user", o.limits.claims_per_user,
                   "claims one uid may hold over all its sessions (0: a quarter of the XDP claim map, or of the "
                   "descriptors a user may hold if fewer)")
        ->capture_default_str();
    app.add_option("--max-shared-claims-per-user", o.limits.shared_claims_per_user,
                   "claims one uid's ports may join as members of a group (each group's flow table takes about "
                   "200 bytes per connection it can record)")
        ->check(CLI::Range(0u, 65536u))
        ->capture_default_str();
    app.add_option("--max-handoffs-per-user", o.limits.handoffs_per_user,
                   "connections one uid's processes may have waiting in hand-off between processes at once (each "
                   "holds its image, counted with the uid's port memory, and 3 descriptors)")
        ->check(CLI::Range(0u, 65536u))
        ->capture_default_str();
    app.add_option("--group-flows", o.limits.flows_per_group,
                   "connections a shared claim's flow table records (a member's SYN-ACK beyond it is dropped and "
                   "counted as group_full)")
        ->check(CLI::Range(16u, 1u << 22))
        ->capture_default_str();
    app.add_option("--max-descriptors-per-user", o.limits.descriptors_per_user,
                   "descriptors one uid's sessions, ports and claims may keep open in the daemon (0: a quarter of "
                   "the daemon's RLIMIT_NOFILE less a reserve for privileged peers)")
        ->capture_default_str();
    app.add_option("--max-unread-replies-per-user", o.unread_replies_mib,
                   "MiB of replies one uid's sessions may leave unread before the daemon drops them")
        ->check(CLI::Range(1ull, 1ull << 20))
        ->capture_default_str();
    app.add_option("--outage-limit-ms", o.outage_limit_ms,
                   "how long claims outlive the daemon (a crash, a restart, an upgrade): meanwhile the XDP program "
                   "drops their frames, so that the kernel resets no connection, and applications try to attach "
                   "again; past it the kernel gets the frames and the applications' UTCP sockets fail with ENETDOWN")
        ->check(CLI::Range(100u, 3'600'000u))
        ->capture_default_str();
    app.add_flag("--upgrade", o.upgrade,
                 "take over from the multistackd running on --iface (this binary may be newer; the running one must "
                 "keep a record, as every version since restarts were kept does): it leaves for a restart, this one "
                 "adopts its claims, and applications attach again with their connections");
    app.add_flag("--fd-store", o.fd_store,
                 "on SIGUSR2, hand everything over to the service manager's file-descriptor store "
                 "(systemd's FileDescriptorStoreMax=), which passes it to the next start: systemctl restart is then a "
                 "hand-over, as --upgrade is (without a service manager, SIGUSR2 leaves for a restart)");
    app.add_flag("--detach", o.detach,
                 "remove the XDP program and claims that a daemon left on --iface (after SIGUSR2, SIGKILL or a "
                 "crash), then exit");
    CLI11_PARSE(app, argc, argv);
    if (o.detach) return detach_left_program(o.iface);
    try {
        return run(o);
    } catch (const std::exception& e) {
        std::cerr << "multistackd: " << e.what() << "\n";
        return 1;
    }
}
