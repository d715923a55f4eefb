#include "multistackd/hand_over.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>

#include "ctl/seqpacket.hpp"

namespace ms::multistackd {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kChunkBytes = 60 << 10;

// One message of the record: which part it is, and the whole's size.
struct ChunkHeader {
    ctl::Header h{.op = ctl::Op::hand_over};
    std::uint32_t index = 0;
    std::uint32_t chunks = 0;
    std::uint64_t total_bytes = 0;
    std::uint32_t total_fds = 0;
    std::uint32_t bytes_here = 0;
};

HandOverFailure malformed(const std::string& why) { return {HandOverError::malformed, "the hand-over record " + why}; }
HandOverFailure transport(const std::string& why) { return {HandOverError::transport, "the hand-over session " + why}; }

// ---- encoding ----

// Names descriptors by their place in the list that travels beside the record.
class FdList {
public:
    std::size_t name(int fd) {
        fds_.push_back(fd);
        return fds_.size() - 1;
    }
    std::vector<int> take() { return std::move(fds_); }

private:
    std::vector<int> fds_;
};

json address(const wire::IpAddr& a) { return json::array({static_cast<int>(a.family), a.word(0), a.word(1)}); }
json claim_key(const sw::ClaimKey& k) { return json::array({k.protocol, address(k.addr), k.port}); }
json snapshot(const sw::StatsSnapshot& s) {
    return json::array({s.rx_frames, s.rx_bytes, s.tx_frames, s.tx_bytes, s.tx_super, s.tx_segmented, s.drops, s.faults});
}

json queue_json(const nic::XskQueueState& q, FdList& fds) {
    return {{"socket", fds.name(q.socket_fd)}, {"umem", fds.name(q.umem_fd)}, {"frames", q.frames},
            {"ring_size", q.ring_size},        {"tx_free", q.tx_free},        {"in_flight", q.in_flight}};
}

json port_json(const sw::PortState& p, FdList& fds) {
    json rings = json::array();
    for (const auto& r : p.rings) {
        rings.push_back({{"to_switch", fds.name(r.to_switch_fd)},
                         {"to_app", fds.name(r.to_app_fd)},
                         {"tx", {r.tx.hwcur, r.tx.hwtail}},
                         {"rx", {r.rx.hwcur, r.rx.hwtail}},
                         {"stats", snapshot(r.stats)}});
    }
    return {{"id", p.id},
            {"generation", p.generation},
            {"failed", p.failed},
            {"region", fds.name(p.region_fd)},
            {"rings", rings}};
}

json claim_json(const sw::ClaimState& c) {
    json members = json::array();
    for (const auto& m : c.members) members.push_back({m.port, static_cast<int>(m.role), m.founder});
    json flows = json::array();
    for (const auto& [key, f] : c.flows) {
        json words(key.words);
        flows.push_back({words, f.port, static_cast<int>(f.phase), f.stamp});
    }
    return {
        {"key", claim_key(c.key)}, {"shared", c.shared}, {"max_flows", c.max_flows}, {"members", members}, {"flows", flows}};
}

json counters_json(const daemon::ControlCounters& c) {
    return json::array({c.bad_requests, c.slow_clients, c.claims_refused, c.claims_revoked, c.limits_reached,
                        c.descriptors_exhausted, c.handoffs_taken, c.handoffs_reclaimed, c.handoffs_dropped});
}

json session_json(const daemon::HandedOverSession& s, FdList& fds) {
    json claims = json::array();
    for (const auto& c : s.claims) {
        const daemon::ProvenTuple& p = c.proven;
        claims.push_back({{"proof", fds.name(c.proof_fd)},
                          {"key", claim_key(p.key)},
                          {"twin", p.ipv4_twin ? claim_key(*p.ipv4_twin) : json(nullptr)},
                          {"cookie", p.cookie},
                          {"reuse_port", p.reuse_port},
                          {"owner_uid", p.owner_uid},
                          {"joined", c.joined}});
    }
    json resolve = s.resolve ? json{{"seq", s.resolve->seq}, {"hop", address(s.resolve->next_hop)}} : json(nullptr);
    return {
        {"fd", fds.name(s.fd)}, {"port", s.port ? json(*s.port) : json(nullptr)}, {"claims", claims}, {"resolve", resolve}};
}

// ---- decoding ----

// Reads a record without keeping it, to refuse one nested deeper than kMaxDepth (ours
// nest 6 levels) before the recursive reader sees it.
struct DepthLimit final : nlohmann::json_sax<json> {
    static constexpr std::size_t kMaxDepth = 16;
    std::size_t depth = 0;
    bool too_deep = false;

