#include "nic/left_behind.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

namespace ms::nic {

namespace {

constexpr const char* kProgramName = "ms_claim";
constexpr std::uint32_t kMaxClaims = 65536;  // ms_claims' size in every version so far

// A map of the program, by name, with its layout.
struct MapFound {
    int fd = -1;
    bpf_map_info info{};
};

class MapFds {
public:
    ~MapFds() {
        for (const MapFound& m : maps) ::close(m.fd);
    }
    [[nodiscard]] const MapFound* named(const char* name) const {
        for (const MapFound& m : maps) {
            if (std::string(m.info.name) == name) return &m;
        }
        return nullptr;
    }
    std::vector<MapFound> maps;
};

// The program's maps, opened by id.
MapFds maps_of(int program_fd) {
    bpf_prog_info info{};
    std::uint32_t len = sizeof info;
    MapFds out;
    if (bpf_obj_get_info_by_fd(program_fd, &info, &len) != 0 || info.nr_map_ids == 0) return out;
    std::vector<std::uint32_t> ids(info.nr_map_ids);
    const std::uint32_t count = info.nr_map_ids;
    info = {};
    info.nr_map_ids = count;
    info.map_ids = reinterpret_cast<std::uint64_t>(ids.data());
    len = sizeof info;
    if (bpf_obj_get_info_by_fd(program_fd, &info, &len) != 0) return out;
    for (std::uint32_t k = 0; k < std::min(count, info.nr_map_ids); ++k) {
        MapFound m;
        m.fd = bpf_map_get_fd_by_id(ids[k]);
        if (m.fd < 0) continue;
        std::uint32_t mlen = sizeof m.info;
        if (bpf_obj_get_info_by_fd(m.fd, &m.info, &mlen) != 0) {
            ::close(m.fd);
            continue;
        }
        out.maps.push_back(m);
    }
    return out;
}

std::string program_name(int fd) {
    bpf_prog_info info{};
    std::uint32_t len = sizeof info;
    return bpf_obj_get_info_by_fd(fd, &info, &len) == 0 ? std::string(info.name) : std::string();
}

// Reads the record into `left`; false (left.unreadable says why) if it cannot be trusted.
bool read_record(const MapFds& maps, LeftBehind& left) {
    const MapFound* m = maps.named("ms_daemon");
    if (!m) {
        left.unreadable = "it keeps no record (a daemon from before restarts were kept)";
        return false;
    }
    if (m->info.key_size != 4 || m->info.value_size != sizeof(DaemonRecord) || m->info.max_entries != 1) {
        left.unreadable = "its record has another layout (" + std::to_string(m->info.value_size) + " bytes)";
        return false;
    }
    const std::uint32_t zero = 0;
    if (bpf_map_lookup_elem(m->fd, &zero, &left.record) != 0) {
        left.unreadable = std::string("its record cannot be read: ") + std::strerror(errno);
        return false;
    }
    const DaemonRecord& r = left.record;
    if (r.version == 0 || r.version > DaemonRecord::kVersion) {
        left.unreadable = "its record is of version " + std::to_string(r.version) + " (this daemon reads 1 to " +
                          std::to_string(DaemonRecord::kVersion) + ")";
        return false;
    }
    if (r.outage_limit_ns > std::uint64_t{3600} * 1'000'000'000 || r.heartbeat_ns > monotonic_ns()) {
        left.unreadable = "its record's times are out of range";
        return false;
    }
    return true;
}

// Reads the claims into `left`; false (left.unreadable says why) if they cannot be trusted.
bool read_claims(const MapFds& maps, LeftBehind& left) {
    const MapFound* m = maps.named("ms_claims");
    if (!m || m->info.key_size != sizeof(BpfClaimKey) || m->info.value_size != 4 || m->info.max_entries > kMaxClaims) {
        left.unreadable = "its claim map is missing or of another layout";
        return false;
    }
    BpfClaimKey key{};
    BpfClaimKey next{};
    const void* at = nullptr;
    while (bpf_map_get_next_key(m->fd, at, &next) == 0) {
        if ((next.protocol != IPPROTO_TCP && next.protocol != IPPROTO_UDP) || (next.family != 4 && next.family != 6) ||
            left.claims.size() >= kMaxClaims) {
            left.unreadable = "its claim map holds a key no daemon writes";
            left.claims.clear();
            return false;
        }
        left.claims.push_back(from_bpf(next));
        key = next;
        at = &key;
    }
    return true;
}

}  // namespace

std::uint64_t read_xdp_stat(int stats_fd, XdpStat stat) {
    const int cpus = libbpf_num_possible_cpus();
    if (cpus <= 0) return 0;
    std::vector<std::uint64_t> per_cpu(static_cast<std::size_t>(cpus));
    const auto which = static_cast<std::uint32_t>(stat);
    if (bpf_map_lookup_elem(stats_fd, &which, per_cpu.data()) != 0) return 0;
    std::uint64_t sum = 0;
    for (std::uint64_t v : per_cpu) sum += v;
    return sum;
}

std::uint64_t monotonic_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000 + static_cast<std::uint64_t>(ts.tv_nsec);
}

