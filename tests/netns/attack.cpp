// ms-attack: a hostile MultiStack client for the security suite (tests/netns/security.sh;
// docs/DESIGN.md §3-§6 and §11). It is written from the ABI alone: ring/abi.hpp for the
// shared memory and ctl/protocol.hpp for the control messages (sw/counters.hpp only
// for the order of the per-reason counter arrays that PortEntry carries). It never goes
// through libmultistack: it makes its own socket(), connect(), sendmsg()/recvmsg() with
// SCM_RIGHTS, maps the port's memfd and stores ring indices itself, so that it can do what
// a well-behaved library never would. It is meant to run as an unprivileged user.
//
// One subcommand per attack. Each prints one JSON line with what it observed and exits
//   0   the daemon refused or dropped what it had to (the attack failed);
//   1   the attack worked, or the daemon misbehaved (a reply late or missing, a hang-up);
//   2   bad arguments;
//   3   the tool could not set the attack up (the message says why);
//   77  the attack cannot be tried here (the JSON says why).
// With --hold, an attack keeps its sessions (so its ports and claims) after printing,
// until SIGTERM or SIGINT, so that the caller can inspect the daemon meanwhile. Progress
// lines go to stderr; the tests wait for them.
//
// The attacks of the first review, and siblings (those of the second review are in
// attack_review2.cpp): oversize (tx slot lengths; maximum
// frames through the inbox between workers), netns-proof, bind-to-device, freebind (and
// spoofed sources), capture-other, slow-reader, linger, linger-junk (lingering sockets
// sent where the daemon only closes them), in-use, fd-leak, memory, port-limit,
// claim-limit, flood, wildcard, reuseaddr, vlan, super (super-segments); and probe, a plain client that checks
// that someone else is still served.
#include "attack_kit.hpp"
#include "attacks.hpp"