    bool enter() {
        too_deep = ++depth > kMaxDepth;
        return !too_deep;
    }
    bool leave() {
        --depth;
        return true;
    }
    bool null() override { return true; }
    bool boolean(bool) override { return true; }
    bool number_integer(number_integer_t) override { return true; }
    bool number_unsigned(number_unsigned_t) override { return true; }
    bool number_float(number_float_t, const string_t&) override { return true; }
    bool string(string_t&) override { return true; }
    bool binary(binary_t&) override { return true; }
    bool start_object(std::size_t) override { return enter(); }
    bool key(string_t&) override { return true; }
    bool end_object() override { return leave(); }
    bool start_array(std::size_t) override { return enter(); }
    bool end_array() override { return leave(); }
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }
};

// Hands out the received descriptors the record names, each once.
class FdClaims {
public:
    explicit FdClaims(std::vector<int> fds) : fds_(std::move(fds)), taken_(fds_.size(), false) {}
    ~FdClaims() {
        for (std::size_t i = 0; i < fds_.size(); ++i) {
            if (!taken_[i] || !kept_) ::close(fds_[i]);
        }
    }
    FdClaims(const FdClaims&) = delete;
    FdClaims& operator=(const FdClaims&) = delete;

    // The descriptor `index` names; a record that names one twice or out of range is malformed.
    int take(const json& index) {
        const auto i = index.get<std::uint64_t>();
        if (i >= fds_.size() || taken_[i]) throw std::out_of_range("a descriptor is missing or named twice");
        taken_[i] = true;
        return fds_[i];
    }
    // The named descriptors stay open (owned by the decoded state); the rest close.
    void keep() { kept_ = true; }

private:
    std::vector<int> fds_;
    std::vector<bool> taken_;
    bool kept_ = false;
};

template <class T>
T bounded(const json& j, std::uint64_t most) {
    const auto v = j.get<std::uint64_t>();
    if (v > most) throw std::out_of_range("a value is out of its bound");
    return static_cast<T>(v);
}

wire::IpAddr address_from(const json& j) {
    const int family = j.at(0).get<int>();
    if (family != static_cast<int>(wire::IpFamily::v4) && family != static_cast<int>(wire::IpFamily::v6)) {
        throw std::out_of_range("an address of no family");
    }
    wire::IpAddr a = wire::IpAddr::any(static_cast<wire::IpFamily>(family));
    const std::uint64_t words[2] = {j.at(1).get<std::uint64_t>(), j.at(2).get<std::uint64_t>()};
    std::memcpy(a.bytes.data(), words, sizeof words);
    return a;
}

sw::ClaimKey claim_key_from(const json& j) {
    return {bounded<std::uint8_t>(j.at(0), 255), address_from(j.at(1)), bounded<std::uint16_t>(j.at(2), 65535)};
}

sw::StatsSnapshot snapshot_from(const json& j) {
    sw::StatsSnapshot s;
    s.rx_frames = j.at(0).get<std::uint64_t>();
    s.rx_bytes = j.at(1).get<std::uint64_t>();
    s.tx_frames = j.at(2).get<std::uint64_t>();
    s.tx_bytes = j.at(3).get<std::uint64_t>();
    s.tx_super = j.at(4).get<std::uint64_t>();
    s.tx_segmented = j.at(5).get<std::uint64_t>();
    // Counters a newer daemon added are dropped; ones it lacks stay zero.
    const auto& drops = j.at(6);
    for (std::size_t i = 0; i < std::min(drops.size(), s.drops.size()); ++i) s.drops[i] = drops[i].get<std::uint64_t>();
    const auto& faults = j.at(7);
    for (std::size_t i = 0; i < std::min(faults.size(), s.faults.size()); ++i) s.faults[i] = faults[i].get<std::uint64_t>();
    return s;
}

ring::RingIndices indices_from(const json& j) { return {j.at(0).get<std::uint32_t>(), j.at(1).get<std::uint32_t>()}; }

