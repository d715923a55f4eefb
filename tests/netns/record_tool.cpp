// ms-record-tool: spoils what a multistackd leaves on its interface for the next one
// (nic/left_behind.hpp), for the restart test, and mends it again: --toggle version gives
// the record an unknown version, limit an outage limit out of range, claims puts a key no
// daemon writes into the claim map; the same toggle again undoes it. The daemon that
// reads a spoiled one must refuse it (an upgrade then leaves the running daemon be).
// Usage: ms-record-tool --iface IF --toggle version|limit|claims
#include <CLI/CLI.hpp>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <net/if.h>
#include <unistd.h>

#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "nic/bpf_layout.hpp"

namespace {

// The descriptor of the attached program's map called `name`, or -1.
int map_named(int ifindex, const std::string& name) {
    bpf_xdp_query_opts opts{};
    opts.sz = sizeof opts;
    if (bpf_xdp_query(ifindex, 0, &opts) != 0 || opts.prog_id == 0) return -1;
    const int prog = bpf_prog_get_fd_by_id(opts.prog_id);
    bpf_prog_info info{};
    std::uint32_t len = sizeof info;
    if (prog < 0 || bpf_obj_get_info_by_fd(prog, &info, &len) != 0) return -1;
    std::vector<std::uint32_t> ids(info.nr_map_ids);
    const std::uint32_t count = info.nr_map_ids;
    info = {};
    info.nr_map_ids = count;
    info.map_ids = reinterpret_cast<std::uint64_t>(ids.data());
    len = sizeof info;
    if (bpf_obj_get_info_by_fd(prog, &info, &len) != 0) return -1;
    ::close(prog);
    for (const std::uint32_t id : ids) {
        const int fd = bpf_map_get_fd_by_id(id);
        bpf_map_info map{};
        std::uint32_t map_len = sizeof map;
        if (fd >= 0 && bpf_obj_get_info_by_fd(fd, &map, &map_len) == 0 && name == map.name) return fd;
        if (fd >= 0) ::close(fd);
    }
    return -1;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"ms-record-tool: spoil what multistackd leaves on an interface (for tests)"};
    std::string iface;
    std::string spoil;
    app.add_option("--iface", iface, "the interface")->required();
    app.add_option("--toggle", spoil, "version, limit or claims")
        ->required()
        ->check(CLI::IsMember({"version", "limit", "claims"}));
    CLI11_PARSE(app, argc, argv);
    const int ifindex = static_cast<int>(::if_nametoindex(iface.c_str()));
    const int fd = map_named(ifindex, spoil == "claims" ? "ms_claims" : "ms_daemon");
    if (fd < 0) {
        std::cerr << "ms-record-tool: no MultiStack map on " << iface << "\n";
        return 1;
    }
    int rc = 0;
    bool spoiled = true;
    if (spoil == "claims") {
        ms::nic::BpfClaimKey key{};
        key.protocol = 99;  // neither TCP nor UDP
        key.family = 4;
        std::uint32_t value = 1;
        spoiled = bpf_map_lookup_elem(fd, &key, &value) != 0;
        rc = spoiled ? bpf_map_update_elem(fd, &key, &value, BPF_ANY) : bpf_map_delete_elem(fd, &key);
    } else {
        const std::uint32_t zero = 0;
        ms::nic::DaemonRecord record;
        rc = bpf_map_lookup_elem(fd, &zero, &record);
        if (spoil == "version") {
            record.version ^= 0x100;
            spoiled = record.version > ms::nic::DaemonRecord::kVersion;
        } else {
            record.outage_limit_ns ^= std::uint64_t{1} << 62;
            spoiled = (record.outage_limit_ns >> 62) != 0;
        }
        if (rc == 0) rc = bpf_map_update_elem(fd, &zero, &record, BPF_ANY);
    }
    if (rc != 0) {
        std::cerr << "ms-record-tool: " << std::strerror(errno) << "\n";
        return 1;
    }
    std::cout << "ms-record-tool: " << (spoiled ? "spoiled" : "mended") << " the " << spoil << " on " << iface << "\n";
    return 0;
}