namespace attack {
namespace {

// ---------------------------------------------------------------- 1. oversize

// A fresh port publishes one tx slot that claims `len` bytes of its own buffer; the switch
// must fail that port with slot_too_long, and nothing else.
json bad_slot(const Ctx& c, std::unique_ptr<Port>& port, std::uint16_t udp_port, std::uint16_t dst_port, std::uint16_t len,
              std::uint32_t pair, Report& r) {
    port = attach_port(c, 2, 64);
    Fd proof = must_bind(SOCK_DGRAM, c.server, udp_port);
    must_claim(port->session, proof.get());
    const wire::MacAddr mac = nic_mac(port->session);
    // A valid frame for another port, which the padding the slot claims would carry
    // through the inbox between workers if the switch took the slot.
    const auto frame = udp_frame({mac, mac, c.server, c.server, udp_port, dst_port});
    port->tx[pair].stage(0, frame, len);
    port->tx[pair].publish(1, true);
    ctl::PortEntry e{};
    const bool failed = wait_until(
        [&] {
            e = own_entry(*port);
            return e.failed != 0;
        },
        2000);
    const std::uint64_t too_long = faults(e, ring::RingFault::slot_too_long);
    r.expect(failed && too_long == 1,
             "a tx slot of " + std::to_string(len) + " bytes did not fail its port with slot_too_long");
    return {{"len", len}, {"pair", pair}, {"port", port->fds.id}, {"failed", failed}, {"slot_too_long", too_long}};
}

// The receiving port of the oversize attack: two ring pairs (so both workers, with
// --workers 2) and four claims from base + 1, so that flows spread over its rings.
std::unique_ptr<Port> receiver(const Ctx& c, std::uint16_t base) {
    auto b = attach_port(c, 2, 256);
    for (std::uint16_t k = 1; k <= 4; ++k)
        must_claim(b->session, must_bind(SOCK_DGRAM, c.server, static_cast<std::uint16_t>(base + k)).get());
    return b;
}

// Valid frames of the largest size the interface's MTU of 1500 allows, port to port, to
// the receiver `b`. Its rings may belong to the other worker, so frames cross the inbox
// between workers: each must arrive intact or be dropped and counted, none as over_mtu.
constexpr std::uint32_t kLargestFrame = 14 + 1500;  // an untagged frame of the MTU

json port_to_port(const Ctx& c, std::uint16_t base, std::unique_ptr<Port> b, std::vector<std::unique_ptr<Port>>& keep,
                  Report& r) {
    auto a = attach_port(c, 2, 256);
    must_claim(a->session, must_bind(SOCK_DGRAM, c.server, base).get());
    const wire::MacAddr mac = nic_mac(a->session);
    auto frame_of = [&](std::uint32_t seq) {
        UdpSpec s{mac, mac, c.server, c.server, base, static_cast<std::uint16_t>(base + 1 + seq % 4)};
        s.payload = seq % 2 ? 1472 : 1400;  // IP total length 1500, or 1428 plus Ethernet padding
        s.frame_len = kLargestFrame;
        s.seq = seq;
        return udp_frame(s);
    };
    constexpr std::uint32_t kFrames = 4000;
    std::uint32_t sent = 0;
    std::uint32_t delivered = 0;
    std::uint32_t corrupt = 0;
    auto drain_b = [&] {
        for (RxRing& rx : b->rx) {
            const std::uint32_t n = rx.available();
            for (std::uint32_t k = 0; k < n; ++k) {
                const wire::Bytes f = rx.frame(k);
                const bool intact = f.size() == kLargestFrame &&
                                    std::ranges::equal(f, frame_of(wire::load_be32(f.data() + 42)));
                (intact ? delivered : corrupt) += 1;
            }
            rx.release(n);
        }
    };
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    while (sent < kFrames && Clock::now() < deadline) {
        for (TxRing& tx : a->tx) {
            const std::uint32_t n = std::min({tx.space(), 64u, kFrames - sent});
            for (std::uint32_t k = 0; k < n; ++k) tx.stage(k, frame_of(sent + k), static_cast<std::uint16_t>(kLargestFrame));
            if (n) tx.publish(n, true);
            sent += n;
        }
        drain_b();
    }
    std::uint32_t last = ~0u;
    (void)wait_until(
        [&] {
            drain_b();
            return std::exchange(last, delivered) == delivered;
        },
        2000, 200);
    const ctl::PortEntry ea = own_entry(*a);
    const ctl::PortEntry eb = own_entry(*b);
    r.expect(corrupt == 0, std::to_string(corrupt) + " frames arrived port to port altered");
    // How many arrive depends on how fast this tool drains (the rest are counted
    // ring_full); none may be refused as larger than the MTU, and some must cross.
    r.expect(delivered > 0, "none of " + std::to_string(sent) + " frames of the MTU's size arrived");
    r.expect(drops(ea, sw::DropReason::over_mtu) == 0, "frames that fit the MTU were counted over_mtu");
    r.expect(!ea.failed && !eb.failed, "a port that sent or received valid frames failed");
    const json j{{"sent", sent},
                 {"delivered_intact", delivered},
                 {"corrupt", corrupt},
                 {"sender_tx_frames", ea.tx_frames},
                 {"sender_drops", total_drops(ea)},
                 {"receiver_rx_frames", eb.rx_frames},
                 {"receiver_drops", total_drops(eb)}};
    keep.push_back(std::move(a));
    keep.push_back(std::move(b));
    return j;
}

int attack_oversize(const Ctx& c, std::uint16_t base) {
    Report r("oversize");
    std::vector<std::unique_ptr<Port>> keep;
    json slots = json::array();
    const auto p2p_base = static_cast<std::uint16_t>(base + 10);
    auto b = receiver(c, p2p_base);
    const std::uint16_t lens[] = {2048, static_cast<std::uint16_t>(ring::kMaxFrameSize + 1), 65535};
    for (std::uint32_t i = 0; i < std::size(lens); ++i) {
        std::unique_ptr<Port> p;
        const auto dst = static_cast<std::uint16_t>(p2p_base + 1 + i);
        slots.push_back(bad_slot(c, p, static_cast<std::uint16_t>(base + i), dst, lens[i], i % 2, r));
        if (i + 1 == std::size(lens)) {
            keep.push_back(std::move(p));  // the last failed port stays, with its counters
            break;
        }
        const std::uint32_t id = p->fds.id;
        p.reset();
        r.expect(port_gone(c, id), "port " + std::to_string(id) + " outlived its session");
    }
    r["bad_slots"] = slots;
    r["port_to_port"] = port_to_port(c, p2p_base, std::move(b), keep, r);
    const ctl::StatusReply st = daemon_status(c);
    r["handoff_drops"] = std::accumulate(std::begin(st.handoff_drops), std::end(st.handoff_drops), std::uint64_t{0});
    return c.finish(r);
}

// ---------------------------------------------------------------- 2. netns-proof

bool write_file(const char* path, const std::string& text, std::string& why) {
    Fd fd(::open(path, O_WRONLY | O_CLOEXEC));
    if (!fd || ::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
        why = std::string(path) + ": " + errno_text(errno);
        return false;
    }
    return true;
}

// Enters a new user namespace (we are root in it) and a new network namespace it owns.
bool enter_private_namespaces(std::string& why) {
    const uid_t uid = ::getuid();
    const gid_t gid = ::getgid();
    if (::unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0) {
        why = "unshare(CLONE_NEWUSER | CLONE_NEWNET): " + errno_text(errno);
        return false;
    }
    return write_file("/proc/self/setgroups", "deny", why) &&
           write_file("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1", why) &&
           write_file("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1", why);
}

// Brings our own lo up and gives it `addr` (as lo:1); returns what failed, or "".
std::string loopback_with(const wire::IpAddr& addr) {
    Fd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    if (::ioctl(s.get(), SIOCGIFFLAGS, &ifr) != 0) return "SIOCGIFFLAGS lo: " + errno_text(errno);
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
    if (::ioctl(s.get(), SIOCSIFFLAGS, &ifr) != 0) return "SIOCSIFFLAGS lo up: " + errno_text(errno);
    ifreq alias{};
    std::strncpy(alias.ifr_name, "lo:1", IFNAMSIZ - 1);
    const sockaddr_in sin = to_sockaddr(addr, 0);
    std::memcpy(&alias.ifr_addr, &sin, sizeof sin);
    if (::ioctl(s.get(), SIOCSIFADDR, &alias) != 0) return "SIOCSIFADDR lo:1 " + addr.to_string() + ": " + errno_text(errno);
    return {};
}

int attack_netns_proof(const Ctx& c, std::uint16_t port) {
    Report r("netns-proof");
    auto p = attach_port(c, 1, 64);  // the session is opened before we leave the namespace
    std::string why;
    if (!enter_private_namespaces(why)) {
        r.skip("unprivileged user namespaces are unavailable: " + why);
        return c.finish(r);
    }
    json tries = json::array();
    const std::string port_text = std::to_string(port);
    // The exact address first: in our namespace it would clash with a wildcard bind.
    if (const std::string err = loopback_with(c.server); !err.empty()) {
        tries.push_back({{"proof", "TCP " + c.server.to_string() + ":" + port_text + " on our own lo"}, {"skipped", err}});
    } else {
        Bound exact = bound_socket(SOCK_STREAM, c.server, port);
        tries.push_back(expect_refusal(p->session, exact, ctl::Status::foreign_namespace,
                                       "TCP " + c.server.to_string() + ":" + port_text + " on our own lo", r));
    }
    const wire::IpAddr any = wire::IpAddr::any(wire::IpFamily::v4);
    Bound tcp_any;
    (void)wait_until(
        [&] {  // the daemon may still hold the refused exact proof for a moment
            tcp_any = bound_socket(SOCK_STREAM, any, port);
            return tcp_any.err != EADDRINUSE;
        },
        1000, 10);
    tries.push_back(expect_refusal(p->session, tcp_any, ctl::Status::foreign_namespace,
                                   "TCP 0.0.0.0:" + port_text + " in our own network namespace", r));
    Bound udp_any = bound_socket(SOCK_DGRAM, any, port);
    tries.push_back(expect_refusal(p->session, udp_any, ctl::Status::foreign_namespace,
                                   "UDP 0.0.0.0:" + port_text + " in our own network namespace", r));
    Bound tcp6_any = bound_socket(SOCK_STREAM, wire::IpAddr::any(wire::IpFamily::v6), port);
    tries.push_back(expect_refusal(p->session, tcp6_any, ctl::Status::foreign_namespace,
                                   "TCP [::]:" + port_text + " in our own network namespace", r));
    r["tries"] = tries;
    return c.finish(r);
}

// ---------------------------------------------------------------- 3. bind-to-device

int attack_bind_to_device(const Ctx& c, std::uint16_t port, const std::string& device) {
    Report r("bind-to-device");
    auto p = attach_port(c, 1, 64);
    json tries = json::array();
    int refused_by_kernel = 0;
    SockOpts by_name;
    by_name.device = device;
    Bound udp = bound_socket(SOCK_DGRAM, c.server, port, by_name);
    refused_by_kernel += udp.err != 0;
    tries.push_back(expect_refusal(p->session, udp, ctl::Status::bound_to_device, "UDP with SO_BINDTODEVICE " + device, r));
    SockOpts by_index;
    by_index.bind_ifindex = static_cast<int>(::if_nametoindex(device.c_str()));
    Bound tcp = bound_socket(SOCK_STREAM, c.server, static_cast<std::uint16_t>(port + 1), by_index);
    refused_by_kernel += tcp.err != 0;
    tries.push_back(expect_refusal(p->session, tcp, ctl::Status::bound_to_device, "TCP with SO_BINDTOIFINDEX " + device, r));
    r["tries"] = tries;
    r["uid"] = ::getuid();
    if (refused_by_kernel == 2)
        r.skip("the kernel refused SO_BINDTODEVICE to uid " + std::to_string(::getuid()) + ": run this case as root");
    return c.finish(r);
}

// ---------------------------------------------------------------- 4. freebind

struct AddressTry {
    std::string what;
    wire::IpAddr addr;
    int type;
    SockOpts opts;
};

std::vector<AddressTry> non_local_addresses(const wire::IpAddr& spoof, const wire::IpAddr& server) {
    SockOpts freebind;
    freebind.freebind = true;
    SockOpts broadcast = freebind;
    broadcast.broadcast = true;
    SockOpts transparent;
    transparent.transparent = true;
    std::vector<AddressTry> tries{{"FREEBIND UDP, an address of no interface", spoof, SOCK_DGRAM, freebind},
                                  {"FREEBIND TCP, an address of no interface", spoof, SOCK_STREAM, freebind},
                                  {"TRANSPARENT UDP, an address of no interface", spoof, SOCK_DGRAM, transparent}};
    if (server.family == wire::IpFamily::v6) {
        tries.push_back({"loopback", ip_of("::1"), SOCK_DGRAM, {}});
        tries.push_back({"multicast", ip_of("ff0e::1"), SOCK_DGRAM, freebind});  // global scope: no scope id to bind
        return tries;
    }
    wire::IpAddr subnet_broadcast = server;
    subnet_broadcast.bytes[3] = 0xff;  // the test hosts' prefix is a /24 (scripts/netns.sh)
    tries.push_back({"loopback", ip_of("127.0.0.1"), SOCK_DGRAM, {}});
    tries.push_back({"multicast", ip_of("224.0.0.1"), SOCK_DGRAM, freebind});
    tries.push_back({"limited broadcast", ip_of("255.255.255.255"), SOCK_DGRAM, broadcast});
    tries.push_back({"subnet broadcast", subnet_broadcast, SOCK_DGRAM, broadcast});
    return tries;
}

// With a legitimate claim, one valid frame and `count` frames whose source is `spoof`:
// the spoofed ones must be dropped as src_not_claimed, and only the valid one leaves.
json spoofed_frames(const Ctx& c, std::uint16_t port, const wire::IpAddr& spoof, const wire::IpAddr& peer,
                    const wire::MacAddr& peer_mac, std::uint32_t count, Report& r) {
    auto p = attach_port(c, 1, 256);
    must_claim(p->session, must_bind(SOCK_DGRAM, c.server, port).get());
    const wire::MacAddr mac = nic_mac(p->session);
    TxRing& tx = p->tx[0];
    const auto valid = udp_frame({mac, peer_mac, c.server, peer, port, 9});
    tx.stage(0, valid, static_cast<std::uint16_t>(valid.size()));
    for (std::uint32_t k = 1; k <= count; ++k) {
        UdpSpec s{mac, peer_mac, spoof, peer, port, 9};
        s.seq = k;
        const auto f = udp_frame(s);
        tx.stage(k, f, static_cast<std::uint16_t>(f.size()));
    }
    tx.publish(count + 1, true);
    ctl::PortEntry e{};
    (void)wait_until(
        [&] {
            e = own_entry(*p);
            return e.tx_frames + total_drops(e) >= count + 1;
        },
        2000);
    const std::uint64_t not_claimed = drops(e, sw::DropReason::src_not_claimed);
    r.expect(not_claimed == count,
             std::to_string(not_claimed) + " of " + std::to_string(count) + " spoofed frames counted src_not_claimed");
    r.expect(e.tx_frames == 1, std::to_string(e.tx_frames) + " frames left, expected only the valid one");
    return {{"sent_spoofed", count}, {"src_not_claimed", not_claimed}, {"tx_frames", e.tx_frames}, {"drops", total_drops(e)}};
}

int attack_freebind(const Ctx& c, std::uint16_t port, const wire::IpAddr& spoof, const wire::IpAddr& peer,
                    const wire::MacAddr& peer_mac) {
    Report r("freebind");
    auto p = attach_port(c, 1, 64);
    json tries = json::array();
    std::uint16_t next = port;
    for (AddressTry& t : non_local_addresses(spoof, c.server)) {
        Bound b = bound_socket(t.type, t.addr, next++, t.opts);
        json j = expect_refusal(p->session, b, ctl::Status::address_not_local, t.what + " " + t.addr.to_string(), r);
        tries.push_back(std::move(j));
    }
    r["tries"] = tries;
    r["spoof"] = spoofed_frames(c, static_cast<std::uint16_t>(port + 20), spoof, peer, peer_mac, 10, r);
    return c.finish(r);
}

// ---------------------------------------------------------------- 5. capture-other

// Sends a capture request; returns the first answer within timeout_ms (nullopt: none).
std::optional<ctl::Header> capture_answer(Session& s, std::uint32_t port, std::uint32_t milliseconds, int timeout_ms) {
    ctl::CaptureRequest req;
    req.port_id = port;
    req.milliseconds = milliseconds;
    req.h.seq = s.next_seq();
    if (int err = s.send(&req, sizeof req)) throw Misbehaved("capture: send: " + errno_text(err));
    auto m = s.receive(timeout_ms);
    if (!m) return std::nullopt;
    if (m->size == 0) throw Misbehaved("capture: the daemon hung up");
    return m->header();
}

// Entries of other users must hide pid, uid, claims and counters; ours must show them.
json check_port_list(Port& p, Report& r) {
    json out = json::array();
    for (const ctl::PortEntry& e : list<ctl::PortEntry>(p.session, ctl::Op::list_ports)) {
        out.push_back({{"port", e.port_id}, {"shown", e.shown}, {"pid", e.pid}, {"uid", e.uid}, {"claims", e.claims}});
        if (e.port_id == p.fds.id) {
            r.expect(e.shown == 1 && e.uid == ::getuid() && e.pid == ::getpid(),
                     "our own port's details are not shown to us");
            continue;
        }
        const bool counters_hidden = e.rx_frames == 0 && e.rx_bytes == 0 && e.tx_frames == 0 && e.tx_bytes == 0 &&
                                     total_drops(e) == 0 &&
                                     std::ranges::all_of(e.faults, [](std::uint64_t f) { return f == 0; });
        r.expect(e.shown == 0 && e.pid == 0 && e.uid == 0 && e.claims == 0 && counters_hidden,
                 "port " + std::to_string(e.port_id) + " of another user shows its details");
    }
    return out;
}

int attack_capture_other(const Ctx& c, std::uint32_t victim) {
    Report r("capture-other");
    auto p = attach_port(c, 1, 64);
    Session s = Session::open(c.socket);
    const auto answer = capture_answer(s, victim, 500, kReplyMs);
    if (!answer) {
        r.expect(false, "no refusal within 1 s: the capture of port " + std::to_string(victim) + " seems to run");
    } else {
        r["victim_capture"] = {{"op", op_name(answer->op)}, {"status", status_name(answer->status)}};
        r.expect(answer->status == ctl::Status::permission_denied,
                 "capture of another user's port answered " + op_name(answer->op) + " " + status_name(answer->status));
    }
    // Our own port: allowed, so the refusal above is about ownership.
    Session own = Session::open(c.socket);
    const auto first = capture_answer(own, p->fds.id, 300, kSetupMs);
    const bool own_ok = first && first->status == ctl::Status::ok && first->op == ctl::Op::capture_end;
    r["own_capture"] = first ? json{{"op", op_name(first->op)}, {"status", status_name(first->status)}} : json("no answer");
    r.expect(own_ok, "the capture of our own port did not run to its end");
    r["ports"] = check_port_list(*p, r);
    return c.finish(r);
}

// ---------------------------------------------------------------- 6. slow-reader, linger, in-use

// Attach, claim and release on a fresh connection; returns the slowest reply in ms.
// Every reply must come within limit_ms (Misbehaved otherwise).
double control_round(const Ctx& c, std::uint16_t port, int limit_ms) {
    Session s = Session::open(c.socket);
    double worst = 0;
    auto timed = [&](const char* what, const std::function<ctl::Status()>& step) {
        const auto t0 = Clock::now();
        const ctl::Status st = step();
        worst = std::max(worst, ms_since(t0));
        if (st != ctl::Status::ok) throw Misbehaved(std::string(what) + " refused: " + status_name(st));
    };
    PortFds fds;
    timed("attach", [&] { return attach(s, 1, 64, &fds, limit_ms); });
    Fd proof = must_bind(SOCK_DGRAM, c.server, port);
    ctl::Tuple t{};
    timed("claim", [&] { return claim(s, proof.get(), &t, limit_ms); });
    timed("release", [&] { return release(s, t, limit_ms); });
    return worst;
}

int attack_slow_reader(const Ctx& c, std::uint16_t port, std::uint32_t requests, std::uint32_t rounds) {
    Report r("slow-reader");
    const ctl::StatusReply before = daemon_status(c);
    auto slow = attach_port(c, 1, 64);
    const ctl::Op ops[] = {ctl::Op::list_ports, ctl::Op::list_claims, ctl::Op::status};
    std::uint32_t sent = 0, stalls = 0, done = 0;
    double worst = 0;
    bool dropped = false;
    bool probe_failed = false;
    auto probe = [&] {
        try {
            worst = std::max(worst, control_round(c, port, kReplyMs));
            ++done;
        } catch (const Misbehaved& e) {
            r.expect(false, std::string("while a client does not read: ") + e.what());
            probe_failed = true;
        }
    };
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    // At least `requests`, and on until the daemon drops us (its outbox bound decides
    // when), up to ten times as many.
    while (sent < 10 * requests && !dropped && !probe_failed && Clock::now() < deadline) {
        if (sent >= requests && hung_up(slow->session, 0)) break;
        ctl::Header h{.op = ops[sent % 3], .seq = slow->session.next_seq()};
        const int err = slow->session.send(&h, sizeof h, {}, MSG_DONTWAIT);
        if (err == 0) {
            if (++sent % 100 == 0) probe();
        } else if (err == EAGAIN) {  // the daemon does not take more from us for now
            pollfd pf{slow->session.fd(), POLLOUT, 0};
            (void)::poll(&pf, 1, 20);
            if (++stalls % 25 == 0) probe();
        } else {
            dropped = err == EPIPE || err == ECONNRESET;
            r["send_error"] = errno_text(err);
        }
    }
    dropped = dropped || hung_up(slow->session, 3000);
    while (done < rounds && !probe_failed) probe();
    slow->session.hang_up();  // if the daemon still waits on it, it is free now: the report can ask
    const ctl::StatusReply after = daemon_status(c);
    r["requests_sent"] = sent;
    r["send_stalls"] = stalls;
    r["dropped"] = dropped;
    r["slow_clients"] = {before.slow_clients, after.slow_clients};
    r["control_rounds"] = done;
    r["worst_reply_ms"] = worst;
    r.expect(dropped, "the daemon kept a session that never reads its replies");
    r.expect(after.slow_clients > before.slow_clients, "control.slow_clients did not grow");
    r.expect(done >= rounds,
             "only " + std::to_string(done) + " of " + std::to_string(rounds) + " control rounds were answered in time");
    return c.finish(r);
}

// Closes `fd`, interrupting a lingering close after 100 ms with SIGALRM (the wait in
// tcp_close ends on a signal; the kernel finishes the close in the background). Returns
// true if the close had to wait: ours was the last reference.
bool close_was_last(Fd& fd) {
    struct sigaction sa {};
    sa.sa_handler = [](int) {};
    (void)::sigaction(SIGALRM, &sa, nullptr);  // no SA_RESTART
    itimerval alarm{};
    alarm.it_value.tv_usec = 100'000;
    (void)::setitimer(ITIMER_REAL, &alarm, nullptr);
    const auto t0 = Clock::now();
    fd.reset();
    const itimerval off{};
    (void)::setitimer(ITIMER_REAL, &off, nullptr);
    return ms_since(t0) >= 50;
}

// The release of a claim whose proof, after the claim, was connected to a deaf listener,
// filled, and set to linger for an hour: the daemon's close of it must not block. Tried
// again (up to 3 times, on other ports) if the daemon had dropped its copy before we
// closed ours, as an audit of the changed proof may.
int attack_linger(const Ctx& c, std::uint16_t port) {
    Report r("linger");
    auto p = attach_port(c, 1, 64);
    for (int attempt = 1; attempt <= 3; ++attempt) {
        const auto claim_port = static_cast<std::uint16_t>(port + 2 * (attempt - 1));
        const auto listener_port = static_cast<std::uint16_t>(claim_port + 1);
        const Fd listener = deaf_listener(c.server, listener_port);
        Fd proof = must_bind(SOCK_STREAM, c.server, claim_port);
        ctl::Tuple t{};
        must_claim(p->session, proof.get(), &t);
        r["queued_bytes"] = connect_and_fill(proof.get(), c.server, listener_port);
        linger_for_an_hour(proof.get());
        if (close_was_last(proof)) {  // the daemon let go first: not a test of its close
            (void)release(p->session, t);
            continue;
        }
        r["attempts"] = attempt;
        const auto t0 = Clock::now();
        try {
            const ctl::Status st = release(p->session, t, kReplyMs);
            r["release"] = {{"status", status_name(st)}, {"ms", ms_since(t0)}};
            // not_found: the daemon's audit revoked the changed proof first; also fine.
            r.expect(st == ctl::Status::ok || st == ctl::Status::not_found, "release answered " + status_name(st));
        } catch (const Misbehaved& e) {
            r.expect(false, std::string("release of a lingering proof: ") + e.what());
        }
        break;
    }
    if (!r["attempts"].is_number()) r.skip("the daemon dropped each changed proof before we closed ours (3 tries)");
    // Everyone else is still served, over two audit periods.
    double worst = 0;
    const auto end = Clock::now() + std::chrono::milliseconds(2500);
    while (Clock::now() < end) {
        const auto ms = timed_status(c, kReplyMs, r, "after the release of a lingering proof");
        if (!ms) break;
        worst = std::max(worst, *ms);
        ::usleep(200 * 1000);
    }
    r["status_worst_ms"] = worst;
    return c.finish(r);
}

// Sibling of the linger attack: lingering sockets sent where the daemon only closes them.
// A case counts only when the daemon got the last reference, that is when our own close
// returned at once; otherwise (the daemon closed its copy first) it is tried again. Each
// try has a deaf listener of its own, closed at its end: that resets the lingering
// socket, so a daemon stuck on one case is freed for the next.
int attack_linger_junk(const Ctx& c, std::uint16_t port) {
    Report r("linger-junk");
    json cases = json::array();
    std::uint16_t next = port;
    auto deliver = [&](const std::string& what, const std::function<void(Session&, int)>& send_it) {
        json j{{"sent", what}};
        for (int attempt = 1; attempt <= 5; ++attempt) {
            const Fd listener = deaf_listener(c.server, next);
            Fd junk = lingering_socket(c.server, next++);
            Session s = Session::open(c.socket);
            send_it(s, junk.get());
            if (close_was_last(junk)) continue;  // the daemon was faster: not a test
            (void)s.receive(200);
            s.hang_up();  // whatever the daemon kept waiting for, the session ends now
            const auto ms = timed_status(c, kReplyMs, r, "after " + what);
            j["attempts"] = attempt;
            j["status_ms"] = ms ? json(*ms) : json("no answer");
            break;
        }
        if (!j.contains("status_ms")) j["inconclusive"] = "the daemon closed its copy before we closed ours, 5 times";
        cases.push_back(std::move(j));
    };
    auto with_op = [](ctl::Op op) {
        return [op](Session& s, int fd) {
            ctl::Header h{.op = op, .seq = s.next_seq()};
            const int fds[] = {fd};
            (void)s.send(&h, sizeof h, fds);
        };
    };
    deliver("an unknown op with a lingering socket", with_op(static_cast<ctl::Op>(200)));
    deliver("a claim before attach with a lingering socket", with_op(ctl::Op::claim));
    deliver("a zero-length message with a lingering socket", [](Session& s, int fd) {
        const int fds[] = {fd};
        (void)s.send(nullptr, 0, fds);
    });
    deliver("a status request with 40 copies of a lingering socket (control data truncated)", [](Session& s, int fd) {
        ctl::Header h{.op = ctl::Op::status, .seq = s.next_seq()};
        const std::vector<int> fds(40, fd);
        (void)s.send(&h, sizeof h, fds);
    });
    // The daemon never sees this one: it is in flight inside a UNIX socket the daemon is
    // sent, and goes when that socket's queue is purged at the daemon's close.
    deliver("an unknown op with a UNIX socket holding a lingering socket in flight", [](Session& s, int fd) {
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) != 0) fail_errno("socketpair");
        const Fd near(sv[0]), far(sv[1]);
        const char byte = 0;
        iovec iov{const_cast<char*>(&byte), 1};
        alignas(cmsghdr) std::uint8_t control[CMSG_SPACE(sizeof(int))] = {};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        cmsghdr* cm = CMSG_FIRSTHDR(&msg);
        if (!cm) throw SetupError("no room for SCM_RIGHTS");
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        std::memcpy(CMSG_DATA(cm), &fd, sizeof fd);
        if (::sendmsg(near.get(), &msg, 0) != 1) fail_errno("sendmsg on our own socketpair");
        ctl::Header h{.op = static_cast<ctl::Op>(200), .seq = s.next_seq()};
        const int fds[] = {far.get()};
        (void)s.send(&h, sizeof h, fds);
    });
    r["cases"] = cases;
    return c.finish(r);
}

