// Contract: the XDP claim program (bpf/claim.bpf.c) on one interface. Loading attaches
// it in native mode, or in generic (SKB) mode when the driver refuses native; a program
// that a previous daemon left (left_behind.hpp) is replaced atomically, in its mode, and
// its claims, while they hold, are carried into the new maps as adopted claims: their
// frames keep reaching the switch (which drops them, as it holds no port for them) until
// their owners prove them again, or the old daemon's outage limit ends. Any other program
// makes loading fail (only one program attaches per interface here). The destructor
// detaches it, so every exit path that unwinds leaves the interface as it was, unless
// the daemon leaves for a restart (leave_for_restart()): the program then stays, with its
// claims, for the next daemon. The claim map mirrors the switch registry; the XSK map
// receives one AF_XDP socket per queue; the record (bpf_layout.hpp) carries the
// heartbeat, the outage limit and the counts of restarts and upgrades.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <array>
#include <set>

#include "nic/left_behind.hpp"
#include "nic/nic_failure.hpp"
#include "sw/registry.hpp"

struct bpf_object;

namespace ms::nic {

class XdpProgram {
public:
    // Loads the program into the kernel, not attached yet (the verifier's work, done before
    // an upgrade asks the running daemon to leave). A failure's detail names the interface
    // and the cause.
    [[nodiscard]] static base::Result<std::unique_ptr<XdpProgram>, NicFailure> load(const std::string& ifname);
    // Attaches it, in place of `left`'s if given (adopting its claims while they hold);
    // claims outlive this daemon by `outage_limit_ns`.
    [[nodiscard]] base::Result<base::Done, NicFailure> attach(const LeftBehind* left, std::uint64_t outage_limit_ns);
    ~XdpProgram();
    XdpProgram(const XdpProgram&) = delete;
    XdpProgram& operator=(const XdpProgram&) = delete;

    [[nodiscard]] XdpMode mode() const { return mode_; }
    [[nodiscard]] int ifindex() const { return ifindex_; }
    [[nodiscard]] int xsks_map_fd() const { return xsks_fd_; }

    // Mirrors the interface's addresses, which wildcard claims cover; false (errno set)
    // if the map refused one.
    [[nodiscard]] bool set_local_addresses(const std::vector<wire::IpAddr>& addresses);
    // Mirrors one claim into the kernel map (an adopted one is there already); false
    // (errno set) if the map refused it.
    [[nodiscard]] bool add_claim(const sw::ClaimKey& claim);
    bool remove_claim(const sw::ClaimKey& claim);
    // Marks the daemon alive (the program holds claimed frames while no socket takes them
    // for the outage limit from the last mark), and removes adopted claims whose limit
    // passed unproven; returns how many it removed.
    std::size_t beat();
    // From now on the program, its claims and its maps stay as they are when the daemon
    // exits, for the next daemon: the record says it left on purpose.
    void leave_for_restart();
    [[nodiscard]] const DaemonRecord& record() const { return record_; }
    // Adopted claims that nobody has proved again yet.
    [[nodiscard]] std::size_t adopted_waiting() const { return adopted_.size(); }
    // Claimed frames dropped while no socket took them (the daemon down or starting).
    [[nodiscard]] std::uint64_t held_frames() const;
    // Frames the program sent to the switch and to the kernel, summed over CPUs.
    [[nodiscard]] std::uint64_t claimed_frames() const;
    // How many claims the kernel's claim map can hold.
    [[nodiscard]] std::uint32_t claim_capacity() const;
    [[nodiscard]] std::uint64_t passed_frames() const;

private:
    XdpProgram(const std::string& ifname, int ifindex) : ifname_(ifname), ifindex_(ifindex) {}
    [[nodiscard]] base::Result<base::Done, NicFailure> load_object();
    [[nodiscard]] base::Result<base::Done, NicFailure> attach_program(const LeftBehind* left);
    // The record and the adopted claims, before the program is attached.
    void start_record(const LeftBehind* left, std::uint64_t outage_limit_ns);
    // Maps the record (an mmap-able array) and writes it whole; later writes touch only
    // the heartbeat and the flags.
    [[nodiscard]] bool map_record();
    void store_heartbeat(std::uint64_t now_ns);
    void adopt_claims(const LeftBehind& left);
    [[nodiscard]] std::uint64_t stat(XdpStat which) const;
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
    int record_fd_ = -1;
    DaemonRecord record_;  // what this daemon wrote
    DaemonRecord* shared_record_ = nullptr;  // the map's value, mapped
    std::array<std::uint64_t, kXdpStats> carried_{};  // the counters of the programs before this one
    std::set<std::array<std::uint8_t, sizeof(BpfClaimKey)>> adopted_;  // in the map, not yet proved again
    std::uint64_t adopted_end_ns_ = 0;  // when the adopted claims end
    XdpMode mode_ = XdpMode::native;
    bool attached_ = false;
    bool leaving_for_restart_ = false;
};

}  // namespace ms::nic
