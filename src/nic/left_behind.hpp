// Contract: what a multistackd that is gone (killed, crashed, or left for an upgrade)
// left on its interface for the next one (docs/DESIGN.md §6, "Restarts and upgrades"):
// its XDP program, still attached, which drops its claims' frames until its outage limit
// ends, so that the kernel resets none of the applications' connections; the claims; and
// its record (bpf_layout.hpp). find_left_behind() reads and checks all of it without
// changing anything: a record of an unknown version, or maps of another layout, are
// reported unreadable and nothing of them is adopted. XdpProgram::open() takes it over.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "nic/bpf_layout.hpp"
#include "nic/nic_failure.hpp"

namespace ms::nic {

enum class XdpMode { native, generic };
[[nodiscard]] const char* to_string(XdpMode m);

// A program descriptor, closed with its owner.
class ProgramFd {
public:
    explicit ProgramFd(int fd) : fd_(fd) {}
    ~ProgramFd();
    ProgramFd(ProgramFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    ProgramFd& operator=(ProgramFd&&) = delete;
    ProgramFd(const ProgramFd&) = delete;
    [[nodiscard]] int get() const { return fd_; }

private:
    int fd_;
};

struct LeftBehind {
    ProgramFd program;
    XdpMode mode = XdpMode::native;
    DaemonRecord record;
    std::vector<sw::ClaimKey> claims;  // what it held, while they still hold
    bool expired = false;              // its outage limit passed: the claims are released
    std::string unreadable;            // why its record or maps cannot be read; empty if they can
    std::array<std::uint64_t, kXdpStats> stats{};  // its program's counters (XdpStat), carried on

    // Whether its claims still hold: the record is readable and the outage limit has not passed.
    [[nodiscard]] bool claims_hold() const { return unreadable.empty() && !expired; }
    // When its claims end, in CLOCK_MONOTONIC nanoseconds.
    [[nodiscard]] std::uint64_t claims_end_ns() const { return record.heartbeat_ns + record.outage_limit_ns; }
    [[nodiscard]] bool left_for_restart() const { return (record.flags & DaemonRecord::kLeftForRestart) != 0; }
};

// The interface's index, or no_interface.
[[nodiscard]] base::Result<int, NicFailure> interface_index(const std::string& ifname);

// The ms_claim program left on `ifname`, read and checked; nothing if none is attached.
// Fails (foreign_program) if another program is attached.
[[nodiscard]] base::Result<std::optional<LeftBehind>, NicFailure> find_left_behind(const std::string& ifname);

// A descriptor of the map called `name` of the program attached to `ifname` (the caller
// closes it), or -1 if there is none.
[[nodiscard]] int open_attached_map(const std::string& ifname, const std::string& name);

// Removes an ms_claim program left on `ifname`, with whatever it still holds; true if
// there was one. Fails (foreign_program) if another program is attached.
[[nodiscard]] base::Result<bool, NicFailure> remove_stale_program(const std::string& ifname);

}  // namespace ms::nic