int attack_in_use(const Ctx& c, std::uint16_t port) {
    Report r("in-use");
    auto p = attach_port(c, 1, 64);
    json tries = json::array();
    Bound udp = bound_socket(SOCK_DGRAM, c.server, port);
    if (!udp.err) connect_to(udp.fd.get(), c.server, static_cast<std::uint16_t>(port + 1));
    tries.push_back(expect_refusal(p->session, udp, ctl::Status::socket_in_use, "UDP, connected", r));
    Bound listening = bound_socket(SOCK_STREAM, c.server, static_cast<std::uint16_t>(port + 2));
    if (!listening.err && ::listen(listening.fd.get(), 1) != 0) fail_errno("listen");
    tries.push_back(expect_refusal(p->session, listening, ctl::Status::socket_in_use, "TCP, listening", r));
    Fd listener = deaf_listener(c.server, static_cast<std::uint16_t>(port + 4));
    Bound connected = bound_socket(SOCK_STREAM, c.server, static_cast<std::uint16_t>(port + 3));
    if (!connected.err) connect_to(connected.fd.get(), c.server, static_cast<std::uint16_t>(port + 4));
    tries.push_back(expect_refusal(p->session, connected, ctl::Status::socket_in_use, "TCP, connected", r));
    r["tries"] = tries;
    return c.finish(r);
}