nic::XskQueueState queue_from(const json& j, FdClaims& fds) {
    nic::XskQueueState q;
    q.socket_fd = fds.take(j.at("socket"));
    q.umem_fd = fds.take(j.at("umem"));
    q.frames = bounded<std::uint32_t>(j.at("frames"), 1u << 20);
    q.ring_size = bounded<std::uint32_t>(j.at("ring_size"), 1u << 16);
    const auto& free = j.at("tx_free");
    if (free.size() > q.frames) throw std::out_of_range("more free frames than frames");
    for (const auto& f : free) q.tx_free.push_back(bounded<std::uint32_t>(f, q.frames - 1));
    q.in_flight = bounded<std::uint32_t>(j.at("in_flight"), q.frames);
    return q;
}

sw::PortState port_from(const json& j, FdClaims& fds) {
    sw::PortState p;
    p.id = bounded<sw::PortId>(j.at("id"), sw::kMaxPorts - 1);
    p.generation = j.at("generation").get<std::uint32_t>();
    p.failed = j.at("failed").get<bool>();
    p.region_fd = fds.take(j.at("region"));
    const auto& rings = j.at("rings");
    if (rings.empty() || rings.size() > ring::kMaxRingPairs) throw std::out_of_range("a port's ring pairs");
    for (const auto& r : rings) {
        p.rings.push_back({fds.take(r.at("to_switch")), fds.take(r.at("to_app")), indices_from(r.at("tx")),
                           indices_from(r.at("rx")), snapshot_from(r.at("stats"))});
    }
    return p;
}

sw::MemberRole role_from(const json& j) {
    return static_cast<sw::MemberRole>(bounded<std::uint8_t>(j, static_cast<std::uint8_t>(sw::MemberRole::draining)));
}

sw::ClaimState claim_from(const json& j) {
    sw::ClaimState c;
    c.key = claim_key_from(j.at("key"));
    c.shared = j.at("shared").get<bool>();
    c.max_flows = bounded<std::size_t>(j.at("max_flows"), std::size_t{1} << 22);
    const auto& members = j.at("members");
    if (members.empty() || members.size() > sw::kMaxGroupMembers) throw std::out_of_range("a claim's members");
    for (const auto& m : members) {
        c.members.push_back({bounded<sw::PortId>(m.at(0), sw::kMaxPorts - 1), role_from(m.at(1)), m.at(2).get<bool>(), 0});
    }
    const auto& flows = j.at("flows");
    if (flows.size() > c.max_flows) throw std::out_of_range("more connections than the claim's bound");
    for (const auto& f : flows) {
        sw::FlowKey key;
        const auto& words = f.at(0);
        if (words.size() != std::size(key.words)) throw std::out_of_range("a connection's key");
        for (std::size_t i = 0; i < words.size(); ++i) key.words[i] = words[i].get<std::uint64_t>();
        const auto phase = bounded<std::uint8_t>(f.at(2), 2);
        if (phase == 0) throw std::out_of_range("a connection's phase");
        c.flows.push_back({key,
                           {bounded<sw::PortId>(f.at(1), sw::kMaxPorts - 1), static_cast<sw::FlowTable::Phase>(phase),
                            bounded<std::uint16_t>(f.at(3), 65535)}});
    }
    return c;
}

daemon::ControlCounters counters_from(const json& j) {
    daemon::ControlCounters c;
    std::uint64_t* fields[] = {&c.bad_requests,   &c.slow_clients,       &c.claims_refused,
                               &c.claims_revoked, &c.limits_reached,     &c.descriptors_exhausted,
                               &c.handoffs_taken, &c.handoffs_reclaimed, &c.handoffs_dropped};
    for (std::size_t i = 0; i < std::min(j.size(), std::size(fields)); ++i) *fields[i] = j[i].get<std::uint64_t>();
    return c;
}

daemon::HandedOverSession session_from(const json& j, FdClaims& fds) {
    daemon::HandedOverSession s;
    s.fd = fds.take(j.at("fd"));
    if (!j.at("port").is_null()) s.port = bounded<sw::PortId>(j.at("port"), sw::kMaxPorts - 1);
    for (const auto& c : j.at("claims")) {
        daemon::ProvenTuple p;
        p.key = claim_key_from(c.at("key"));
        if (!c.at("twin").is_null()) p.ipv4_twin = claim_key_from(c.at("twin"));
        p.cookie = c.at("cookie").get<std::uint64_t>();
        p.reuse_port = c.at("reuse_port").get<bool>();
        p.owner_uid = c.at("owner_uid").get<std::uint32_t>();
        s.claims.push_back({p, fds.take(c.at("proof")), c.at("joined").get<bool>()});
    }
    if (const auto& r = j.at("resolve"); !r.is_null()) {
        s.resolve = daemon::HandedOverResolve{r.at("seq").get<std::uint32_t>(), address_from(r.at("hop"))};
    }
    return s;
}

