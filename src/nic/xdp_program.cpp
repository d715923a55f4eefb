#include "nic/xdp_program.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace ms::nic {

extern const std::uint8_t claim_bpf_object[];
extern const std::size_t claim_bpf_object_size;

namespace {

constexpr const char* kProgramName = "ms_claim";

// Must match struct claim_key in bpf/claim.bpf.c.
struct BpfClaimKey {
    std::uint8_t protocol;
    std::uint8_t family;
    std::uint16_t port_be;
    std::uint8_t addr[16];
};
static_assert(sizeof(BpfClaimKey) == 20);

// Must match struct local_key in bpf/claim.bpf.c.
struct BpfLocalKey {
    std::uint8_t family;
    std::uint8_t pad[3];
    std::uint8_t addr[16];
};
static_assert(sizeof(BpfLocalKey) == 20);

// The ms_ports index of a claim's (protocol, port); must match bpf/claim.bpf.c.
std::uint32_t port_index(const sw::ClaimKey& c) { return (c.protocol == IPPROTO_UDP ? 65536u : 0u) + c.port; }

BpfClaimKey to_bpf(const sw::ClaimKey& c) {
    BpfClaimKey k{};
    k.protocol = c.protocol;
    k.family = static_cast<std::uint8_t>(c.addr.family);
    k.port_be = wire::swap_be16(c.port);
    std::memcpy(k.addr, c.addr.bytes.data(), 16);
    return k;
}

NicFailure failure(NicError error, const std::string& ifname, const std::string& what, int err) {
    return {error, ifname + ": " + what + ": " + std::strerror(err)};
}

base::Result<int, NicFailure> ifindex_of(const std::string& ifname) {
    const unsigned index = ::if_nametoindex(ifname.c_str());
    if (index == 0) return failure(NicError::no_interface, ifname, "no such interface", errno);
    return static_cast<int>(index);
}

// The id of the program attached to `ifindex` in any mode, or 0.
std::uint32_t attached_program(int ifindex) {
    bpf_xdp_query_opts opts{};
    opts.sz = sizeof opts;
    if (bpf_xdp_query(ifindex, 0, &opts) != 0) return 0;
    return opts.prog_id;
}

std::string program_name(std::uint32_t id) {
    const int fd = bpf_prog_get_fd_by_id(id);
    if (fd < 0) return {};
    bpf_prog_info info{};
    std::uint32_t len = sizeof info;
    std::string name;
    if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0) name = info.name;
    ::close(fd);
    return name;
}

}  // namespace

const char* to_string(XdpMode m) { return m == XdpMode::native ? "native" : "generic"; }

base::Result<bool, NicFailure> remove_stale_program(const std::string& ifname) {
    const auto ifindex = ifindex_of(ifname);
    if (!ifindex) return ifindex.error();
    const std::uint32_t id = attached_program(*ifindex);
    if (id == 0) return false;
    const std::string name = program_name(id);
    if (name != kProgramName) {
        return NicFailure{NicError::foreign_program, ifname + ": another XDP program (" + (name.empty() ? "?" : name) +
                                                         ") is attached; refusing to replace it"};
    }
    // Detach in whichever mode it was attached.
    bpf_xdp_detach(*ifindex, XDP_FLAGS_DRV_MODE, nullptr);
    bpf_xdp_detach(*ifindex, XDP_FLAGS_SKB_MODE, nullptr);
    return true;
}

base::Result<std::unique_ptr<XdpProgram>, NicFailure> XdpProgram::open(const std::string& ifname) {
    const auto ifindex = ifindex_of(ifname);
    if (!ifindex) return ifindex.error();
    std::unique_ptr<XdpProgram> p(new XdpProgram(ifname, *ifindex));  // its destructor undoes a partial set-up
    if (auto loaded = p->load(); !loaded) return loaded.error();
    if (auto attached = p->attach(); !attached) return attached.error();
    return p;
}