// ---------------------------------------------------------------- 7. fd-leak, memory, limits

// Sends one message per fresh session, waiting for its answer (a reply or a hang-up);
// returns how many got none within kReplyMs (it stops at the first).
std::uint32_t junk_rounds(const Ctx& c, std::uint32_t rounds, const std::function<void(Session&)>& send_it,
                          bool expect_answer) {
    for (std::uint32_t i = 0; i < rounds; ++i) {
        Session s = Session::open(c.socket);
        send_it(s);
        if (expect_answer && !s.receive(kReplyMs)) return 1;
    }
    return 0;
}

int attack_fd_leak(const Ctx& c, std::uint16_t port, std::uint32_t rounds) {
    Report r("fd-leak");
    const ctl::StatusReply before = daemon_status(c);
    const Fd e1 = make_eventfd(), e2 = make_eventfd(), e3 = make_eventfd();
    const int three[] = {e1.get(), e2.get(), e3.get()};
    const std::vector<int> forty(40, e1.get());
    const Fd bound = must_bind(SOCK_DGRAM, c.server, 0);
    const int proof[] = {bound.get()};
    json sent = json::object();
    std::uint32_t unanswered = 0;

    // Zero-length messages with descriptors, each on a session of its own (it may end
    // the session): one descriptor (as many as a claim carries) and three. A status round
    // trip every 25 lets the daemon keep up.
    Session pacer = Session::open(c.socket);
    for (const std::span<const int> fds : {std::span<const int>(three).first(1), std::span<const int>(three)}) {
        for (std::uint32_t i = 0; i < rounds; ++i) {
            Session s = Session::open(c.socket);
            (void)s.send(nullptr, 0, fds);
            if (i % 25 == 24) (void)daemon_status(pacer);
        }
        sent["zero_length_with_" + std::to_string(fds.size()) + (fds.size() == 1 ? "_fd" : "_fds")] = rounds;
    }

    auto header_with = [](ctl::Op op) { return ctl::Header{.op = op}; };
    unanswered += junk_rounds(
        c, 50,
        [&](Session& s) {
            ctl::Header h = header_with(ctl::Op::status);
            (void)s.send(&h, sizeof h, forty);
        },
        true);
    unanswered += junk_rounds(
        c, 20,
        [&](Session& s) {
            ctl::AttachRequest req;
            req.ring_pairs = 1;
            req.slots_per_ring = 64;
            (void)s.send(&req, sizeof req, forty);
        },
        true);
    sent["forty_fds_truncated"] = 70;
    unanswered += junk_rounds(
        c, 50,
        [&](Session& s) {
            ctl::ClaimRequest req;
            (void)s.send(&req, sizeof req, proof);
        },
        true);
    sent["claim_before_attach"] = 50;
    unanswered += junk_rounds(
        c, 50,
        [&](Session& s) {
            ctl::Header h = header_with(static_cast<ctl::Op>(200));
            (void)s.send(&h, sizeof h, three);
        },
        true);
    unanswered += junk_rounds(
        c, 30,
        [&](Session& s) {
            ctl::Header h = header_with(ctl::Op::status);
            h.magic = 0x12345678;
            (void)s.send(&h, sizeof h, three);
        },
        true);
    unanswered += junk_rounds(
        c, 30,
        [&](Session& s) {
            ctl::Header h = header_with(ctl::Op::status);
            h.version = 1;
            (void)s.send(&h, sizeof h, three);
        },
        true);
    unanswered += junk_rounds(
        c, 30,
        [&](Session& s) {
            const std::uint8_t shorter[8] = {};
            (void)s.send(shorter, sizeof shorter, three);
        },
        true);
    unanswered += junk_rounds(
        c, 30,
        [&](Session& s) {
            std::vector<std::uint8_t> longer(2 * ctl::kMaxMessage, 0);
            ctl::Header h = header_with(ctl::Op::status);
            std::memcpy(longer.data(), &h, sizeof h);
            (void)s.send(longer.data(), longer.size(), three);
        },
        true);
    sent["unknown_op_bad_magic_bad_version_short_long_with_3_fds"] = 170;

    // Hang-ups with a request and its descriptors still in flight.
    for (std::uint32_t i = 0; i < 50; ++i) {
        Session s = Session::open(c.socket);
        if (attach(s, 1, 64, nullptr) != ctl::Status::ok) throw SetupError("attach refused");
        ctl::ClaimRequest req;
        (void)s.send(&req, sizeof req, proof);
        ctl::Header h = header_with(static_cast<ctl::Op>(200));
        (void)s.send(&h, sizeof h, three);
        s.hang_up();
        if (i % 10 == 9) (void)daemon_status(pacer);
    }
    sent["hang_up_with_fds_in_flight"] = 50;

    // Claims that end in a hang-up, not a release: the daemon must close each proof, so
    // that the kernel frees the port for the next round.
    double worst_rebind = 0;
    for (std::uint32_t i = 0; i < 20; ++i) {
        const auto t0 = Clock::now();
        Bound b;
        const bool free = wait_until(
            [&] {
                b = bound_socket(SOCK_DGRAM, c.server, port);
                return b.err == 0;
            },
            2000, 5);
        r.expect(free, "the port of a claim whose session hung up stayed bound: " + b.refused);
        if (!free) break;
        worst_rebind = std::max(worst_rebind, ms_since(t0));
        Session s = Session::open(c.socket);
        if (attach(s, 1, 64, nullptr) != ctl::Status::ok) throw SetupError("attach refused");
        must_claim(s, b.fd.get());
    }
    sent["claims_ended_by_hang_up"] = 20;
    r["sent"] = sent;
    r["worst_rebind_ms"] = worst_rebind;
    r.expect(unanswered == 0, "a malformed message got neither a reply nor a hang-up within 1 s");

    pacer.hang_up();
    ctl::StatusReply after{};
    const bool settled = wait_until(
        [&] {
            after = daemon_status(c);
            return after.sessions <= before.sessions;
        },
        5000, 50);
    r.expect(settled, "the daemon still counts " + std::to_string(after.sessions) + " sessions, " +
                          std::to_string(before.sessions) + " before");
    r["sessions"] = {before.sessions, after.sessions};
    r["open_descriptors"] = {before.open_descriptors, after.open_descriptors};
    r["bad_requests"] = {before.bad_requests, after.bad_requests};
    r["descriptors_exhausted"] = after.descriptors_exhausted;
    if (before.open_descriptors) {
        r.expect(after.open_descriptors <= before.open_descriptors + 2, "the daemon's own descriptor count grew");
    }
    return c.finish(r);
}

