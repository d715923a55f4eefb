// Contract: a claim that several ports hold together, and how the switch steers its
// traffic among them (docs/DESIGN.md §4.2, shared claims). Members join and leave on the
// control thread; the workers steer lock-free.
//   - A new TCP connection (a SYN without ACK) goes to one member, picked by a hash of its
//     4-tuple among the serving members (all members when none serves: a process that
//     only opened the listener, such as nginx's master, stands by).
//   - Every later segment of a connection goes to the member that answered its SYN. A
//     member's SYN-ACK is kept as an embryo (flow_table.hpp), the peer's ACK of exactly
//     that SYN-ACK records the connection in the flow table, and the record goes when the
//     member sends a RST, a while after it sends a FIN, or when it leaves. The founder's
//     own connections (the claim's first holder, whose connections may predate the
//     group) are never recorded: a segment of no recorded connection is the founder's, or,
//     once the founder has gone, the hash's.
//   - UDP datagrams spread by the same hash.
// Bounds: at most kMaxGroupMembers members, and at most `max_flows` recorded connections.
// Embryos live in fixed memory, each new one replacing whatever held its slot, so a SYN
// flood only evicts embryos (a handshake whose embryo was evicted before its ACK goes to
// the founder, which resets it). An ACK that finds the flow table full is dropped
// (DropReason::group_full) and the peer sends it again, so no connection of a member
// other than the founder ever lives unrecorded. Writers (workers recording SYN-ACKs and
// ACKs, the control thread's sweep) take the group's mutex; readers take none.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "base/result.hpp"
#include "sw/flow_table.hpp"
#include "sw/qsbr.hpp"
#include "wire/bytes.hpp"
#include "wire/frame.hpp"

namespace ms::sw {

inline constexpr std::size_t kMaxGroupMembers = 64;

// What a member does with new connections: a serving member gets them; a standing-by one
// only when no member serves; a draining one never (its listener has closed, and only
// the connections it already has reach it).
enum class MemberRole : std::uint8_t { serving, standby, draining };

// The members as the workers read them: replaced whole on every join and leave.
struct MemberSet {
    struct Member {
        PortId port = kNoPort;
        MemberRole role = MemberRole::serving;
        std::uint8_t share_slot = 0;  // its new-connection counter in PortGroup
    };
    std::array<Member, kMaxGroupMembers> members{};
    std::uint32_t count = 0;
    std::array<std::uint8_t, kMaxGroupMembers> candidates{};  // indices of members that get new connections
    std::uint32_t candidate_count = 0;
    PortId founder = kNoPort;  // kNoPort once the founder has left

    [[nodiscard]] bool has(PortId port) const;
};

// Why a group could not be made or changed.
enum class GroupError { full, already_member, not_member, no_memory };

struct GroupMemberView {
    PortId port = kNoPort;
    MemberRole role = MemberRole::serving;
    bool founder = false;
    std::uint64_t new_connections = 0;  // SYNs steered to it since it joined
};

class PortGroup {
public:
    // A group of the claim's first holder alone, or no_memory.
    [[nodiscard]] static base::Result<std::unique_ptr<PortGroup>, GroupError> create(Qsbr& qsbr, PortId founder,
                                                                                     MemberRole founder_role,
                                                                                     std::size_t max_flows);
    ~PortGroup();
    PortGroup(const PortGroup&) = delete;
    PortGroup& operator=(const PortGroup&) = delete;

    // Worker side, between quiescent points. `frame` is the frame f was parsed from.
    [[nodiscard]] bool has_member(PortId port) const { return members().has(port); }
    // The member that gets a frame arriving for the group.
    // `hash` is the frame's flow hash (validator.hpp).
    PortId steer_incoming(wire::Bytes frame, const wire::ParsedFrame& f, std::uint32_t hash);
    // The member that owns the connection an ICMP error quotes (its packet went out from
    // `local`:`local_port` to `remote`:`remote_port`).
    PortId steer_quoted(const wire::IpAddr& local, std::uint16_t local_port, const wire::IpAddr& remote,
                        std::uint16_t remote_port, std::uint32_t hash);
    // Records what a member's TCP segment says about its connection; false if the frame
    // must be dropped (a SYN-ACK whose connection cannot be recorded).
    bool note_outgoing(wire::Bytes frame, const wire::ParsedFrame& f, PortId sender);

