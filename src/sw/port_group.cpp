#include "sw/port_group.hpp"

#include <netinet/in.h>

#include <algorithm>
#include <bit>
#include <chrono>

#include "wire/transport.hpp"

namespace ms::sw {

// ---- MemberSet ----------------------------------------------------------------------

bool MemberSet::has(PortId port) const {
    for (std::uint32_t i = 0; i < count; ++i) {
        if (members[i].port == port) return true;
    }
    return false;
}

namespace {

// Which members get new connections: the serving ones, or, when none serves, the ones
// standing by; never a draining one (with none left, a SYN finds no member).
void choose_candidates(MemberSet& m) {
    for (const MemberRole wanted : {MemberRole::serving, MemberRole::standby}) {
        m.candidate_count = 0;
        for (std::uint32_t i = 0; i < m.count; ++i) {
            if (m.members[i].role == wanted) m.candidates[m.candidate_count++] = static_cast<std::uint8_t>(i);
        }
        if (m.candidate_count > 0) return;
    }
}

std::uint8_t tcp_flags(wire::Bytes frame, const wire::ParsedFrame& f) { return frame[f.l4_offset + 13]; }

bool ticks_passed(std::uint16_t now, std::uint16_t stamp, std::uint32_t ticks) {
    return static_cast<std::uint16_t>((now - stamp) & 0x3fffu) >= ticks;
}

}  // namespace

// ---- PortGroup ----------------------------------------------------------------------

base::Result<std::unique_ptr<PortGroup>, GroupError> PortGroup::create(Qsbr& qsbr, PortId founder, MemberRole founder_role,
                                                                       std::size_t max_flows) {
    auto table = FlowTable::create(max_flows);
    auto embryos = EmbryoCache::create(max_flows);
    if (!table || !embryos) return GroupError::no_memory;
    return std::unique_ptr<PortGroup>(new PortGroup(qsbr, founder, founder_role, std::move(table), std::move(embryos)));
}

std::uint32_t PortGroup::current_tick() {
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
    return static_cast<std::uint32_t>(ms / kSweepPeriodMs);
}

PortGroup::PortGroup(Qsbr& qsbr, PortId founder, MemberRole founder_role, std::unique_ptr<FlowTable> table,
                     std::unique_ptr<EmbryoCache> embryos)
    : qsbr_(qsbr), owned_table_(std::move(table)), embryos_(std::move(embryos)), clock_(current_tick()) {
    auto m = std::make_unique<MemberSet>();
    m->members[0] = {founder, founder_role, 0};
    m->count = 1;
    m->founder = founder;
    choose_candidates(*m);
    members_.store(m.get(), std::memory_order_release);
    owned_members_ = std::move(m);
    table_.store(owned_table_.get(), std::memory_order_release);
}

PortGroup::~PortGroup() = default;

PortId PortGroup::by_hash(const MemberSet& m, std::uint32_t hash, bool new_connection) {
    if (m.candidate_count == 0) return kNoPort;
    const auto index = static_cast<std::uint32_t>((std::uint64_t{hash} * m.candidate_count) >> 32);
    const MemberSet::Member& chosen = m.members[m.candidates[index]];
    if (new_connection) shares_[chosen.share_slot].fetch_add(1, std::memory_order_relaxed);
    return chosen.port;
}

PortId PortGroup::steer_incoming(wire::Bytes frame, const wire::ParsedFrame& f, std::uint32_t hash) {
    const MemberSet& m = members();
    if (f.protocol != IPPROTO_TCP) return by_hash(m, hash, false);
    const FlowKey key(f.src_ip, f.src_port, f.dst_ip, f.dst_port);
    FlowTable::RecordedFlow flow;
    if (table().find(key, flow) && m.has(flow.port)) return flow.port;
    const std::uint8_t flags = tcp_flags(frame, f);
    if ((flags & (wire::tcpflag::syn | wire::tcpflag::ack)) == wire::tcpflag::syn) return by_hash(m, hash, true);
    EmbryoCache::Embryo embryo;
    if (embryos_->find(key, embryo) && m.has(embryo.port)) {
        // Only the peer that saw the SYN-ACK can acknowledge it: a blind ACK pins nothing.
        const bool acks_it = (flags & wire::tcpflag::ack) &&
                             wire::load_be32(frame.data() + f.l4_offset + 8) == embryo.syn_ack_seq + 1;
        if (acks_it && !promote(key, embryo.port)) return kNoPort;  // no room: the peer sends it again
        return embryo.port;
    }
    if (m.founder != kNoPort) return m.founder;  // a connection from before the group, or one it never recorded
    return by_hash(m, hash, false);
}

PortId PortGroup::steer_quoted(const wire::IpAddr& local, std::uint16_t local_port, const wire::IpAddr& remote,
                               std::uint16_t remote_port, std::uint32_t hash) {
    const MemberSet& m = members();
    const FlowKey key(remote, remote_port, local, local_port);
    FlowTable::RecordedFlow flow;
    if (table().find(key, flow) && m.has(flow.port)) return flow.port;
    EmbryoCache::Embryo embryo;
    if (embryos_->find(key, embryo) && m.has(embryo.port)) return embryo.port;
    if (m.founder != kNoPort) return m.founder;
    return by_hash(m, hash, false);
}

std::vector<std::pair<FlowKey, FlowTable::RecordedFlow>> PortGroup::recorded_flows() {
    std::lock_guard lock(write_mutex_);
    std::vector<std::pair<FlowKey, FlowTable::RecordedFlow>> out;
    table().for_each([&out](const FlowKey& k, const FlowTable::RecordedFlow& f) { out.emplace_back(k, f); });
    return out;
}

bool PortGroup::restore_flow(const FlowKey& key, const FlowTable::RecordedFlow& flow) {
    if (!has_member(flow.port)) return false;
    std::lock_guard lock(write_mutex_);
    return table_.load(std::memory_order_relaxed)->put(key, flow);
}

bool PortGroup::record_moved(const FlowKey& key, PortId port) { return has_member(port) && promote(key, port); }

bool PortGroup::promote(const FlowKey& key, PortId port) {
    std::lock_guard lock(write_mutex_);
    FlowTable& t = *table_.load(std::memory_order_relaxed);
    if (!t.put(key, {port, FlowTable::Phase::established, clock()})) {
        unrecorded_.fetch_add(1, std::memory_order_relaxed);
        return false;
    }
    embryos_->forget(key);
    return true;
}

bool PortGroup::note_outgoing(wire::Bytes frame, const wire::ParsedFrame& f, PortId sender) {
    if (f.protocol != IPPROTO_TCP) return true;
    const std::uint8_t flags = tcp_flags(frame, f);
    constexpr std::uint8_t kSynAck = wire::tcpflag::syn | wire::tcpflag::ack;
    const bool syn_ack = (flags & kSynAck) == kSynAck;
    if (!syn_ack && (flags & (wire::tcpflag::fin | wire::tcpflag::rst)) == 0) return true;  // the common case
    const MemberSet& m = members();
    if (syn_ack && sender == m.founder) return true;  // the founder's connections need no record
    const FlowKey key(f.dst_ip, f.dst_port, f.src_ip, f.src_port);
    std::lock_guard lock(write_mutex_);
    FlowTable& t = *table_.load(std::memory_order_relaxed);
    FlowTable::RecordedFlow flow;
    const bool known = t.find(key, flow);
    if (syn_ack) {
        // Another member's live connection is not this member's to take.
        if (known && flow.port != sender && flow.phase != FlowTable::Phase::closing && m.has(flow.port)) return false;
        embryos_->put(key, {sender, wire::load_be32(frame.data() + f.l4_offset + 4)});
        return true;
    }
    if (flags & wire::tcpflag::rst) embryos_->forget(key);
    if (!known || flow.port != sender) return true;
    if (flags & wire::tcpflag::rst) {
        (void)t.erase(key);
    } else if (flow.phase != FlowTable::Phase::closing) {
        (void)t.put(key, {sender, FlowTable::Phase::closing, clock()});
    }
    return true;
}

void PortGroup::publish(std::unique_ptr<MemberSet> next) {
    choose_candidates(*next);
    members_.store(next.get(), std::memory_order_release);
    qsbr_.synchronize();
    owned_members_ = std::move(next);
}

base::Result<base::Done, GroupError> PortGroup::join(PortId port, MemberRole role) {
    const MemberSet& m = members();
    if (m.has(port)) return GroupError::already_member;
    if (m.count >= kMaxGroupMembers) return GroupError::full;
    auto next = std::make_unique<MemberSet>(m);
    std::array<bool, kMaxGroupMembers> slot_used{};
    for (std::uint32_t i = 0; i < m.count; ++i) slot_used[m.members[i].share_slot] = true;
    const auto slot = static_cast<std::uint8_t>(std::find(slot_used.begin(), slot_used.end(), false) - slot_used.begin());
    shares_[slot].store(0, std::memory_order_relaxed);
    next->members[next->count++] = {port, role, slot};
    publish(std::move(next));
    return base::Done{};
}

base::Result<base::Done, GroupError> PortGroup::set_role(PortId port, MemberRole role) {
    const MemberSet& m = members();
    if (!m.has(port)) return GroupError::not_member;
    auto next = std::make_unique<MemberSet>(m);
    for (std::uint32_t i = 0; i < next->count; ++i) {
        if (next->members[i].port == port) next->members[i].role = role;
    }
    publish(std::move(next));
    return base::Done{};
}

base::Result<std::size_t, GroupError> PortGroup::leave(PortId port) {
    const MemberSet& m = members();
    if (!m.has(port)) return GroupError::not_member;
    auto next = std::make_unique<MemberSet>();
    for (std::uint32_t i = 0; i < m.count; ++i) {
        if (m.members[i].port != port) next->members[next->count++] = m.members[i];
    }
    next->founder = m.founder == port ? kNoPort : m.founder;
    const std::size_t left = next->count;
    publish(std::move(next));
    std::lock_guard lock(write_mutex_);
    (void)table_.load(std::memory_order_relaxed)->erase_unless([&](const FlowTable::RecordedFlow& f) {
        return f.port != port;
    });
    embryos_->forget_port(port);  // its id may come back with another port
    return left;
}

void PortGroup::sweep(std::uint32_t now_ticks) {
    clock_.store(now_ticks, std::memory_order_relaxed);
    const auto now = static_cast<std::uint16_t>(now_ticks & 0x3fffu);
    std::unique_ptr<FlowTable> retired;
    {
        std::lock_guard lock(write_mutex_);
        FlowTable& t = *table_.load(std::memory_order_relaxed);
        (void)t.erase_unless([&](const FlowTable::RecordedFlow& f) {
            if (f.phase == FlowTable::Phase::closing) return !ticks_passed(now, f.stamp, kClosingTicks);
            return true;
        });
        if (t.tombstones() > t.max_flows() / 4) {
            auto next = t.compacted();
            if (!next) return;  // memory is short: tombstones stay until the next sweep
            table_.store(next.get(), std::memory_order_release);
            retired = std::exchange(owned_table_, std::move(next));
        }
    }
    if (retired) qsbr_.synchronize();  // then `retired` goes, with no reader left in it
}

std::vector<GroupMemberView> PortGroup::members_view() const {
    const MemberSet& m = members();
    std::vector<GroupMemberView> out;
    for (std::uint32_t i = 0; i < m.count; ++i) {
        const MemberSet::Member& x = m.members[i];
        out.push_back({x.port, x.role, x.port == m.founder, shares_[x.share_slot].load(std::memory_order_relaxed)});
    }
    return out;
}

std::size_t PortGroup::flows() const { return table().live(); }

}  // namespace ms::sw