HandOverState state_from(const json& j, FdClaims& fds) {
    HandOverState st;
    st.version = j.at("version").get<std::uint32_t>();
    if (st.version == 0 || st.version > kHandOverVersion) {
        throw std::out_of_range("of version " + std::to_string(st.version) + " (this daemon reads up to " +
                                std::to_string(kHandOverVersion) + ")");
    }
    st.lock_fd = fds.take(j.at("lock"));
    for (const auto& q : j.at("queues")) st.queues.push_back(queue_from(q, fds));
    for (const auto& p : j.at("ports")) st.ports.push_back(port_from(p, fds));
    for (const auto& c : j.at("claims")) st.claims.push_back(claim_from(c));
    const auto& control = j.at("control");
    st.control.listen_fd = fds.take(control.at("listen"));
    st.control.counters = counters_from(control.at("counters"));
    for (const auto& s : control.at("sessions")) st.control.sessions.push_back(session_from(s, fds));
    return st;
}

// ---- transport ----

int remaining_ms(Clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return left > 0 ? static_cast<int>(left) : 0;
}

bool wait_for(int fd, short events, Clock::time_point deadline) {
    pollfd p{fd, events, 0};
    int rc;
    do {
        rc = ::poll(&p, 1, remaining_ms(deadline));
    } while (rc < 0 && errno == EINTR);
    return rc > 0 && (p.revents & events) != 0;
}

base::Result<base::Done, HandOverFailure> send_before(int session, std::span<const std::uint8_t> message,
                                                      std::span<const int> fds, Clock::time_point deadline) {
    for (;;) {
        const int rc = ctl::send_message(session, message.data(), message.size(), fds, true);
        if (rc == 0) return base::Done{};
        if (rc != -EAGAIN && rc != -ENOBUFS) return transport(std::string("failed: ") + std::strerror(-rc));
        if (!wait_for(session, POLLOUT, deadline)) return transport("timed out sending");
    }
}

// One message and its descriptors, within the deadline.
base::Result<long, HandOverFailure> receive_before(int session, std::vector<std::uint8_t>& buffer, std::vector<int>& fds,
                                                   Clock::time_point deadline) {
    for (;;) {
        const long n = ctl::receive_message(session, buffer.data(), buffer.size(), fds, ctl::kMaxFdsPerMessage);
        if (n > 0) return n;
        if (n == 0) return transport("was closed by the other daemon");
        if (n != -EAGAIN && n != -EINTR) return transport(std::string("failed: ") + std::strerror(static_cast<int>(-n)));
        if (!wait_for(session, POLLIN, deadline)) return transport("timed out waiting for the other daemon");
    }
}

ctl::Header hand_over_header(ctl::Status status) {
    ctl::Header h{.op = ctl::Op::hand_over};
    h.status = status;
    return h;
}

// Sends the one-header message of the hand-over's dialogue that says `status`.
base::Result<base::Done, HandOverFailure> send_header(int session, ctl::Status status, Clock::time_point deadline) {
    const ctl::Header h = hand_over_header(status);
    return send_before(session, {reinterpret_cast<const std::uint8_t*>(&h), sizeof h}, {}, deadline);
}

// Waits for the other daemon's one-header answer: Done if it says ok, else `no` (or why
// the session failed).
base::Result<base::Done, HandOverFailure> heard_ok(int session, Clock::time_point deadline, const HandOverFailure& no) {
    std::vector<std::uint8_t> buffer(sizeof(ctl::Header));
    std::vector<int> stray;
    const auto got = receive_before(session, buffer, stray, deadline);
    ctl::close_all(stray);
    if (!got) return got.error();
    ctl::Header h;
    std::memcpy(&h, buffer.data(), sizeof h);
    if (*got != sizeof h || h.op != ctl::Op::hand_over || h.status != ctl::Status::ok) return no;
    return base::Done{};
}