struct Attempts {
    std::uint32_t ok = 0;
    ctl::Status refusal = ctl::Status::ok;  // ok: never refused
    std::uint64_t region_bytes = 0;
};

// Attaches ports of one geometry, each on its own session (kept in `keep`), until the
// daemon refuses one or `max` succeeded.
Attempts attach_until_refused(const Ctx& c, std::uint32_t pairs, std::uint32_t slots, std::uint32_t max,
                              std::vector<Session>& keep) {
    Attempts a;
    while (a.ok < max) {
        Session s = Session::open(c.socket);
        PortFds f;
        const ctl::Status st = attach(s, pairs, slots, &f, 20000);  // the daemon populates the region
        if (st != ctl::Status::ok) {
            a.refusal = st;
            break;
        }
        struct stat sb {};
        if (::fstat(f.memfd.get(), &sb) == 0) a.region_bytes = static_cast<std::uint64_t>(sb.st_size);
        keep.push_back(std::move(s));
        ++a.ok;
    }
    return a;
}

// The region size of a geometry, as ring/abi.hpp lays it out.
std::uint64_t region_bytes(std::uint32_t pairs, std::uint32_t slots) {
    auto round_up = [](std::uint64_t v, std::uint64_t to) { return (v + to - 1) / to * to; };
    const std::uint64_t rings = 2 * std::uint64_t{pairs};
    const std::uint64_t stride = round_up(sizeof(ring::RingControl) + std::uint64_t{slots} * sizeof(ring::Slot),
                                          ring::kCacheLine);
    const std::uint64_t buffers = round_up(sizeof(ring::RegionHeader) + rings * stride, 4096);
    return buffers + rings * slots * ring::kBufferSize;
}

json attempts_json(const Attempts& a, std::uint32_t pairs, std::uint32_t slots, std::uint32_t expected) {
    return {{"ring_pairs", pairs},
            {"slots_per_ring", slots},
            {"region_mib", static_cast<double>(region_bytes(pairs, slots)) / (1 << 20)},
            {"attached", a.ok},
            {"expected", expected},
            {"refusal", status_name(a.refusal)}};
}

int attack_memory(const Ctx& c, std::uint32_t budget_mib, std::uint32_t max_ports) {
    Report r("memory");
    std::vector<Session> keep;
    const std::uint64_t budget = std::uint64_t{budget_mib} << 20;
    std::uint64_t used = 0;
    json groups = json::array();
    // The largest geometry first, then one just under an eighth of a GiB.
    const std::pair<std::uint32_t, std::uint32_t> geometries[] = {{8, ring::kMaxSlotsPerRing}, {2, 16000}};
    for (const auto& [pairs, slots] : geometries) {
        const std::uint64_t size = region_bytes(pairs, slots);
        const auto by_memory = static_cast<std::uint32_t>((budget - used) / size);
        const auto held = static_cast<std::uint32_t>(keep.size());
        const std::uint32_t expected = std::min(by_memory, max_ports > held ? max_ports - held : 0);
        const Attempts a = attach_until_refused(c, pairs, slots, expected + 4, keep);
        groups.push_back(attempts_json(a, pairs, slots, expected));
        r.expect(a.ok == expected && a.refusal == ctl::Status::limit_reached,
                 std::to_string(a.ok) + " ports of " + std::to_string(size >> 20) + " MiB attached (expected " +
                     std::to_string(expected) + "), then " + status_name(a.refusal) + " (expected limit_reached)");
        used += a.ok * size;
    }
    r["budget_mib"] = budget_mib;
    r["groups"] = groups;
    r["held_mib"] = used >> 20;
    std::cerr << "ms-attack: memory: holding " << keep.size() << " ports" << std::endl;
    return c.finish(r);
}

int attack_port_limit(const Ctx& c, std::uint32_t expected) {
    Report r("port-limit");
    std::vector<Session> keep;
    const Attempts a = attach_until_refused(c, 1, 64, expected + 4, keep);
    r["attempts"] = attempts_json(a, 1, 64, expected);
    r.expect(a.ok == expected && a.refusal == ctl::Status::limit_reached,
             std::to_string(a.ok) + " small ports attached (expected " + std::to_string(expected) + "), then " +
                 status_name(a.refusal));
    std::cerr << "ms-attack: port-limit: holding " << keep.size() << " ports" << std::endl;
    return c.finish(r);
}

int attack_claim_limit(const Ctx& c, std::uint16_t port, std::uint32_t expected) {
    Report r("claim-limit");
    auto p = attach_port(c, 1, 64);
    std::uint32_t ok = 0;
    ctl::Status refusal = ctl::Status::ok;
    for (std::uint32_t i = 0; i < expected + 4; ++i) {
        Fd proof = must_bind(SOCK_DGRAM, c.server, static_cast<std::uint16_t>(port + i));
        refusal = claim(p->session, proof.get());
        if (refusal != ctl::Status::ok) break;
        ++ok;
    }
    r["claimed"] = ok;
    r["refusal"] = status_name(refusal);
    r.expect(ok == expected && refusal == ctl::Status::limit_reached,
             std::to_string(ok) + " claims on one session (expected " + std::to_string(expected) + "), then " +
                 status_name(refusal));
    // The limit is per session: another session of the same user may still claim.
    auto q = attach_port(c, 1, 64);
    const ctl::Status other = claim(q->session,
                                    must_bind(SOCK_DGRAM, c.server, static_cast<std::uint16_t>(port + expected + 10)).get());
    r["other_session_claim"] = status_name(other);
    r.expect(other == ctl::Status::ok, "a claim on another session was refused: " + status_name(other));
    std::cerr << "ms-attack: claim-limit: holding " << ok + 1 << " claims" << std::endl;
    return c.finish(r);
}

// A root (or any) client's plain attach, claim and release, each answered within 1 s.
int probe(const Ctx& c, std::uint16_t port) {
    Report r("probe");
    try {
        if (port) {
            r["worst_reply_ms"] = control_round(c, port, kReplyMs);
        } else {
            Session s = Session::open(c.socket);
            const ctl::Status st = attach(s, 1, 64, nullptr, kReplyMs);
            r["attach"] = status_name(st);
            r.expect(st == ctl::Status::ok, "attach refused: " + status_name(st));
        }
    } catch (const Misbehaved& e) {
        r.expect(false, e.what());
    }
    r["uid"] = ::getuid();
    return c.finish(r);
}