const char* to_string(XdpMode m) { return m == XdpMode::native ? "native" : "generic"; }

ProgramFd::~ProgramFd() {
    if (fd_ >= 0) ::close(fd_);
}

base::Result<int, NicFailure> interface_index(const std::string& ifname) {
    const unsigned index = ::if_nametoindex(ifname.c_str());
    if (index == 0) return nic_failure(NicError::no_interface, ifname, "no such interface", errno);
    return static_cast<int>(index);
}

base::Result<std::optional<LeftBehind>, NicFailure> find_left_behind(const std::string& ifname) {
    const auto ifindex = interface_index(ifname);
    if (!ifindex) return ifindex.error();
    bpf_xdp_query_opts opts{};
    opts.sz = sizeof opts;
    if (bpf_xdp_query(*ifindex, 0, &opts) != 0 || opts.prog_id == 0) return std::optional<LeftBehind>{};
    ProgramFd program(bpf_prog_get_fd_by_id(opts.prog_id));
    if (program.get() < 0) return nic_failure(NicError::bpf_open, ifname, "cannot open the attached XDP program", errno);
    const std::string name = program_name(program.get());
    if (name != kProgramName) {
        return NicFailure{NicError::foreign_program, ifname + ": another XDP program (" + (name.empty() ? "?" : name) +
                                                         ") is attached; refusing to replace it"};
    }
    LeftBehind left{std::move(program), opts.attach_mode == XDP_ATTACHED_SKB ? XdpMode::generic : XdpMode::native};
    const MapFds maps = maps_of(left.program.get());
    if (const MapFound* stats = maps.named("ms_stats"); stats && stats->info.value_size == sizeof(std::uint64_t)) {
        for (std::size_t k = 0; k < kXdpStats && k < stats->info.max_entries; ++k) {
            left.stats[k] = read_xdp_stat(stats->fd, static_cast<XdpStat>(k));
        }
    }
    if (read_record(maps, left) && read_claims(maps, left)) {
        left.expired = monotonic_ns() > left.claims_end_ns();
        if (left.expired) left.claims.clear();
    }
    return std::optional<LeftBehind>{std::move(left)};
}

int open_attached_map(const std::string& ifname, const std::string& name) {
    const unsigned ifindex = ::if_nametoindex(ifname.c_str());
    bpf_xdp_query_opts opts{};
    opts.sz = sizeof opts;
    if (ifindex == 0 || bpf_xdp_query(static_cast<int>(ifindex), 0, &opts) != 0 || opts.prog_id == 0) return -1;
    const ProgramFd program(bpf_prog_get_fd_by_id(opts.prog_id));
    if (program.get() < 0) return -1;
    const MapFds maps = maps_of(program.get());
    const MapFound* m = maps.named(name.c_str());
    return m ? ::fcntl(m->fd, F_DUPFD_CLOEXEC, 0) : -1;
}

base::Result<bool, NicFailure> remove_stale_program(const std::string& ifname) {
    auto left = find_left_behind(ifname);
    if (!left) return left.error();
    if (!*left) return false;
    const int ifindex = *interface_index(ifname);
    // Detach in whichever mode it was attached.
    bpf_xdp_detach(ifindex, XDP_FLAGS_DRV_MODE, nullptr);
    bpf_xdp_detach(ifindex, XDP_FLAGS_SKB_MODE, nullptr);
    return true;
}

}  // namespace ms::nic