    // Control thread.
    [[nodiscard]] base::Result<base::Done, GroupError> join(PortId port, MemberRole role);
    // A connection that moved to member `port` from another process (docs/DESIGN.md §7,
    // "Connections that move"): the switch steers it there from now on; false if `port`
    // is no member or the flow table has no room.
    [[nodiscard]] bool record_moved(const FlowKey& key, PortId port);
    // A member's new role; its connections stay with it.
    [[nodiscard]] base::Result<base::Done, GroupError> set_role(PortId port, MemberRole role);
    // Removes the member and its connections; the number of members left.
    [[nodiscard]] base::Result<std::size_t, GroupError> leave(PortId port);
    // Advances the group clock to `now_ticks` (one tick is kSweepPeriodMs), expires the
    // records of closed connections, and compacts the table when tombstones pile up.
    void sweep(std::uint32_t now_ticks);
    [[nodiscard]] std::vector<GroupMemberView> members_view() const;
    // The recorded connections, for a hand-over; and one put back as it was recorded
    // (false if its port is no member or the table has no room).
    [[nodiscard]] std::vector<std::pair<FlowKey, FlowTable::RecordedFlow>> recorded_flows();
    [[nodiscard]] bool restore_flow(const FlowKey& key, const FlowTable::RecordedFlow& flow);
    [[nodiscard]] std::size_t max_flows() const { return table().max_flows(); }
    [[nodiscard]] std::size_t flows() const;
    // ACKs dropped because the flow table was full when they would have recorded a connection.
    [[nodiscard]] std::uint64_t unrecorded() const { return unrecorded_.load(std::memory_order_relaxed); }

    static constexpr std::uint32_t kSweepPeriodMs = 500;
    // The group clock's reading now (steady time in ticks of kSweepPeriodMs).
    [[nodiscard]] static std::uint32_t current_tick();
    static constexpr std::uint32_t kClosingTicks = 3;    // at least 1 s after a member's FIN: its last ACKs arrive

private:
    PortGroup(Qsbr& qsbr, PortId founder, MemberRole founder_role, std::unique_ptr<FlowTable> table,
              std::unique_ptr<EmbryoCache> embryos);
    [[nodiscard]] const MemberSet& members() const { return *members_.load(std::memory_order_acquire); }
    void publish(std::unique_ptr<MemberSet> next);
    [[nodiscard]] PortId by_hash(const MemberSet& m, std::uint32_t hash, bool new_connection);
    [[nodiscard]] const FlowTable& table() const { return *table_.load(std::memory_order_acquire); }
    // Records an acknowledged connection of `port`; false if the table has no room.
    bool promote(const FlowKey& key, PortId port);
    [[nodiscard]] std::uint16_t clock() const { return static_cast<std::uint16_t>(clock_.load(std::memory_order_relaxed)); }

    Qsbr& qsbr_;
    std::atomic<const MemberSet*> members_;
    std::unique_ptr<const MemberSet> owned_members_;  // what members_ points at
    std::array<std::atomic<std::uint64_t>, kMaxGroupMembers> shares_{};
    std::atomic<FlowTable*> table_;
    std::unique_ptr<FlowTable> owned_table_;
    std::unique_ptr<EmbryoCache> embryos_;  // written under write_mutex_
    std::mutex write_mutex_;  // the flow table's writers
    std::atomic<std::uint32_t> clock_{0};
    std::atomic<std::uint64_t> unrecorded_{0};
};

}  // namespace ms::sw