// ---------------------------------------------------------------- 8. flood

int attack_flood(const Ctx& c, std::uint16_t port, const wire::IpAddr& peer, const wire::MacAddr& peer_mac, double seconds) {
    Report r("flood");
    auto p = attach_port(c, 1, 1024);
    must_claim(p->session, must_bind(SOCK_DGRAM, c.server, port).get());
    const auto frame = udp_frame({nic_mac(p->session), peer_mac, c.server, peer, port, 9});
    const auto len = static_cast<std::uint16_t>(frame.size());
    TxRing& tx = p->tx[0];
    c.signals->arm();
    std::cerr << "ms-attack: flooding " << peer.to_string() << ":9 from " << c.server.to_string() << ":" << port << std::endl;
    std::uint64_t published = 0;
    const auto t0 = Clock::now();
    const auto end = t0 + std::chrono::duration<double>(seconds);
    while (Clock::now() < end && !c.signals->stopping()) {
        const std::uint32_t n = tx.space();
        if (n == 0) {
            tx.wait_for_room(p->fds.to_app[0].get(), 5);
            continue;
        }
        for (std::uint32_t k = 0; k < n; ++k) tx.stage(k, frame, len);
        tx.publish(n);
        published += n;
    }
    const double elapsed = ms_since(t0) / 1000;
    const ctl::PortEntry e = own_entry(*p);
    r["published"] = published;
    r["seconds"] = elapsed;
    r["frames_per_second"] = static_cast<double>(published) / elapsed;
    r["tx_frames"] = e.tx_frames;
    r["drops"] = total_drops(e);
    r.expect(!e.failed, "the flooding port failed");
    return c.finish(r);
}

// ---------------------------------------------------------------- 9. wildcard

struct WildcardCounts {
    std::uint64_t port_local = 0;  // unicast to the interface's address: the claim's own
    std::uint64_t port_other = 0;  // anything else the port received: the attack worked
    std::uint64_t kernel = 0;      // what the kernel delivered to our copy of the proof
    std::set<std::string> other_destinations;
    std::set<std::string> kernel_destinations;
};

void count_port_frames(Port& p, const wire::IpAddr& server, WildcardCounts& w) {
    RxRing& rx = p.rx[0];
    const std::uint32_t n = rx.available();
    for (std::uint32_t k = 0; k < n; ++k) {
        const auto dst = ipv4_destination(rx.frame(k));
        if (dst && *dst == server) {
            ++w.port_local;
        } else {
            ++w.port_other;
            w.other_destinations.insert(dst ? dst->to_string() : "not IPv4");
        }
    }
    rx.release(n);
}

void count_kernel_datagrams(int proof, WildcardCounts& w) {
    for (;;) {
        std::uint8_t buf[2048];
        iovec iov{buf, sizeof buf};
        alignas(cmsghdr) std::uint8_t control[CMSG_SPACE(sizeof(in_pktinfo))] = {};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        if (::recvmsg(proof, &msg, MSG_DONTWAIT) < 0) return;
        ++w.kernel;
        for (cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
            if (cm->cmsg_level != IPPROTO_IP || cm->cmsg_type != IP_PKTINFO) continue;
            in_pktinfo info{};
            std::memcpy(&info, CMSG_DATA(cm), sizeof info);
            w.kernel_destinations.insert(
                wire::IpAddr::load_v4(reinterpret_cast<const std::uint8_t*>(&info.ipi_addr)).to_string());
        }
    }
}

int attack_wildcard(const Ctx& c, std::uint16_t port, double seconds) {
    Report r("wildcard");
    auto p = attach_port(c, 1, 256);
    Fd proof = must_bind(SOCK_DGRAM, wire::IpAddr::any(wire::IpFamily::v4), port);
    must_claim(p->session, proof.get());
    set_int_option(proof.get(), IPPROTO_IP, IP_PKTINFO, 1, "IP_PKTINFO");
    p->rx[0].want_kicks();
    c.signals->arm();
    std::cerr << "ms-attack: wildcard: claimed udp 0.0.0.0:" << port << ", counting" << std::endl;
    WildcardCounts w;
    const auto end = Clock::now() + std::chrono::duration<double>(seconds);
    while (Clock::now() < end && !c.signals->stopping()) {
        pollfd fds[] = {{p->fds.to_app[0].get(), POLLIN, 0}, {proof.get(), POLLIN, 0}, {c.signals->fd(), POLLIN, 0}};
        (void)::poll(fds, 3, 50);
        if (fds[0].revents) drain(p->fds.to_app[0].get());
        count_port_frames(*p, c.server, w);
        count_kernel_datagrams(proof.get(), w);
    }
    r["port_received_local_unicast"] = w.port_local;
    r["port_received_other"] = w.port_other;
    r["port_other_destinations"] = w.other_destinations;
    r["kernel_received"] = w.kernel;
    r["kernel_destinations"] = w.kernel_destinations;
    r.expect(w.port_other == 0, "the wildcard claim received " + std::to_string(w.port_other) +
                                    " frames that were not unicast to the interface's address");
    return c.finish(r);
}

// ---------------------------------------------------------------- 10. reuseaddr

// Binds a kernel socket with SO_REUSEADDR (and SO_REUSEPORT) on a claimed tuple: the
// kernel must refuse it while the claim holds.
json kernel_bind(int type, const wire::IpAddr& addr, std::uint16_t port, Report& r) {
    SockOpts o;
    o.reuseaddr = true;
    o.reuseport = true;
    Bound b = bound_socket(type, addr, port, o);
    const bool listening = b.err == 0 && type == SOCK_STREAM && ::listen(b.fd.get(), 1) == 0;
    const std::string what = std::string(type == SOCK_STREAM ? "TCP " : "UDP ") + addr.to_string() + ":" +
                             std::to_string(port);
    r.expect(b.err == EADDRINUSE, "a kernel socket with SO_REUSEADDR|SO_REUSEPORT " +
                                      (b.err ? "got " + b.refused : std::string("bound")) +
                                      (listening ? " and listens" : "") + " on the claimed " + what);
    return {{"tuple", what}, {"kernel", b.err ? b.refused : std::string("bound")}};
}