// The reply that says why the running daemon declined, as the operator reads it.
HandOverFailure declined(ctl::Status status) {
    if (status == ctl::Status::bad_request || status == ctl::Status::version_mismatch) {
        return {HandOverError::unsupported, "the running daemon does not hand over (it predates hand-overs)"};
    }
    if (status == ctl::Status::busy) {
        return {HandOverError::busy, "the running daemon has connections in hand-off between processes"};
    }
    if (status == ctl::Status::permission_denied) return {HandOverError::refused, "only root may take over"};
    return {HandOverError::refused, "the running daemon declined (status " + std::to_string(static_cast<int>(status)) + ")"};
}

}  // namespace

void close_descriptors(HandOverState& st) {
    auto close = [](int& fd) {
        if (fd >= 0) ::close(fd);
        fd = -1;
    };
    close(st.lock_fd);
    for (auto& q : st.queues) {
        close(q.socket_fd);
        close(q.umem_fd);
    }
    for (auto& p : st.ports) {
        close(p.region_fd);
        for (auto& r : p.rings) {
            close(r.to_switch_fd);
            close(r.to_app_fd);
        }
    }
    close(st.control.listen_fd);
    for (auto& s : st.control.sessions) {
        close(s.fd);
        for (auto& c : s.claims) close(c.proof_fd);
    }
}

EncodedState encode(const HandOverState& st) {
    FdList fds;
    json j{{"version", st.version}, {"lock", fds.name(st.lock_fd)}};
    json& queues = j["queues"] = json::array();
    for (const auto& q : st.queues) queues.push_back(queue_json(q, fds));
    json& ports = j["ports"] = json::array();
    for (const auto& p : st.ports) ports.push_back(port_json(p, fds));
    json& claims = j["claims"] = json::array();
    for (const auto& c : st.claims) claims.push_back(claim_json(c));
    json control{{"listen", fds.name(st.control.listen_fd)}, {"counters", counters_json(st.control.counters)}};
    json& sessions = control["sessions"] = json::array();
    for (const auto& s : st.control.sessions) sessions.push_back(session_json(s, fds));
    j["control"] = std::move(control);
    return {json::to_cbor(j), fds.take()};
}

base::Result<HandOverState, HandOverFailure> decode(std::span<const std::uint8_t> bytes, std::vector<int> fds) {
    FdClaims claims(std::move(fds));
    if (bytes.size() > kMaxRecordBytes) return malformed("is larger than its bound");
    // nlohmann's CBOR reader recurses once a level: a record nested deeper than any we
    // write is refused before it is parsed.
    DepthLimit limit;
    if (!json::sax_parse(bytes.begin(), bytes.end(), &limit, json::input_format_t::cbor)) {
        return malformed(limit.too_deep ? "is nested deeper than a record is" : "cannot be read");
    }
    try {
        const json j = json::from_cbor(bytes.begin(), bytes.end());
        HandOverState st = state_from(j, claims);
        claims.keep();
        return st;
    } catch (const json::exception& e) {
        return malformed(std::string("cannot be read: ") + e.what());
    } catch (const std::out_of_range& e) {
        return malformed(std::string("is out of its bounds: ") + e.what());
    }
}

base::Result<base::Done, HandOverFailure> give(int session, const EncodedState& state, int timeout_ms) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    const std::size_t by_bytes = (state.bytes.size() + kChunkBytes - 1) / kChunkBytes;
    const std::size_t by_fds = (state.fds.size() + ctl::kMaxFdsPerMessage - 1) / ctl::kMaxFdsPerMessage;
    const std::size_t chunks = std::max<std::size_t>({by_bytes, by_fds, 1});
    std::vector<std::uint8_t> message;
    for (std::size_t i = 0; i < chunks; ++i) {
        const std::size_t at = std::min(i * kChunkBytes, state.bytes.size());
        const std::size_t size = std::min(kChunkBytes, state.bytes.size() - at);
        const std::size_t fd_at = std::min(i * ctl::kMaxFdsPerMessage, state.fds.size());
        const std::size_t fd_count = std::min(ctl::kMaxFdsPerMessage, state.fds.size() - fd_at);
        ChunkHeader head;
        head.index = static_cast<std::uint32_t>(i);
        head.chunks = static_cast<std::uint32_t>(chunks);
        head.total_bytes = state.bytes.size();
        head.total_fds = static_cast<std::uint32_t>(state.fds.size());
        head.bytes_here = static_cast<std::uint32_t>(size);
        message.resize(sizeof head + size);
        std::memcpy(message.data(), &head, sizeof head);
        std::memcpy(message.data() + sizeof head, state.bytes.data() + at, size);
        auto sent = send_before(session, message, std::span<const int>(state.fds).subspan(fd_at, fd_count), deadline);
        if (!sent) return sent.error();
    }
    const HandOverFailure refused{HandOverError::refused, "the new daemon refused the record (its log says why)"};
    if (auto taken = heard_ok(session, deadline, refused); !taken) return taken.error();
    // The taker commits only once it hears that this daemon lets go: if this cannot be said,
    // the taker never commits, and this daemon serves on.
    return send_header(session, ctl::Status::ok, deadline);
}

