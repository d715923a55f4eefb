// Contract: the XDP claim program (bpf/claim.bpf.c) on one interface. Loading attaches
// it in native mode, or in generic (SKB) mode when the driver refuses native; a stale
// ms_claim left by a previous run is replaced, and any other program makes loading fail
// (only one program attaches per interface here). The destructor detaches it, so every
// exit path that unwinds leaves the interface as it was. The claim map mirrors the
// switch registry; the XSK map receives one AF_XDP socket per queue.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nic/nic_failure.hpp"
#include "sw/registry.hpp"

struct bpf_object;

namespace ms::nic {

enum class XdpMode { native, generic };
[[nodiscard]] const char* to_string(XdpMode m);

class XdpProgram {
public:
    // Loads and attaches the program; a failure's detail names the interface and the cause.
    [[nodiscard]] static base::Result<std::unique_ptr<XdpProgram>, NicFailure> open(const std::string& ifname);
    ~XdpProgram();
    XdpProgram(const XdpProgram&) = delete;
    XdpProgram& operator=(const XdpProgram&) = delete;

    [[nodiscard]] XdpMode mode() const { return mode_; }
    [[nodiscard]] int ifindex() const { return ifindex_; }
    [[nodiscard]] int xsks_map_fd() const { return xsks_fd_; }

    // Mirrors the interface's addresses, which wildcard claims cover; false (errno set)
    // if the map refused one.
    [[nodiscard]] bool set_local_addresses(const std::vector<wire::IpAddr>& addresses);
    // Mirrors one claim into the kernel map; false (errno set) if the map refused it.
    [[nodiscard]] bool add_claim(const sw::ClaimKey& claim);
    bool remove_claim(const sw::ClaimKey& claim);
    // Frames the program sent to the switch and to the kernel, summed over CPUs.
    [[nodiscard]] std::uint64_t claimed_frames() const;
    // How many claims the kernel's claim map can hold.
    [[nodiscard]] std::uint32_t claim_capacity() const;
    [[nodiscard]] std::uint64_t passed_frames() const;

private:
    XdpProgram(const std::string& ifname, int ifindex) : ifname_(ifname), ifindex_(ifindex) {}
    [[nodiscard]] base::Result<base::Done, NicFailure> load();
    [[nodiscard]] base::Result<base::Done, NicFailure> attach();
    [[nodiscard]] std::uint64_t stat(std::uint32_t which) const;
    void detach();

    std::string ifname_;
    int ifindex_ = 0;
    bpf_object* object_ = nullptr;
    // Adds `delta` to the count of claims of the key's (protocol, port).
    void count_port(const sw::ClaimKey& claim, int delta);

    int claims_fd_ = -1;
    std::uint32_t claim_capacity_ = 0;
    int local_fd_ = -1;
    int ports_fd_ = -1;
    int xsks_fd_ = -1;
    int stats_fd_ = -1;
    XdpMode mode_ = XdpMode::native;
    bool attached_ = false;
};

// Removes an ms_claim program left on `ifname` by a daemon that died; true if there was
// one. Fails (foreign_program) if another program is attached.
[[nodiscard]] base::Result<bool, NicFailure> remove_stale_program(const std::string& ifname);

}  // namespace ms::nic