base::Result<base::Done, NicFailure> XdpProgram::load() {
    bpf_object_open_opts open_opts{};
    open_opts.sz = sizeof open_opts;
    open_opts.object_name = "ms_claim";
    object_ = bpf_object__open_mem(claim_bpf_object, claim_bpf_object_size, &open_opts);
    if (!object_) return failure(NicError::bpf_open, ifname_, "cannot open the XDP object", errno);
    if (bpf_object__load(object_) != 0) {
        return failure(NicError::bpf_load, ifname_, "the kernel refused the XDP program", errno);
    }
    claims_fd_ = bpf_object__find_map_fd_by_name(object_, "ms_claims");
    claim_capacity_ = bpf_map__max_entries(bpf_object__find_map_by_name(object_, "ms_claims"));
    ports_fd_ = bpf_object__find_map_fd_by_name(object_, "ms_ports");
    local_fd_ = bpf_object__find_map_fd_by_name(object_, "ms_local");
    xsks_fd_ = bpf_object__find_map_fd_by_name(object_, "ms_xsks");
    stats_fd_ = bpf_object__find_map_fd_by_name(object_, "ms_stats");
    return base::Done{};
}

base::Result<base::Done, NicFailure> XdpProgram::attach() {
    const int prog_fd = bpf_program__fd(bpf_object__find_program_by_name(object_, kProgramName));
    if (bpf_xdp_attach(ifindex_, prog_fd, XDP_FLAGS_DRV_MODE | XDP_FLAGS_UPDATE_IF_NOEXIST, nullptr) == 0) {
        mode_ = XdpMode::native;
    } else if (bpf_xdp_attach(ifindex_, prog_fd, XDP_FLAGS_SKB_MODE | XDP_FLAGS_UPDATE_IF_NOEXIST, nullptr) == 0) {
        mode_ = XdpMode::generic;
    } else {
        return failure(NicError::bpf_attach, ifname_, "cannot attach the XDP program", errno);
    }
    attached_ = true;
    return base::Done{};
}

XdpProgram::~XdpProgram() {
    detach();
    bpf_object__close(object_);
}

void XdpProgram::detach() {
    if (!attached_) return;
    bpf_xdp_detach(ifindex_, mode_ == XdpMode::native ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE, nullptr);
    attached_ = false;
}

void XdpProgram::count_port(const sw::ClaimKey& claim, int delta) {
    const std::uint32_t index = port_index(claim);
    std::uint32_t count = 0;
    (void)bpf_map_lookup_elem(ports_fd_, &index, &count);
    count = static_cast<std::uint32_t>(static_cast<int>(count) + delta);
    (void)bpf_map_update_elem(ports_fd_, &index, &count, BPF_ANY);
}

bool XdpProgram::set_local_addresses(const std::vector<wire::IpAddr>& addresses) {
    for (const wire::IpAddr& a : addresses) {
        BpfLocalKey key{};
        key.family = static_cast<std::uint8_t>(a.family);
        std::memcpy(key.addr, a.bytes.data(), sizeof key.addr);
        const std::uint8_t present = 1;
        if (bpf_map_update_elem(local_fd_, &key, &present, BPF_ANY) != 0) return false;
    }
    return true;
}

bool XdpProgram::add_claim(const sw::ClaimKey& claim) {
    const BpfClaimKey key = to_bpf(claim);
    const std::uint32_t value = 1;
    if (bpf_map_update_elem(claims_fd_, &key, &value, BPF_NOEXIST) != 0) return false;
    count_port(claim, +1);
    return true;
}

bool XdpProgram::remove_claim(const sw::ClaimKey& claim) {
    const BpfClaimKey key = to_bpf(claim);
    if (bpf_map_delete_elem(claims_fd_, &key) != 0) return false;
    count_port(claim, -1);
    return true;
}

std::uint64_t XdpProgram::stat(std::uint32_t which) const {
    const int cpus = libbpf_num_possible_cpus();
    if (cpus <= 0) return 0;
    std::vector<std::uint64_t> per_cpu(static_cast<std::size_t>(cpus));
    if (bpf_map_lookup_elem(stats_fd_, &which, per_cpu.data()) != 0) return 0;
    std::uint64_t sum = 0;
    for (std::uint64_t v : per_cpu) sum += v;
    return sum;
}

std::uint64_t XdpProgram::claimed_frames() const { return stat(0); }
std::uint64_t XdpProgram::passed_frames() const { return stat(1); }

std::uint32_t XdpProgram::claim_capacity() const { return claim_capacity_; }

}  // namespace ms::nic