void decline(int session, ctl::Status why) { (void)send_header(session, why, Clock::now() + std::chrono::seconds(1)); }

base::Result<int, HandOverFailure> connect_to_daemon(const std::string& path) {
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    if (path.size() >= sizeof sun.sun_path) return transport("cannot start: the socket path is too long");
    std::memcpy(sun.sun_path, path.c_str(), path.size() + 1);
    const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return transport(std::string("cannot start: socket: ") + std::strerror(errno));
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&sun), sizeof sun) != 0) {
        const int err = errno;
        ::close(fd);
        return transport("cannot start: " + path + ": " + std::strerror(err));
    }
    return fd;
}

base::Result<HandOverState, HandOverFailure> request(int session, int timeout_ms) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    if (auto asked = send_header(session, ctl::Status::ok, deadline); !asked) return asked.error();
    std::vector<std::uint8_t> record;
    std::vector<int> fds;
    std::vector<std::uint8_t> buffer(sizeof(ChunkHeader) + kChunkBytes);
    std::optional<ChunkHeader> first;
    for (std::uint32_t i = 0; !first || i < first->chunks; ++i) {
        std::vector<int> chunk_fds;  // receive_message() bounds the vector it is given, so one per chunk
        const auto got = receive_before(session, buffer, chunk_fds, deadline);
        fds.insert(fds.end(), chunk_fds.begin(), chunk_fds.end());
        if (!got) {
            ctl::close_all(fds);
            return got.error();
        }
        ChunkHeader head;
        std::memcpy(&head, buffer.data(), std::min<std::size_t>(sizeof head, static_cast<std::size_t>(*got)));
        if (static_cast<std::size_t>(*got) < sizeof head) {
            ctl::close_all(fds);
            if (static_cast<std::size_t>(*got) == sizeof(ctl::Header)) return declined(head.h.status);
            return malformed("is truncated");
        }
        if (!first) first = head;
        const bool consistent = head.h.op == ctl::Op::hand_over && head.index == i && head.chunks == first->chunks &&
                                head.total_bytes == first->total_bytes && head.total_fds == first->total_fds &&
                                sizeof head + head.bytes_here == static_cast<std::size_t>(*got) &&
                                record.size() + head.bytes_here <= head.total_bytes && fds.size() <= head.total_fds &&
                                head.total_bytes <= kMaxRecordBytes && head.total_fds <= kMaxRecordDescriptors &&
                                head.chunks <=
                                    kMaxRecordBytes / kChunkBytes + kMaxRecordDescriptors / ctl::kMaxFdsPerMessage + 2;
        if (!consistent) {
            ctl::close_all(fds);
            return malformed("arrived out of order or with inconsistent sizes");
        }
        record.insert(record.end(), buffer.data() + sizeof head, buffer.data() + sizeof head + head.bytes_here);
    }
    if (record.size() != first->total_bytes || fds.size() != first->total_fds) {
        ctl::close_all(fds);
        return malformed("is truncated: " + std::to_string(record.size()) + " of " + std::to_string(first->total_bytes) +
                         " bytes, " + std::to_string(fds.size()) + " of " + std::to_string(first->total_fds) +
                         " descriptors");
    }
    return decode(record, std::move(fds));
}

void refuse(int session) { decline(session, ctl::Status::internal); }

base::Result<base::Done, HandOverFailure> take(int session, int timeout_ms) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    if (auto said = send_header(session, ctl::Status::ok, deadline); !said) return said.error();
    return heard_ok(session, deadline, {HandOverError::refused, "the running daemon did not let go"});
}

}  // namespace ms::multistackd
