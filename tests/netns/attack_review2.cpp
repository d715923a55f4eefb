// The attacks of the second security review (attacks.hpp): proofs whose state changes
// after the claim, the SO_REUSEADDR dodge, exhaustion of the daemon's descriptors and
// memory, spinning workers, the MTU, a hostile socket table, and take-over.
#include <fstream>
#include <sstream>
#include <thread>

#include "attacks.hpp"
#include "ring/socket_table.hpp"

namespace attack {
namespace {

// The daemon's CPU seconds so far (user and system), from /proc/PID/stat.
double cpu_seconds(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    std::getline(in, line);
    const auto after_name = line.rfind(')');
    if (after_name == std::string::npos) throw SetupError("cannot read /proc/" + std::to_string(pid) + "/stat");
    std::istringstream fields(line.substr(after_name + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && fields >> field; ++i) {  // field 3 is the state
        if (i == 14) utime = std::stoull(field);
        if (i == 15) stime = std::stoull(field);
    }
    return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// The daemon's resident memory in MiB, from /proc/PID/status.
double rss_mib(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
    }
    throw SetupError("cannot read VmRSS of pid " + std::to_string(pid));
}

bool claim_listed(Session& s, const ctl::Tuple& t) {
    for (const auto& e : list<ctl::ClaimEntry>(s, ctl::Op::list_claims)) {
        if (same_tuple(e.tuple, t)) return true;
    }
    return false;
}

wire::IpAddr loopback(wire::IpFamily family) {
    return ip_of(family == wire::IpFamily::v4 ? "127.0.0.1" : "::ffff:127.0.0.1");
}

}  // namespace

int attack_narrow(const Ctx& c, std::uint16_t port) {
    Report r("narrow");
    auto p = attach_port(c, 1, 64);
    const Fd listener = deaf_listener(ip_of("127.0.0.1"), static_cast<std::uint16_t>(port + 3));
    struct Proof {
        const char* what;
        Fd fd;
        int type;
        ctl::Tuple tuple{};
    };
    std::vector<Proof> proofs;
    proofs.push_back({"udp 0.0.0.0", must_bind(SOCK_DGRAM, wire::IpAddr::any(wire::IpFamily::v4), port), SOCK_DGRAM});
    proofs.push_back({"tcp 0.0.0.0",
                      must_bind(SOCK_STREAM, wire::IpAddr::any(wire::IpFamily::v4), static_cast<std::uint16_t>(port + 1)),
                      SOCK_STREAM});
    Bound dual = bound_socket(SOCK_STREAM, wire::IpAddr::any(wire::IpFamily::v6), static_cast<std::uint16_t>(port + 2),
                              {.dual_stack = true});
    if (dual.err == 0) proofs.push_back({"tcp :: (dual-stack)", std::move(dual.fd), SOCK_STREAM});
    else r["dual_stack"] = "skipped: " + dual.refused;
    for (Proof& proof : proofs) must_claim(p->session, proof.fd.get(), &proof.tuple);
    // Our own copies now narrow to loopback: the kernel frees the interface's address.
    for (Proof& proof : proofs) {
        const bool v6 = std::string(proof.what).find("::") != std::string::npos;
        const AnyAddr to = to_any_sockaddr(v6 ? ip_of("::ffff:127.0.0.1") : loopback(wire::IpFamily::v4),
                                           static_cast<std::uint16_t>(proof.type == SOCK_DGRAM ? 9 : port + 3));
        if (::connect(proof.fd.get(), to.get(), to.len) != 0) fail_errno(std::string("connect ") + proof.what);
    }
    const auto t0 = Clock::now();
    const bool revoked = wait_until(
        [&] {
            return std::none_of(proofs.begin(), proofs.end(),
                                [&](const Proof& q) { return claim_listed(p->session, q.tuple); });
        },
        5000, 50);
    json tries = json::array();
    for (const Proof& proof : proofs)
        tries.push_back({{"proof", proof.what}, {"revoked", !claim_listed(p->session, proof.tuple)}});
    r["tries"] = tries;
    r["revoked_after_ms"] = revoked ? json(ms_since(t0)) : json("not within 5 s");
    r.expect(revoked, "claims whose proofs were connected to loopback still hold after 5 s");
    std::cerr << "ms-attack: narrow: proofs connected to loopback, claims revoked" << std::endl;
    return c.finish(r);
}

int attack_reuse_dodge(const Ctx& c, std::uint16_t port) {
    Report r("reuse-dodge");
    auto p = attach_port(c, 1, 64);
    json tries = json::array();
    const wire::IpAddr any = wire::IpAddr::any(wire::IpFamily::v4);
    const struct {
        int type;
        wire::IpAddr addr;
        std::uint16_t port;
        const char* what;
    } cases[] = {{SOCK_STREAM, c.server, port, "TCP beside a kernel connection"},
                 {SOCK_STREAM, any, port, "TCP wildcard beside a kernel connection"},
                 {SOCK_DGRAM, c.server, static_cast<std::uint16_t>(port + 1), "UDP beside a kernel socket"},
                 {SOCK_DGRAM, any, static_cast<std::uint16_t>(port + 1), "UDP wildcard beside a kernel socket"}};
    for (const auto& k : cases) {
        SockOpts o;
        o.reuseaddr = true;
        Bound b = bound_socket(k.type, k.addr, k.port, o);
        if (b.err == 0) set_int_option(b.fd.get(), SOL_SOCKET, SO_REUSEADDR, 0, "clearing SO_REUSEADDR");
        tries.push_back(expect_refusal(p->session, b, ctl::Status::tuple_shared, k.what, r));
    }
    r["tries"] = tries;
    r.expect(std::any_of(tries.begin(), tries.end(), [](const json& t) { return t.contains("status"); }),
             "the kernel refused every bind: nothing was tried");
    return c.finish(r);
}

int attack_claim_flood(const Ctx& c, std::uint16_t port, std::uint32_t sessions) {
    Report r("claim-flood");
    std::vector<std::unique_ptr<Port>> ports;
    std::vector<Fd> proofs;
    std::map<std::string, std::uint32_t> refusals;
    std::uint32_t claims = 0;
    auto next = port;
    const auto t0 = Clock::now();
    constexpr const char* kSessionRefused = "session: closed at once (a per-user limit)";
    for (std::uint32_t i = 0; i < sessions; ++i) {
        auto s = Session::open(c.socket);
        PortFds fds;
        ctl::Status attached;
        try {
            attached = attach(s, 1, 64, &fds);
        } catch (const Misbehaved&) {  // a session over the budget is closed as it opens
            ++refusals[kSessionRefused];
            break;
        }
        if (attached != ctl::Status::ok) {
            ++refusals["attach: " + status_name(attached)];
            break;
        }
        ports.push_back(std::make_unique<Port>(Port{std::move(s), std::move(fds), nullptr, {}, {}}));
        for (;; ++next) {
            Bound b = bound_socket(SOCK_DGRAM, c.server, next);
            if (b.err) continue;  // a port the kernel uses: the next one
            const ctl::Status st = claim(ports.back()->session, b.fd.get());
            if (st != ctl::Status::ok) {
                ++refusals["claim: " + status_name(st)];
                break;
            }
            ++claims;
            proofs.push_back(std::move(b.fd));
        }
        if (refusals.count("claim: limit_reached") >= 1 && refusals["claim: limit_reached"] >= 2) break;
    }
    const double seconds = ms_since(t0) / 1000;
    r["claims"] = claims;
    r["sessions"] = ports.size();
    r["seconds"] = seconds;
    r["claims_per_second"] = seconds > 0 ? claims / seconds : 0;
    r["refusals"] = refusals;
    for (const auto& [what, n] : refusals) {
        r.expect(what.ends_with("limit_reached") || what == kSessionRefused, "refused with " + what + ", not limit_reached");
    }
    r.expect(!refusals.empty(), "no limit stopped " + std::to_string(claims) + " claims");
    std::cerr << "ms-attack: claim-flood: " << claims << " claims on " << ports.size() << " sessions" << std::endl;
    return c.finish(r);
}

int attack_spin(const Ctx& c, std::uint16_t port, double max_cpu_share) {
    Report r("spin");
    const pid_t daemon = static_cast<pid_t>(daemon_status(c).pid);
    // A chain whose first slot is published and the rest never is.
    auto chained = attach_port(c, 1, 64);
    Fd tcp = must_bind(SOCK_STREAM, c.server, port);
    must_claim(chained->session, tcp.get());
    const wire::MacAddr mac = nic_mac(chained->session);
    const auto super = tcp_super(mac, mac, c.server, c.server, port, 9000);
    TxRing& tx = chained->tx[0];
    (void)tx.stage_chain(0, super, 1448);
    tx.publish(1, true);
    // A port failed by its first ring, with a valid slot left pending on its second.
    auto failed = attach_port(c, 2, 64);
    Fd udp = must_bind(SOCK_DGRAM, c.server, static_cast<std::uint16_t>(port + 1));
    must_claim(failed->session, udp.get());
    const auto frame = udp_frame({mac, mac, c.server, c.server, static_cast<std::uint16_t>(port + 1), 9});
    failed->tx[0].stage(0, frame, 2048);  // longer than a frame: slot_too_long
    failed->tx[0].publish(1, true);
    r.expect(wait_until([&] { return own_entry(*failed).failed != 0; }, 2000), "the port with a bad slot did not fail");
    failed->tx[1].stage(0, frame, static_cast<std::uint16_t>(frame.size()));
    failed->tx[1].publish(1, true);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const double cpu0 = cpu_seconds(daemon);
    const auto t0 = Clock::now();
    std::this_thread::sleep_for(std::chrono::seconds(2));
    const double share = (cpu_seconds(daemon) - cpu0) / (ms_since(t0) / 1000);
    r["daemon_cpu_share"] = share;
    r.expect(share <= max_cpu_share, "the daemon used " + std::to_string(share) + " of a core while only waiting");
    ctl::PortEntry e{};
    const bool stalled = wait_until(
        [&] {
            e = own_entry(*chained);
            return e.failed != 0;
        },
        3000);
    r["chain_stalled"] = faults(e, ring::RingFault::chain_stalled);
    r.expect(stalled && faults(e, ring::RingFault::chain_stalled) == 1, "the half-published chain did not fail its port");
    return c.finish(r);
}

int attack_unread_many(const Ctx& c, std::uint32_t sessions, std::uint32_t rss_margin_mib) {
    Report r("unread-many");
    const ctl::StatusReply before = daemon_status(c);
    const auto daemon = static_cast<pid_t>(before.pid);
    const double rss_before = rss_mib(daemon);
    std::vector<Session> open;
    std::uint64_t requests = 0;
    for (std::uint32_t i = 0; i < sessions; ++i) {
        open.push_back(Session::open(c.socket));
        Session& s = open.back();
        // Status requests until the socket takes no more for a moment, or we are dropped.
        for (int stalls = 0; stalls < 3 && !hung_up(s, 0);) {
            ctl::Header h{.op = ctl::Op::status, .seq = s.next_seq()};
            const int err = s.send(&h, sizeof h, {}, MSG_DONTWAIT);
            if (err == 0) {
                ++requests;
            } else if (err == EAGAIN) {
                pollfd pf{s.fd(), POLLOUT, 0};
                (void)::poll(&pf, 1, 20);
                ++stalls;
            } else {
                break;
            }
        }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const double rss_held = rss_mib(daemon);
    const ctl::StatusReply during = daemon_status(c);
    const auto dropped = static_cast<std::uint32_t>(
        std::count_if(open.begin(), open.end(), [](const Session& s) { return hung_up(s, 0); }));
    open.clear();
    std::this_thread::sleep_for(std::chrono::seconds(1));
    const double rss_after = rss_mib(daemon);
    r["sessions"] = sessions;
    r["requests"] = requests;
    r["dropped"] = dropped;
    r["slow_clients"] = during.slow_clients - before.slow_clients;
    r["rss_mib"] = {rss_before, rss_held, rss_after};
    r.expect(rss_held - rss_before <= rss_margin_mib, "the daemon grew by " + std::to_string(rss_held - rss_before) + " MiB");
    r.expect(rss_after - rss_before <= rss_margin_mib / 2.0,
             "the daemon kept " + std::to_string(rss_after - rss_before) + " MiB after the sessions went");
    r.expect(during.slow_clients > before.slow_clients, "no session was counted slow");
    return c.finish(r);
}

int attack_mtu(const Ctx& c, std::uint16_t port, const wire::IpAddr& peer, const wire::MacAddr& peer_mac) {
    Report r("mtu");
    auto p = attach_port(c, 1, 128);
    Fd udp = must_bind(SOCK_DGRAM, c.server, port);
    Fd tcp = must_bind(SOCK_STREAM, c.server, static_cast<std::uint16_t>(port + 1));
    must_claim(p->session, udp.get());
    must_claim(p->session, tcp.get());
    const ctl::StatusReply status = daemon_status(p->session);
    (void)status;
    const wire::MacAddr mac = nic_mac(p->session);
    // 1294 bytes fit an MTU of 1280 with the Ethernet header; 1400 do not.
    const auto fits = udp_frame({mac, peer_mac, c.server, peer, port, 9, 1294 - 42});
    const auto too_long = udp_frame({mac, peer_mac, c.server, peer, port, 9, 1400 - 42});
    const auto super = tcp_super(mac, peer_mac, c.server, peer, static_cast<std::uint16_t>(port + 1), 6000);
    TxRing& tx = p->tx[0];
    tx.stage(0, fits, static_cast<std::uint16_t>(fits.size()));
    tx.stage(1, too_long, static_cast<std::uint16_t>(too_long.size()));
    std::uint32_t k = 2;
    k += tx.stage_chain(k, super, 1400);  // 20 + 20 + 1400 > 1280
    k += tx.stage_chain(k, super, 1200);  // 1240: fits
    tx.publish(k, true);
    ctl::PortEntry e{};
    (void)wait_until(
        [&] {
            e = own_entry(*p);
            return e.tx_frames + total_drops(e) >= 4;
        },
        2000);
    r["tx_frames"] = e.tx_frames;
    r["over_mtu"] = drops(e, sw::DropReason::over_mtu);
    r.expect(drops(e, sw::DropReason::over_mtu) == 2,
             "expected the 1400-byte frame and the 1400-byte segments counted over_mtu");
    r.expect(e.tx_frames == 2, "expected the frame and the super-segment that fit to leave");
    r.expect(e.failed == 0, "a port that sent well-formed frames failed");
    return c.finish(r);
}

int attack_table_busy(const Ctx& c, bool flip) {
    Report r(flip ? "table-flip" : "table-busy");
    auto p = attach_port(c, 1, 64);
    auto* header = reinterpret_cast<ring::SocketTableHeader*>(p->region->socket_table());
    std::atomic<bool> stop{false};
    std::thread flipper;
    c.signals->arm();  // before the thread starts, so that it inherits the blocked signals
    if (flip) {
        flipper = std::thread([&] {
            while (!stop.load(std::memory_order_relaxed)) {
                std::atomic_ref<std::uint32_t>(header->generation).fetch_add(1, std::memory_order_release);
            }
        });
    } else {
        store(header->generation, 1);  // odd: a write that never ends
    }
    r["port"] = p->fds.id;
    std::cerr << "ms-attack: " << (flip ? "flipping" : "holding") << " the socket table of port " << p->fds.id << std::endl;
    const int code = c.finish(r);
    stop = true;
    if (flipper.joinable()) flipper.join();
    return code;
}

int attack_take_over(const Ctx& c, std::uint16_t victim_port, std::uint16_t port) {
    Report r("take-over");
    auto p = attach_port(c, 1, 64);
    json tries = json::array();
    const wire::IpAddr any = wire::IpAddr::any(wire::IpFamily::v4);
    const std::pair<SockOpts, const char*> options[] = {
        {{}, "plain"}, {{.reuseaddr = true}, "SO_REUSEADDR"}, {{.reuseport = true}, "SO_REUSEPORT"}};
    for (const auto& [o, name] : options) {
        for (const wire::IpAddr& addr : {c.server, any}) {
            Bound b = bound_socket(SOCK_DGRAM, addr, victim_port, o);
            json t{{"proof", std::string(name) + " " + addr.to_string() + ":" + std::to_string(victim_port)}};
            if (b.err) {
                t["kernel"] = b.refused;
            } else {
                const ctl::Status st = claim(p->session, b.fd.get());
                t["status"] = status_name(st);
                r.expect(st != ctl::Status::ok, std::string(name) + ": the victim's claim was taken");
            }
            tries.push_back(t);
        }
    }
    r["tries"] = tries;
    // A join between our own sessions: each releases only its own membership, and the
    // claim lives until the last member lets go.
    auto other = attach_port(c, 1, 64);
    Fd proof = must_bind(SOCK_DGRAM, c.server, port);
    ctl::Tuple t{};
    must_claim(p->session, proof.get(), &t);
    const Fd copy(::dup(proof.get()));
    const ctl::Status taken = claim(other->session, copy.get());
    const ctl::Status released_by_first = release(p->session, t);
    const bool still_held = claim_listed(p->session, t);
    const ctl::Status released_again = release(p->session, t);
    r["own"] = {{"join", status_name(taken)},
                {"release_by_first", status_name(released_by_first)},
                {"release_again", status_name(released_again)},
                {"still_held", still_held}};
    r.expect(taken == ctl::Status::ok, "the holder of the same proof socket could not join the claim");
    r.expect(released_by_first == ctl::Status::ok, "the first session could not release its membership");
    r.expect(released_again == ctl::Status::not_found, "the first session released a membership twice");
    r.expect(still_held, "the other member's claim went with the first one's release");
    r.expect(release(other->session, t) == ctl::Status::ok, "the other member could not release its claim");
    r.expect(!claim_listed(p->session, t), "the claim outlived its last member");
    return c.finish(r);
}

}  // namespace attack