int attack_reuseaddr(const Ctx& c, std::uint16_t port, bool wait_signal) {
    Report r("reuseaddr");
    auto p = attach_port(c, 1, 64);
    json tries = json::array();
    const std::pair<int, const char*> kinds[] = {{SOCK_STREAM, "TCP"}, {SOCK_DGRAM, "UDP"}};
    std::uint16_t next = port;
    // SO_REUSEADDR would let any user share the port: refused. SO_REUSEPORT lets only the
    // same user share it (the kernel's rule), so such a proof is accepted: it makes a claim
    // that only this user's own SO_REUSEPORT sockets can join.
    for (const auto& [type, name] : kinds) {
        SockOpts o;
        o.reuseaddr = true;
        Bound b = bound_socket(type, c.server, next++, o);
        tries.push_back(
            expect_refusal(p->session, b, ctl::Status::reusable_socket, std::string(name) + " with SO_REUSEADDR", r));
    }
    r["tries"] = tries;
    // Clean claims; we keep our copies of the proofs.
    const auto tcp_port = static_cast<std::uint16_t>(port + 10);
    const auto udp_port = static_cast<std::uint16_t>(port + 11);
    Fd tcp_proof = must_bind(SOCK_STREAM, c.server, tcp_port);
    Fd udp_proof = must_bind(SOCK_DGRAM, c.server, udp_port);
    ctl::Tuple tcp_t{}, udp_t{};
    must_claim(p->session, tcp_proof.get(), &tcp_t);
    must_claim(p->session, udp_proof.get(), &udp_t);
    r["kernel_binds"] = {kernel_bind(SOCK_STREAM, c.server, tcp_port, r), kernel_bind(SOCK_DGRAM, c.server, udp_port, r)};
    c.signals->arm();
    std::cerr << "ms-attack: reuseaddr: holding tcp " << c.server.to_string() << ":" << tcp_port << " and udp "
              << c.server.to_string() << ":" << udp_port << (wait_signal ? ", waiting for SIGUSR1" : "") << std::endl;
    if (wait_signal) r.expect(c.signals->wait_usr1(30000), "no SIGUSR1 within 30 s");
    // Now change the proofs after the fact: the daemon's audit must revoke both claims. A
    // proof claimed without SO_REUSEPORT that takes it later lets a socket of ours bind
    // beside it; the claim was proven as the tuple's sole holder, so it goes.
    const std::uint64_t revoked_before = daemon_status(p->session).claims_revoked;
    set_int_option(tcp_proof.get(), SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR on the kept proof");
    set_int_option(udp_proof.get(), SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT on the kept proof");
    SockOpts beside;
    beside.reuseport = true;
    const Bound sharer = bound_socket(SOCK_DGRAM, c.server, udp_port, beside);
    r.expect(sharer.err == 0, "the kernel refused a socket beside a proof that took SO_REUSEPORT");
    const auto t0 = Clock::now();
    const bool revoked = wait_until(
        [&] {
            for (const auto& e : list<ctl::ClaimEntry>(p->session, ctl::Op::list_claims)) {
                if (same_tuple(e.tuple, tcp_t) || same_tuple(e.tuple, udp_t)) return false;
            }
            return true;
        },
        5000, 100);
    const std::uint64_t revoked_after = daemon_status(p->session).claims_revoked;
    r["revoked_after_ms"] = revoked ? json(ms_since(t0)) : json("not within 5 s");
    r["claims_revoked"] = {revoked_before, revoked_after};
    r.expect(revoked, "claims whose proofs took SO_REUSEADDR, or SO_REUSEPORT and a sharer, afterwards still hold after 5 s");
    r.expect(revoked_after >= revoked_before + 2, "control.claims_revoked did not grow by 2");
    return c.finish(r);
}

// ---------------------------------------------------------------- 11. vlan

int attack_vlan(const Ctx& c, std::uint16_t port, const wire::IpAddr& peer, const wire::MacAddr& peer_mac) {
    Report r("vlan");
    auto p = attach_port(c, 1, 64);
    must_claim(p->session, must_bind(SOCK_DGRAM, c.server, port).get());
    const auto valid = udp_frame({nic_mac(p->session), peer_mac, c.server, peer, port, 9});
    const std::vector<std::vector<std::uint8_t>> frames = {valid, with_tag(valid, wire::ethertype::vlan, 100),
                                                           with_tag(valid, wire::ethertype::vlan, 0),  // 802.1Q, priority tag
                                                           with_tag(valid, 0x88a8, 100)};  // 802.1ad
    TxRing& tx = p->tx[0];
    for (std::uint32_t k = 0; k < frames.size(); ++k) tx.stage(k, frames[k], static_cast<std::uint16_t>(frames[k].size()));
    tx.publish(static_cast<std::uint32_t>(frames.size()), true);
    ctl::PortEntry e{};
    (void)wait_until(
        [&] {
            e = own_entry(*p);
            return e.tx_frames + total_drops(e) >= frames.size();
        },
        2000);
    const std::uint64_t tagged = drops(e, sw::DropReason::vlan_tagged);
    r["tx_frames"] = e.tx_frames;
    r["vlan_tagged"] = tagged;
    r["drops"] = total_drops(e);
    r.expect(e.tx_frames == 1, std::to_string(e.tx_frames) + " frames left, expected only the untagged one");
    r.expect(tagged >= 2, "the 802.1Q-tagged frames were not counted vlan_tagged");
    r.expect(total_drops(e) == frames.size() - 1, "not every tagged frame was dropped");
    return c.finish(r);
}

// ---------------------------------------------------------------- 18. super-segments

// A fresh port that claims TCP `port` and publishes one chain `build` stages; the switch
// must fail the port with `want`, and nothing else.
struct WantedFault {
    ring::RingFault fault;
    const char* name;  // as msctl shows it (the tool links no ring code)
};

json bad_chain(const Ctx& c, std::uint16_t port, WantedFault want, const std::string& what,
               const std::function<std::uint32_t(Port&, TxRing&)>& build, Report& r) {
    auto p = attach_port(c, 1, 64);
    Fd proof = must_bind(SOCK_STREAM, c.server, port);
    must_claim(p->session, proof.get());
    p->tx[0].publish(build(*p, p->tx[0]), true);
    ctl::PortEntry e{};
    const bool failed = wait_until(
        [&] {
            e = own_entry(*p);
            return e.failed != 0;
        },
        2000);
    const std::uint64_t n = faults(e, want.fault);
    r.expect(failed && n == 1, what + ": the port did not fail with " + want.name);
    const std::uint32_t id = p->fds.id;
    p.reset();
    r.expect(port_gone(c, id), "port " + std::to_string(id) + " outlived its session");
    return {{"chain", what}, {"failed", failed}, {want.name, n}};
}

int attack_super(const Ctx& c, std::uint16_t port, const wire::IpAddr& peer, const wire::MacAddr& peer_mac) {
    Report r("super");
    auto p = attach_port(c, 1, 256);
    Fd proof = must_bind(SOCK_STREAM, c.server, port);
    must_claim(p->session, proof.get());
    const wire::MacAddr mac = nic_mac(p->session);
    TxRing& tx = p->tx[0];
    // One valid super-segment, one from a port we do not claim, one that would make more
    // segments than the bound, and one whose payload we rewrite while the switch reads it.
    const auto valid = tcp_super(mac, peer_mac, c.server, peer, port, 30000);
    const auto spoofed = tcp_super(mac, peer_mac, c.server, peer, static_cast<std::uint16_t>(port + 1), 30000);
    std::uint32_t k = tx.stage_chain(0, valid, 1448);
    k += tx.stage_chain(k, spoofed, 1448);
    k += tx.stage_chain(k, valid, 300);  // 100 segments
    const std::uint32_t rewritten = tx.slot(k + 1).offset;  // a payload slot of the last chain
    k += tx.stage_chain(k, valid, 1448);
    tx.publish(k, true);
    for (int round = 0; round < 2000; ++round) {  // only our own bytes can change
        std::memset(p->region->bytes(rewritten, ring::kBufferSize), round & 0xff, 64);
    }
    ctl::PortEntry e{};
    (void)wait_until(
        [&] {
            e = own_entry(*p);
            return e.tx_frames + total_drops(e) >= 4;
        },
        2000);
    r["sent"] = {{"tx_frames", e.tx_frames},
                 {"tx_super", e.tx_super},
                 {"src_not_claimed", drops(e, sw::DropReason::src_not_claimed)},
                 {"bad_segment", drops(e, sw::DropReason::bad_segment)},
                 {"failed", e.failed != 0}};
    r.expect(e.tx_super == 2 && e.tx_frames == 2, "expected the valid and the rewritten super-segment to leave");
    r.expect(drops(e, sw::DropReason::src_not_claimed) == 1, "the spoofed super-segment was not counted src_not_claimed");
    r.expect(drops(e, sw::DropReason::bad_segment) == 1, "the 100-segment super-segment was not counted bad_segment");
    r.expect(e.failed == 0, "a port that sent well-formed chains failed");

    json chains = json::array();
    chains.push_back(bad_chain(
        c, static_cast<std::uint16_t>(port + 2), {ring::RingFault::slot_bad_offset, "slot_bad_offset"},
        "a payload slot outside the region",
        [&](Port& q, TxRing& t) {
            const std::uint32_t n = t.stage_chain(
                0, tcp_super(mac, peer_mac, c.server, peer, static_cast<std::uint16_t>(port + 2), 9000), 1448);
            t.slot(2).offset = static_cast<std::uint32_t>(q.region->size());
            return n;
        },
        r));
    chains.push_back(bad_chain(
        c, static_cast<std::uint16_t>(port + 3), {ring::RingFault::slot_bad_offset, "slot_bad_offset"},
        "a payload slot in the ring metadata",
        [&](Port&, TxRing& t) {
            const std::uint32_t n = t.stage_chain(
                0, tcp_super(mac, peer_mac, c.server, peer, static_cast<std::uint16_t>(port + 3), 9000), 1448);
            t.slot(1).offset = 0;
            return n;
        },
        r));
    chains.push_back(bad_chain(
        c, static_cast<std::uint16_t>(port + 4), {ring::RingFault::slot_bad_flags, "slot_bad_flags"},
        "a chain that does not start with a segment",
        [&](Port&, TxRing& t) {
            return t.stage_chain(0, tcp_super(mac, peer_mac, c.server, peer, static_cast<std::uint16_t>(port + 4), 9000),
                                 1448, 200, ring::kSlotMore);
        },
        r));
    chains.push_back(bad_chain(
        c, static_cast<std::uint16_t>(port + 5), {ring::RingFault::chain_too_long, "chain_too_long"},
        "a chain that never ends",
        [&](Port&, TxRing& t) {
            const auto super = tcp_super(mac, peer_mac, c.server, peer, static_cast<std::uint16_t>(port + 5), 100);
            for (std::uint32_t i = 0; i < 63; ++i) {
                t.stage(i, super, 60);
                t.slot(i).flags = i == 0 ? ring::kSlotSegment | ring::kSlotMore : ring::kSlotMore;
            }
            return 63u;
        },
        r));
    r["bad_chains"] = chains;
    return c.finish(r);
}

}  // namespace
}  // namespace attack

