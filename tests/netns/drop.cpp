// ms-drop: the test bed's lossy link (netem is absent on this kernel). Attaches the tc
// program of drop.bpf.c to an interface of the current network namespace (ingress by
// default), so that LOSS percent of the TCP packets it receives (or, with --packets
// icmp-too-big, of the ICMP "fragmentation needed" / ICMPv6 "packet too big" messages:
// a path MTU black hole) are dropped at random,
// by a sequence drawn from --seed; runs until SIGTERM or SIGINT, then detaches and
// prints {"dropped": N, "passed": N} on stdout. It prints "dropping" on stderr once
// attached. Loaded with libbpf (this system's tc cannot load BTF maps).
//
// Usage: ms-drop --dev IF --loss PERCENT [--seed N] [--egress] [--packets tcp|icmp-too-big]
#include <CLI/CLI.hpp>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <net/if.h>
#include <signal.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>

namespace ms::nic {
extern const std::uint8_t drop_bpf_object[];
extern const std::size_t drop_bpf_object_size;
}  // namespace ms::nic

namespace {

constexpr std::uint32_t kRandomSlots = 65536;  // RANDOM_SLOTS in drop.bpf.c

// Must match struct drop_state in drop.bpf.c.
struct DropState {
    std::uint64_t next = 0;
    std::uint64_t dropped = 0;
    std::uint64_t passed = 0;
    std::uint32_t threshold = 0;
    std::uint32_t kind = 0;  // KIND_TCP or KIND_ICMP_TOO_BIG
};

[[noreturn]] void die(const std::string& what, int err) {
    std::fprintf(stderr, "ms-drop: %s: %s\n", what.c_str(), std::strerror(err));
    std::exit(1);
}

int map_fd(bpf_object* obj, const char* name) {
    const int fd = bpf_object__find_map_fd_by_name(obj, name);
    if (fd < 0) die(std::string("map ") + name, -fd);
    return fd;
}

// The seeded sequence the program draws from.
void fill_random(int fd, std::uint32_t seed) {
    std::mt19937 gen(seed);
    for (std::uint32_t k = 0; k < kRandomSlots; ++k) {
        const auto value = static_cast<std::uint32_t>(gen());
        if (bpf_map_update_elem(fd, &k, &value, BPF_ANY) != 0) die("filling ms_drop_random", errno);
    }
}

sigset_t stop_signals() {
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    return stop;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
        "Drops a fraction of the TCP (or ICMP too-big) packets an interface receives or sends, at random, until stopped"};
    std::string dev;
    double loss = 0;
    std::uint32_t seed = 1;
    bool egress = false;
    std::string packets = "tcp";
    app.add_option("--dev", dev, "interface, in this network namespace")->required();
    app.add_option("--loss", loss, "percent of those packets dropped")->required()->check(CLI::Range(0.0, 100.0));
    app.add_option("--packets", packets,
                   "which packets: tcp, or icmp-too-big (ICMP fragmentation needed, ICMPv6 packet too big)")
        ->check(CLI::IsMember({"tcp", "icmp-too-big"}))
        ->capture_default_str();
    app.add_option("--seed", seed, "seed of the random sequence")->capture_default_str();
    app.add_flag("--egress", egress, "drop what the interface sends instead of what it receives");
    CLI11_PARSE(app, argc, argv);

    // Block the stop signals before anything is attached, so that none is lost.
    const sigset_t stop = stop_signals();
    pthread_sigmask(SIG_BLOCK, &stop, nullptr);

    const unsigned ifindex = if_nametoindex(dev.c_str());
    if (ifindex == 0) die("interface " + dev, errno);
    bpf_object* obj = bpf_object__open_mem(ms::nic::drop_bpf_object, ms::nic::drop_bpf_object_size, nullptr);
    if (!obj) die("opening the program", errno);
    if (const int rc = bpf_object__load(obj); rc != 0) die("loading the program", -rc);
    bpf_program* prog = bpf_object__find_program_by_name(obj, "ms_drop");
    if (!prog) die("program ms_drop", ENOENT);
    fill_random(map_fd(obj, "ms_drop_random"), seed);
    const int state_fd = map_fd(obj, "ms_drop_state");
    DropState state;
    state.kind = packets == "tcp" ? 0 : 1;
    state.threshold = static_cast<std::uint32_t>(
        std::min(std::ldexp(loss / 100.0, 32), static_cast<double>(std::numeric_limits<std::uint32_t>::max())));
    const std::uint32_t zero = 0;
    if (bpf_map_update_elem(state_fd, &zero, &state, BPF_ANY) != 0) die("setting the loss", errno);

    bpf_tc_hook hook{};
    hook.sz = sizeof hook;
    hook.ifindex = static_cast<int>(ifindex);
    hook.attach_point = egress ? BPF_TC_EGRESS : BPF_TC_INGRESS;
    const int created = bpf_tc_hook_create(&hook);
    if (created != 0 && created != -EEXIST) die("creating the clsact qdisc on " + dev, -created);
    bpf_tc_opts opts{};
    opts.sz = sizeof opts;
    opts.handle = 1;
    opts.priority = 1;
    opts.prog_fd = bpf_program__fd(prog);
    if (const int rc = bpf_tc_attach(&hook, &opts); rc != 0) die("attaching to " + dev, -rc);
    std::fprintf(stderr, "ms-drop: dropping %.2f%% of %s packets %s %s (seed %u)\n", loss, packets.c_str(),
                 egress ? "sent by" : "received by", dev.c_str(), seed);

    int signal_number = 0;
    (void)sigwait(&stop, &signal_number);

    (void)bpf_map_lookup_elem(state_fd, &zero, &state);
    opts.prog_fd = opts.prog_id = opts.flags = 0;
    (void)bpf_tc_detach(&hook, &opts);
    if (created == 0) {
        hook.attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
        (void)bpf_tc_hook_destroy(&hook);  // the qdisc was ours
    }
    bpf_object__close(obj);
    std::printf("{\"dropped\": %llu, \"passed\": %llu}\n", static_cast<unsigned long long>(state.dropped),
                static_cast<unsigned long long>(state.passed));
    return 0;
}
