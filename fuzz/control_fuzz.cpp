// libFuzzer target: a hostile client of the control plane (docs/DESIGN.md §6, §11). The input is
// a script of messages, each with an op, a length, arbitrary bytes and a choice of
// descriptors to pass with it (sockets of every kind a proof may or may not be, and
// things that are not sockets), sent to a real ControlServer over its UNIX socket,
// with or without reading the replies, from one or two sessions that may hang up at
// any point. After every input the daemon must hold exactly the descriptors it held
// before (every received descriptor closed on every path) and no port or claim.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "ctl/protocol.hpp"
#include "ctl/seqpacket.hpp"
#include "daemon/control_server.hpp"
#include "daemon/descriptors.hpp"
#include "daemon/null_data_path.hpp"
#include "input.hpp"
#include "sw/nic.hpp"

namespace {

using namespace ms;

void check(bool ok, const char* what) {
    if (ok) return;
    std::fprintf(stderr, "control_fuzz: %s\n", what);
    std::abort();
}

// A socket bound to the IPv4 wildcard on an ephemeral port: a proof the daemon accepts.
int bound_udp(bool reuse) {
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    if (reuse) (void)::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    (void)::bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin);
    return fd;
}

int connected_udp() {
    const int fd = bound_udp(false);
    sockaddr_in peer{};
    peer.sin_family = AF_INET;
    peer.sin_port = htons(9);
    peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    (void)::connect(fd, reinterpret_cast<sockaddr*>(&peer), sizeof peer);
    return fd;
}

// One descriptor of the kind `kind` names; the caller closes it after sending.
int make_descriptor(std::uint8_t kind) {
    switch (kind % 6) {
        case 0: return bound_udp(false);
        case 1: return bound_udp(true);
        case 2: return connected_udp();
        case 3: return ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);  // not bound
        case 4: return ::eventfd(0, EFD_CLOEXEC);
        default: return ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    }
}

struct Rig {
    Rig()
        : nic(1, 64, wire::MacAddr{{2, 0, 0, 0, 0, 1}}),
          sw(sw::Switch::create(nic, sw::SwitchConfig{.max_ports = 8}).value()) {
        path = "/tmp/ms-control-fuzz-" + std::to_string(::getpid()) + ".sock";
        daemon::Limits limits;
        limits.claims_per_session = 4;
        limits.ports_per_user = 2;
        limits.port_memory_per_user = 8u << 20;
        limits.outbox_bytes = 16u << 10;
        daemon::ServerContext ctx{*sw, data_path, iface, {daemon::own_netns_cookie(), 0, {}}, limits, 256};
        auto opened = daemon::ControlServer::open(ctx, path, std::nullopt);
        check(opened.ok(), "the control server did not open");
        server = std::move(opened).value();
    }
    void settle() {
        for (int i = 0; i < 64 && server->run_once(0); ++i) {
        }
    }
    int connect() const {
        const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        sockaddr_un sun{};
        sun.sun_family = AF_UNIX;
        std::memcpy(sun.sun_path, path.c_str(), path.size() + 1);
        (void)::connect(fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun);
        return fd;
    }

    daemon::NullDataPath data_path;
    netlink::InterfaceInfo iface{.name = "fuzz0", .ifindex = 0, .mac = {}, .mtu = 1500, .addresses = {}, .gateway = {}};
    sw::MemoryNic nic;
    std::unique_ptr<sw::Switch> sw;
    std::string path;
    std::unique_ptr<daemon::ControlServer> server;
};

void drain_replies(int fd) {
    alignas(8) std::uint8_t buf[ctl::kMaxMessage];
    std::vector<int> fds;
    while (ctl::receive_message(fd, buf, sizeof buf, fds, ctl::kMaxFds) > 0) ctl::close_all(fds);
}

// One message: a header the daemon recognises (or not), bytes from the input, and
// descriptors of the kinds the input names.
void send_one(int fd, fuzz::Input& in) {
    const std::uint8_t op = in.byte();
    const std::uint8_t size_code = in.byte();  // 255: longer than any message may be
    const std::size_t len = size_code == 255 ? ctl::kMaxMessage + 1 : std::size_t{size_code} * 4;
    std::vector<std::uint8_t> msg(len);
    ctl::Header h{.op = static_cast<ctl::Op>(op % 16), .seq = op};
    if (len > 0) std::memcpy(msg.data(), &h, std::min(len, sizeof h));  // data() may be null when empty
    for (std::size_t i = sizeof h; i < len; ++i) msg[i] = in.byte();
    std::vector<int> fds(in.byte() % 4);
    for (int& d : fds) d = make_descriptor(in.byte());
    (void)ctl::send_message(fd, msg.data(), msg.size(), fds, true);
    for (int d : fds) ::close(d);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static Rig rig;
    static const std::uint32_t baseline = daemon::open_descriptor_count();
    fuzz::Input in{data, size};
    int clients[2] = {rig.connect(), rig.connect()};
    while (in.n > 0) {
        const std::uint8_t action = in.byte();
        int& fd = clients[action & 1];
        if ((action & 0x0e) == 0x0e) {  // hang up, and maybe come back
            ::close(fd);
            fd = rig.connect();
        } else {
            send_one(fd, in);
        }
        rig.settle();
        if (action & 0x10) drain_replies(fd);
    }
    for (int fd : clients) ::close(fd);
    rig.settle();
    check(rig.server->session_count() == 0, "a session outlived its client");
    check(rig.sw->port_ids().empty(), "a port outlived its session");
    check(rig.sw->registry().entries().empty(), "a claim outlived its session");
    // The Reaper closes what clients sent on its own thread: give it a moment.
    for (int i = 0; i < 1000 && daemon::open_descriptor_count() != baseline; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    check(daemon::open_descriptor_count() == baseline, "descriptors leaked");
    return 0;
}