int main(int argc, char** argv) {
    using namespace attack;
    CLI::App app{"ms-attack: a hostile MultiStack client for the security tests (tests/netns/security.sh)"};
    app.require_subcommand(1);
    app.fallthrough();
    std::string socket, server_text, peer_text, peer_mac_text, spoof_text = "198.18.0.99", device = "lo";
    bool hold = false, wait_signal = false;
    std::uint16_t port = 0;
    std::uint32_t victim = 0, rounds = 500, requests = 2000, expected = 0, budget_mib = 0, max_ports = 64;
    double seconds = 5;
    app.add_option("--socket", socket, "multistackd's control socket")->required();
    app.add_option("--server", server_text, "the interface's address (IPv4, or IPv6 for freebind)")->required();
    app.add_flag("--hold", hold, "after printing, keep the sessions (ports, claims) until SIGTERM");
    auto sub = [&app](const char* name, const char* what) { return app.add_subcommand(name, what); };
    auto with_port = [&port](CLI::App* s, const char* what) {
        s->add_option("--port", port, what)->required();
        return s;
    };
    auto with_peer = [&](CLI::App* s) {
        s->add_option("--peer", peer_text, "the peer's address, of the server's family")->required();
        s->add_option("--peer-mac", peer_mac_text, "the peer's MAC address")->required();
        return s;
    };
    auto* oversize = with_port(sub("oversize", "tx slots longer than a frame; maximum-size frames port to port"),
                               "first UDP port");
    auto* netns = with_port(sub("netns-proof", "a proof bound in a network namespace of our own"), "TCP/UDP port (22)");
    auto* device_cmd = with_port(sub("bind-to-device", "a proof bound to another device"), "first port");
    device_cmd->add_option("--device", device, "the device to bind to")->capture_default_str();
    auto* freebind = with_peer(
        with_port(sub("freebind", "proofs of non-local addresses; frames with a spoofed source"), "first port"));
    freebind->add_option("--spoof", spoof_text, "an address of no interface")->capture_default_str();
    auto* capture = sub("capture-other", "capture another user's port; list ports");
    capture->add_option("--victim", victim, "the other user's port id")->required();
    auto* slow = with_port(sub("slow-reader", "requests never read; the control plane must go on serving others"),
                           "UDP port for the control rounds");
    slow->add_option("--requests", requests, "requests sent without reading, at least (then on until dropped)")
        ->capture_default_str();
    auto* linger_cmd = with_port(sub("linger", "release a claim whose proof lingers for an hour on close"),
                                 "TCP port (and port+1)");
    auto* junk = with_port(sub("linger-junk", "lingering sockets sent where the daemon only closes them"),
                           "TCP listener port");
    auto* in_use = with_port(sub("in-use", "proofs that are connected or listening"), "first port (five used)");
    auto* fd_leak = with_port(sub("fd-leak", "descriptors on every path that must close them"), "UDP port");
    fd_leak->add_option("--rounds", rounds, "zero-length messages with descriptors")->capture_default_str();
    auto* memory = sub("memory", "the largest ports until the per-user memory budget refuses");
    memory->add_option("--budget-mib", budget_mib, "the daemon's --max-port-memory-per-user")->required();
    memory->add_option("--max-ports", max_ports, "the daemon's --max-ports-per-user")->capture_default_str();
    auto* port_limit = sub("port-limit", "small ports until the per-user port limit refuses");
    port_limit->add_option("--expect", expected, "the daemon's --max-ports-per-user")->required();
    auto* claim_limit = with_port(sub("claim-limit", "claims on one session until the per-session limit refuses"),
                                  "first UDP port");
    claim_limit->add_option("--expect", expected, "the daemon's --max-claims-per-session")->required();
    auto* flood = with_peer(with_port(sub("flood", "valid frames as fast as the switch takes them"), "UDP port"));
    flood->add_option("--seconds", seconds, "at most this long (SIGTERM ends it sooner)")->capture_default_str();
    auto* wildcard = with_port(sub("wildcard", "claim 0.0.0.0:PORT and count what the port receives"), "UDP port");
    wildcard->add_option("--seconds", seconds, "at most this long (SIGTERM ends it sooner)")->capture_default_str();
    auto* reuse = with_port(sub("reuseaddr", "proofs with SO_REUSEADDR/SO_REUSEPORT, before and after the claim"),
                            "first port");
    reuse->add_flag("--wait-signal", wait_signal, "wait for SIGUSR1 before changing the kept proofs");
    auto* vlan = with_peer(with_port(sub("vlan", "802.1Q-tagged frames from a claimed source"), "UDP port"));
    auto* super_cmd = with_peer(with_port(sub("super", "TCP super-segments: spoofed, oversegmented, rewritten in flight, "
                                                       "and slot chains out of bounds, unflagged or endless"),
                                          "first TCP port (and the next five)"));
    bool flip = false;
    std::uint32_t sessions = 64, rss_margin_mib = 24;
    double cpu_share = 0.25;
    std::uint16_t victim_port = 7;
    auto* narrow = with_port(sub("narrow", "wildcard proofs connected to loopback after the claim"),
                             "first port (four used)");
    auto* dodge = with_port(sub("reuse-dodge", "SO_REUSEADDR for bind, cleared before the claim, beside kernel sockets"),
                            "TCP port of a kernel connection (and the UDP port after it)");
    auto* claim_flood = with_port(sub("claim-flood", "claims on many sessions until the user's budget refuses"),
                                  "first UDP port");
    claim_flood->add_option("--sessions", sessions, "sessions at most")->capture_default_str();
    auto* spin = with_port(sub("spin", "a half-published chain and a failed port with a pending slot"),
                           "TCP port (and UDP port+1)");
    spin->add_option("--max-cpu-share", cpu_share, "of one core the daemon may use meanwhile")->capture_default_str();
    auto* unread = sub("unread-many", "many sessions that never read their replies");
    unread->add_option("--sessions", sessions, "sessions")->capture_default_str();
    unread->add_option("--rss-margin-mib", rss_margin_mib, "how much the daemon may grow")->capture_default_str();
    auto* mtu = with_peer(
        with_port(sub("mtu", "frames and super-segments larger than an MTU of 1280"), "UDP port (and TCP port+1)"));
    auto* table = sub("table-busy", "our socket table held mid-write (or flipped with --flip) for good");
    table->add_flag("--flip", flip, "flip the sequence number without end instead");
    auto* take = with_port(sub("take-over", "another user's claim with sockets of our own; a join between our sessions"),
                           "UDP port for our own join");
    take->add_option("--victim-port", victim_port, "the other user's UDP port")->capture_default_str();
    auto* probe_cmd = sub("probe", "a plain attach (and claim and release with --port), each answered within 1 s");
    probe_cmd->add_option("--port", port, "UDP port to claim and release");
    CLI11_PARSE(app, argc, argv);

    std::string attack = app.get_subcommands().front()->get_name();
    ::signal(SIGPIPE, SIG_IGN);
    try {
        Signals signals;
        const Ctx c{socket, ip_of(server_text), &signals, hold};
        auto peer = [&] { return ip_of(peer_text); };
        auto peer_mac = [&] {
            wire::MacAddr m;
            if (!wire::parse_mac(peer_mac_text, m)) throw SetupError("not a MAC address: " + peer_mac_text);
            return m;
        };
        if (oversize->parsed()) return attack_oversize(c, port);
        if (netns->parsed()) return attack_netns_proof(c, port);
        if (device_cmd->parsed()) return attack_bind_to_device(c, port, device);
        if (freebind->parsed()) return attack_freebind(c, port, ip_of(spoof_text), peer(), peer_mac());
        if (capture->parsed()) return attack_capture_other(c, victim);
        if (slow->parsed()) return attack_slow_reader(c, port, requests, 20);
        if (linger_cmd->parsed()) return attack_linger(c, port);
        if (junk->parsed()) return attack_linger_junk(c, port);
        if (in_use->parsed()) return attack_in_use(c, port);
        if (fd_leak->parsed()) return attack_fd_leak(c, port, rounds);
        if (memory->parsed()) return attack_memory(c, budget_mib, max_ports);
        if (port_limit->parsed()) return attack_port_limit(c, expected);
        if (claim_limit->parsed()) return attack_claim_limit(c, port, expected);
        if (flood->parsed()) return attack_flood(c, port, peer(), peer_mac(), seconds);
        if (wildcard->parsed()) return attack_wildcard(c, port, seconds);
        if (reuse->parsed()) return attack_reuseaddr(c, port, wait_signal);
        if (vlan->parsed()) return attack_vlan(c, port, peer(), peer_mac());
        if (super_cmd->parsed()) return attack_super(c, port, peer(), peer_mac());
        if (probe_cmd->parsed()) return probe(c, port);
        if (narrow->parsed()) return attack_narrow(c, port);
        if (dodge->parsed()) return attack_reuse_dodge(c, port);
        if (claim_flood->parsed()) return attack_claim_flood(c, port, sessions);
        if (spin->parsed()) return attack_spin(c, port, cpu_share);
        if (unread->parsed()) return attack_unread_many(c, sessions, rss_margin_mib);
        if (mtu->parsed()) return attack_mtu(c, port, peer(), peer_mac());
        if (table->parsed()) return attack_table_busy(c, flip);
        if (take->parsed()) return attack_take_over(c, victim_port, port);
        return kExitUsage;
    } catch (const Misbehaved& e) {
        std::cout << json{{"attack", attack}, {"defended", false}, {"error", e.what()}}.dump() << std::endl;
        return kExitBroken;
    } catch (const std::exception& e) {
        std::cerr << "ms-attack: " << attack << ": " << e.what() << "\n";
        std::cout << json{{"attack", attack}, {"setup_error", e.what()}}.dump() << std::endl;
        return kExitSetup;
    }
}
