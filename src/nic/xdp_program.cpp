#include "nic/xdp_program.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <vector>

namespace ms::nic {

extern const std::uint8_t claim_bpf_object[];
extern const std::size_t claim_bpf_object_size;

namespace {

constexpr const char* kProgramName = "ms_claim";

using AdoptedKey = std::array<std::uint8_t, sizeof(BpfClaimKey)>;

AdoptedKey adopted_key(const BpfClaimKey& k) {
    AdoptedKey out{};
    std::memcpy(out.data(), &k, sizeof k);
    return out;
}

std::uint64_t realtime_s() { return static_cast<std::uint64_t>(::time(nullptr)); }

}  // namespace

base::Result<std::unique_ptr<XdpProgram>, NicFailure> XdpProgram::load(const std::string& ifname) {
    const auto ifindex = interface_index(ifname);
    if (!ifindex) return ifindex.error();
    std::unique_ptr<XdpProgram> p(new XdpProgram(ifname, *ifindex));  // its destructor undoes a partial set-up
    if (auto loaded = p->load_object(); !loaded) return loaded.error();
    return p;
}

base::Result<base::Done, NicFailure> XdpProgram::attach(const LeftBehind* left, std::uint64_t outage_limit_ns) {
    start_record(left, outage_limit_ns);
    if (!map_record()) return nic_failure(NicError::bpf_load, ifname_, "cannot map the daemon record", errno);
    if (left && left->claims_hold()) adopt_claims(*left);
    return attach_program(left);
}

void XdpProgram::start_record(const LeftBehind* left, std::uint64_t outage_limit_ns) {
    record_.version = DaemonRecord::kVersion;
    record_.outage_limit_ns = outage_limit_ns;
    record_.heartbeat_ns = monotonic_ns();
    record_.first_start_s = realtime_s();
    if (!left) return;
    carried_ = left->stats;
    if (!left->unreadable.empty()) return;
    record_.first_start_s = left->record.first_start_s;
    record_.restarts = left->record.restarts + (left->left_for_restart() ? 0 : 1);
    record_.upgrades = left->record.upgrades + (left->left_for_restart() ? 1 : 0);
}

bool XdpProgram::map_record() {
    void* at = ::mmap(nullptr, sizeof(DaemonRecord), PROT_READ | PROT_WRITE, MAP_SHARED, record_fd_, 0);
    if (at == MAP_FAILED) return false;
    shared_record_ = static_cast<DaemonRecord*>(at);
    std::memcpy(shared_record_, &record_, sizeof record_);
    return true;
}

void XdpProgram::store_heartbeat(std::uint64_t now_ns) {
    record_.heartbeat_ns = now_ns;
    std::atomic_ref<std::uint64_t>(shared_record_->heartbeat_ns).store(now_ns, std::memory_order_release);
}

void XdpProgram::adopt_claims(const LeftBehind& left) {
    adopted_end_ns_ = left.claims_end_ns();
    for (const sw::ClaimKey& claim : left.claims) {
        const BpfClaimKey key = to_bpf(claim);
        const std::uint32_t value = 1;
        if (bpf_map_update_elem(claims_fd_, &key, &value, BPF_NOEXIST) != 0) continue;
        count_port(claim, +1);
        adopted_.insert(adopted_key(key));
    }
}

std::size_t XdpProgram::beat() {
    store_heartbeat(monotonic_ns());
    if (adopted_.empty() || record_.heartbeat_ns < adopted_end_ns_) return 0;
    const std::size_t removed = adopted_.size();
    for (const AdoptedKey& raw : adopted_) {
        BpfClaimKey key{};
        std::memcpy(&key, raw.data(), sizeof key);
        if (bpf_map_delete_elem(claims_fd_, &key) == 0) count_port(from_bpf(key), -1);
    }
    adopted_.clear();
    return removed;
}

void XdpProgram::leave_for_restart() {
    record_.flags |= DaemonRecord::kLeftForRestart;
    std::atomic_ref<std::uint32_t>(shared_record_->flags).fetch_or(DaemonRecord::kLeftForRestart);
    store_heartbeat(monotonic_ns());
    leaving_for_restart_ = true;
}

base::Result<base::Done, NicFailure> XdpProgram::load_object() {
    bpf_object_open_opts open_opts{};
    open_opts.sz = sizeof open_opts;
    open_opts.object_name = "ms_claim";
    object_ = bpf_object__open_mem(claim_bpf_object, claim_bpf_object_size, &open_opts);
    if (!object_) return nic_failure(NicError::bpf_open, ifname_, "cannot open the XDP object", errno);
    if (bpf_object__load(object_) != 0) {
        return nic_failure(NicError::bpf_load, ifname_, "the kernel refused the XDP program", errno);
    }
    claims_fd_ = bpf_object__find_map_fd_by_name(object_, "ms_claims");
    claim_capacity_ = bpf_map__max_entries(bpf_object__find_map_by_name(object_, "ms_claims"));
    ports_fd_ = bpf_object__find_map_fd_by_name(object_, "ms_ports");
    local_fd_ = bpf_object__find_map_fd_by_name(object_, "ms_local");
    xsks_fd_ = bpf_object__find_map_fd_by_name(object_, "ms_xsks");
    stats_fd_ = bpf_object__find_map_fd_by_name(object_, "ms_stats");
    record_fd_ = bpf_object__find_map_fd_by_name(object_, "ms_daemon");
    return base::Done{};
}

base::Result<base::Done, NicFailure> XdpProgram::attach_program(const LeftBehind* left) {
    const int prog_fd = bpf_program__fd(bpf_object__find_program_by_name(object_, kProgramName));
    if (left) {
        // In one step, so that no frame of a claim meets the kernel meanwhile.
        bpf_xdp_attach_opts opts{};
        opts.sz = sizeof opts;
        opts.old_prog_fd = left->program.get();
        const std::uint32_t mode = left->mode == XdpMode::native ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
        if (bpf_xdp_attach(ifindex_, prog_fd, mode | XDP_FLAGS_REPLACE, &opts) != 0) {
            return nic_failure(NicError::bpf_attach, ifname_, "cannot replace the XDP program left behind", errno);
        }
        mode_ = left->mode;
    } else if (bpf_xdp_attach(ifindex_, prog_fd, XDP_FLAGS_DRV_MODE | XDP_FLAGS_UPDATE_IF_NOEXIST, nullptr) == 0) {
        mode_ = XdpMode::native;
    } else if (bpf_xdp_attach(ifindex_, prog_fd, XDP_FLAGS_SKB_MODE | XDP_FLAGS_UPDATE_IF_NOEXIST, nullptr) == 0) {
        mode_ = XdpMode::generic;
    } else {
        return nic_failure(NicError::bpf_attach, ifname_, "cannot attach the XDP program", errno);
    }
    attached_ = true;
    return base::Done{};
}

XdpProgram::~XdpProgram() {
    detach();
    if (shared_record_) ::munmap(shared_record_, sizeof(DaemonRecord));
    bpf_object__close(object_);
}

void XdpProgram::detach() {
    if (!attached_ || leaving_for_restart_) return;
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
    if (adopted_.erase(adopted_key(key)) != 0) return true;
    const std::uint32_t value = 1;
    if (bpf_map_update_elem(claims_fd_, &key, &value, BPF_NOEXIST) != 0) return false;
    count_port(claim, +1);
    return true;
}

bool XdpProgram::remove_claim(const sw::ClaimKey& claim) {
    if (leaving_for_restart_) return true;  // the next daemon adopts it
    const BpfClaimKey key = to_bpf(claim);
    if (bpf_map_delete_elem(claims_fd_, &key) != 0) return false;
    count_port(claim, -1);
    return true;
}

std::uint64_t XdpProgram::stat(XdpStat which) const {
    return carried_[static_cast<std::size_t>(which)] + read_xdp_stat(stats_fd_, which);
}

std::uint64_t XdpProgram::claimed_frames() const { return stat(XdpStat::claimed); }
std::uint64_t XdpProgram::passed_frames() const { return stat(XdpStat::passed); }
std::uint64_t XdpProgram::held_frames() const { return stat(XdpStat::held); }

std::uint32_t XdpProgram::claim_capacity() const { return claim_capacity_; }

}  // namespace ms::nic
