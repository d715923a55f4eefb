// ms-record-tool: spoils what a multistackd leaves on its interface for the next one
// (nic/left_behind.hpp), for the restart test, and mends it again: --toggle version gives
// the record an unknown version, limit an outage limit out of range, claims puts a key no
// daemon writes into the claim map; the same toggle again undoes it. The daemon that
// reads a spoiled one must refuse it (an upgrade then leaves the running daemon be).
// Usage: ms-record-tool --iface IF --toggle version|limit|claims
#include <CLI/CLI.hpp>
#include <bpf/bpf.h>

#include <cstring>
#include <iostream>
#include <string>

#include "nic/left_behind.hpp"

int main(int argc, char** argv) {
    CLI::App app{"ms-record-tool: spoil what multistackd leaves on an interface (for tests)"};
    std::string iface;
    std::string spoil;
    app.add_option("--iface", iface, "the interface")->required();
    app.add_option("--toggle", spoil, "version, limit or claims")
        ->required()
        ->check(CLI::IsMember({"version", "limit", "claims"}));
    CLI11_PARSE(app, argc, argv);
    const int fd = ms::nic::open_attached_map(iface, spoil == "claims" ? "ms_claims" : "ms_daemon");
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
