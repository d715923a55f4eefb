// The hand-over between daemons (multistackd/hand_over.hpp, docs/DESIGN.md §6,
// "Hand-over"): the record's codec, which refuses every truncated, garbled or
// out-of-bounds record and closes what it received; and a control plane handed from one
// process to another over the real protocol, whose client goes on in the same session
// with the same port, or, when the taker refuses, with the giver.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <thread>

#include "ctl/protocol.hpp"
#include "ctl/seqpacket.hpp"
#include "daemon/control_server.hpp"
#include "daemon/null_data_path.hpp"
#include "multistackd/hand_over.hpp"
#include "sw/nic.hpp"
#include "sw/switch.hpp"

namespace ms::multistackd {
namespace {

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

// A state of every part, each descriptor an eventfd.
HandOverState sample_state() {
    auto fd = [] { return ::eventfd(0, EFD_CLOEXEC); };
    HandOverState st;
    st.lock_fd = fd();
    st.queues.push_back({fd(), fd(), 4096, 2048, {2048, 2049, 4095}, 7});
    sw::PortState port{3, 11, false, fd(), {}};
    sw::StatsSnapshot stats;
    stats.rx_frames = 42;
    stats.drops[1] = 5;
    port.rings.push_back({fd(), fd(), {1, 2}, {3, 1023}, stats});
    st.ports.push_back(port);
    sw::ClaimState claim{{6, wire::IpAddr::v4(0xc6120001), 8080}, {}, true, 1024, {}};
    claim.members = {{3, sw::MemberRole::serving, true, 0}, {4, sw::MemberRole::draining, false, 0}};
    claim.flows.push_back({sw::FlowKey(wire::IpAddr::v4(0xc6120002), 40000, wire::IpAddr::v4(0xc6120001), 8080),
                           {4, sw::FlowTable::Phase::established, 9}});
    st.claims.push_back(claim);
    st.control.listen_fd = fd();
    st.control.counters.bad_requests = 13;
    daemon::HandedOverSession session;
    session.fd = fd();
    session.port = 3;
    daemon::ProvenTuple proven{claim.key, sw::ClaimKey{6, wire::IpAddr::any(wire::IpFamily::v4), 8080}, 77, true, 1000};
    session.claims.push_back({proven, fd(), false});
    session.resolve = daemon::HandedOverResolve{5, wire::IpAddr::v4(0xc6120003)};
    st.control.sessions.push_back(session);
    return st;
}

// Copies of the descriptors, as SCM_RIGHTS would give them to the taker.
std::vector<int> duplicates(const std::vector<int>& fds) {
    std::vector<int> out;
    for (const int fd : fds) out.push_back(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
    return out;
}

TEST(HandOverRecord, RoundTripsEveryPart) {
    HandOverState st = sample_state();
    const EncodedState encoded = encode(st);
    ASSERT_EQ(encoded.fds.size(), 9u);  // the lock, 2 of the queue, 3 of the port, the listener, the session and its proof
    auto decoded = decode(encoded.bytes, duplicates(encoded.fds));
    ASSERT_TRUE(decoded.ok()) << decoded.error().detail;
    HandOverState& back = *decoded;
    EXPECT_TRUE(is_open(back.lock_fd));
    ASSERT_EQ(back.queues.size(), 1u);
    EXPECT_EQ(back.queues[0].tx_free, (std::vector<std::uint32_t>{2048, 2049, 4095}));
    EXPECT_EQ(back.queues[0].in_flight, 7u);
    ASSERT_EQ(back.ports.size(), 1u);
    EXPECT_EQ(back.ports[0].id, 3);
    EXPECT_EQ(back.ports[0].generation, 11u);
    ASSERT_EQ(back.ports[0].rings.size(), 1u);
    EXPECT_EQ(back.ports[0].rings[0].rx.hwtail, 1023u);
    EXPECT_EQ(back.ports[0].rings[0].stats.rx_frames, 42u);
    EXPECT_EQ(back.ports[0].rings[0].stats.drops[1], 5u);
    ASSERT_EQ(back.claims.size(), 1u);
    EXPECT_EQ(back.claims[0].key, st.claims[0].key);
    ASSERT_EQ(back.claims[0].members.size(), 2u);
    EXPECT_EQ(back.claims[0].members[1].role, sw::MemberRole::draining);
    ASSERT_EQ(back.claims[0].flows.size(), 1u);
    EXPECT_EQ(back.claims[0].flows[0].first, st.claims[0].flows[0].first);
    EXPECT_EQ(back.claims[0].flows[0].second.port, 4);
    EXPECT_EQ(back.control.counters.bad_requests, 13u);
    ASSERT_EQ(back.control.sessions.size(), 1u);
    const auto& session = back.control.sessions[0];
    EXPECT_EQ(session.port, std::optional<sw::PortId>(3));
    ASSERT_EQ(session.claims.size(), 1u);
    EXPECT_EQ(session.claims[0].proven.ipv4_twin, st.control.sessions[0].claims[0].proven.ipv4_twin);
    EXPECT_EQ(session.claims[0].proven.cookie, 77u);
    ASSERT_TRUE(session.resolve.has_value());
    EXPECT_EQ(session.resolve->next_hop, wire::IpAddr::v4(0xc6120003));
    close_descriptors(back);
    close_descriptors(st);
}

// decode() of `bytes` with copies of `fds` fails, and every copy is closed.
void expect_refused(std::span<const std::uint8_t> bytes, const std::vector<int>& fds, const std::string& what) {
    const std::vector<int> copies = duplicates(fds);
    const auto decoded = decode(bytes, copies);
    EXPECT_FALSE(decoded.ok()) << what;
    if (!decoded.ok()) {
        EXPECT_EQ(decoded.error().error, HandOverError::malformed) << what;
    }
    for (const int fd : copies) EXPECT_FALSE(is_open(fd)) << what << ": descriptor " << fd << " left open";
}

TEST(HandOverRecord, RefusesEveryTruncation) {
    HandOverState st = sample_state();
    const EncodedState encoded = encode(st);
    for (std::size_t size = 0; size < encoded.bytes.size(); ++size) {
        expect_refused(std::span(encoded.bytes).first(size), encoded.fds, "truncated to " + std::to_string(size));
    }
    close_descriptors(st);
}

TEST(HandOverRecord, RefusesGarbageAndMissingOrRepeatedDescriptors) {
    HandOverState st = sample_state();
    const EncodedState encoded = encode(st);
    std::mt19937 random(7);
    for (int round = 0; round < 200; ++round) {
        std::vector<std::uint8_t> garbage(1 + random() % 512);
        for (auto& b : garbage) b = static_cast<std::uint8_t>(random());
        expect_refused(garbage, encoded.fds, "garbage");
    }
    std::vector<int> fewer(encoded.fds.begin(), encoded.fds.end() - 1);
    expect_refused(encoded.bytes, fewer, "a descriptor missing");
    nlohmann::json j = nlohmann::json::from_cbor(encoded.bytes);
    j["control"]["listen"] = j["lock"];
    expect_refused(nlohmann::json::to_cbor(j), encoded.fds, "a descriptor named twice");
    j["control"]["listen"] = encoded.fds.size();
    expect_refused(nlohmann::json::to_cbor(j), encoded.fds, "a descriptor beyond those sent");
    j = nlohmann::json::from_cbor(encoded.bytes);
    j["ports"][0].erase("rings");
    expect_refused(nlohmann::json::to_cbor(j), encoded.fds, "a port without rings");
    close_descriptors(st);
}

TEST(HandOverRecord, RefusesANewerVersionAndValuesOutOfBounds) {
    HandOverState st = sample_state();
    st.version = kHandOverVersion + 1;
    EncodedState newer = encode(st);
    expect_refused(newer.bytes, newer.fds, "a newer version");
    st.version = kHandOverVersion;
    st.queues[0].tx_free.push_back(4096);  // beyond the queue's frames
    EncodedState beyond = encode(st);
    expect_refused(beyond.bytes, beyond.fds, "a free frame beyond the UMEM");
    st.queues[0].tx_free.pop_back();
    st.ports[0].id = sw::kMaxPorts;
    EncodedState port = encode(st);
    expect_refused(port.bytes, port.fds, "a port id beyond the switch's bound");
    close_descriptors(st);
}

// give() and request() over a socket pair, with the giver's record cut short or garbled:
// the taker refuses it (malformed), says so, and the giver hears the refusal.
void expect_refused_over_the_wire(const EncodedState& sent, const std::string& what) {
    int pair[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
    std::optional<HandOverFailure> giver_heard;
    std::thread giver([&] {
        alignas(8) std::uint8_t ask[ctl::kMaxMessage];
        std::vector<int> none;
        EXPECT_EQ(ctl::receive_message(pair[0], ask, sizeof ask, none, 0), static_cast<long>(sizeof(ctl::Header)));
        auto given = give(pair[0], sent, 5000);
        if (!given) giver_heard = given.error();
    });
    auto taken = request(pair[1], 5000);
    EXPECT_FALSE(taken.ok()) << what;
    if (!taken.ok()) {
        EXPECT_EQ(taken.error().error, HandOverError::malformed) << what << ": " << taken.error().detail;
    }
    refuse(pair[1]);
    giver.join();
    ASSERT_TRUE(giver_heard.has_value()) << what << ": the giver did not hear the refusal";
    EXPECT_EQ(giver_heard->error, HandOverError::refused) << what;
    ::close(pair[0]);
    ::close(pair[1]);
}

// More descriptors than one message carries (253) arrive whole, in order, and the taker
// commits only once the giver lets go.
TEST(HandOverTransport, ARecordOfManyDescriptorsArrivesWholeAndTheGiverLetsGo) {
    HandOverState st = sample_state();
    for (int i = 0; i < 600; ++i) {
        daemon::HandedOverSession session;
        session.fd = ::eventfd(static_cast<unsigned>(i + 1), EFD_CLOEXEC | EFD_NONBLOCK);
        st.control.sessions.push_back(session);
    }
    const EncodedState encoded = encode(st);
    int pair[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
    bool let_go = false;
    std::thread giver([&] {
        alignas(8) std::uint8_t ask[ctl::kMaxMessage];
        std::vector<int> none;
        EXPECT_EQ(ctl::receive_message(pair[0], ask, sizeof ask, none, 0), static_cast<long>(sizeof(ctl::Header)));
        let_go = give(pair[0], encoded, 5000).ok();
    });
    auto taken = request(pair[1], 5000);
    ASSERT_TRUE(taken.ok()) << taken.error().detail;
    EXPECT_TRUE(take(pair[1], 5000).ok());
    giver.join();
    EXPECT_TRUE(let_go);
    ASSERT_EQ(taken->control.sessions.size(), 601u);
    for (int i = 0; i < 600; ++i) {  // each eventfd's count says which it is
        std::uint64_t count = 0;
        ASSERT_EQ(::read(taken->control.sessions[1 + i].fd, &count, sizeof count), static_cast<ssize_t>(sizeof count));
        EXPECT_EQ(count, static_cast<std::uint64_t>(i + 1)) << "session " << i;
    }
    close_descriptors(*taken);
    close_descriptors(st);
    ::close(pair[0]);
    ::close(pair[1]);
}

TEST(HandOverRecord, RefusesARecordNestedDeeperThanAnyWeWrite) {
    std::vector<std::uint8_t> nested(100000, 0x81);  // arrays of one array, 100,000 deep
    nested.push_back(0x00);
    expect_refused(nested, {}, "nested 100,000 deep");
}

TEST(HandOverTransport, ATruncatedOrGarbledRecordIsRefusedAndTheGiverHearsIt) {
    HandOverState st = sample_state();
    EncodedState encoded = encode(st);
    EncodedState truncated = encoded;
    truncated.bytes.resize(encoded.bytes.size() / 2);
    expect_refused_over_the_wire(truncated, "a truncated record");
    EncodedState garbled = encoded;
    for (std::size_t i = 0; i < garbled.bytes.size(); i += 7) garbled.bytes[i] ^= 0x5a;
    expect_refused_over_the_wire(garbled, "a garbled record");
    EncodedState short_of_descriptors = encoded;
    short_of_descriptors.fds.pop_back();
    expect_refused_over_the_wire(short_of_descriptors, "a record short of a descriptor");
    close_descriptors(st);
}

// A control plane in a child process (the giver): it serves until a daemon asks to take
// over, then hands over as multistackd does; if the taker refuses, it serves on.
[[noreturn]] void run_giver(const std::string& path, int ready) {
    sw::MemoryNic nic(1, 64, wire::MacAddr{{2, 0, 0, 0, 0, 1}});
    auto sw = sw::Switch::create(nic, sw::SwitchConfig{}).value();
    daemon::NullDataPath data_path;
    netlink::InterfaceInfo iface;
    auto server = daemon::ControlServer::open(
                      daemon::ServerContext{*sw, data_path, iface, {daemon::own_netns_cookie(), 0, {}}, {}, 256}, path,
                      std::nullopt)
                      .value();
    sw->start();
    (void)!::write(ready, "r", 1);
    for (;;) {
        const daemon::RunEnd end = server->run(-1);
        if (end.hand_over_fd < 0) ::_exit(2);
        sw->stop();
        auto control = server->hand_over_state(end.hand_over_fd);
        if (!control) ::_exit(3);
        const HandOverState st{kHandOverVersion,      ::open("/dev/null", O_RDONLY | O_CLOEXEC), {},
                               sw->hand_over_ports(), sw->registry().hand_over_claims(),         std::move(control).value()};
        if (give(end.hand_over_fd, encode(st), 5000)) ::_exit(0);
        server->hand_over_refused(end.hand_over_fd);
        sw->start();
    }
}

class HandOverControl : public ::testing::Test {
protected:
    void SetUp() override {
        path_ = "/tmp/ms-hand-over-test-" + std::to_string(::getpid()) + ".sock";
        int ready[2];
        ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
        giver_ = ::fork();
        ASSERT_GE(giver_, 0);
        if (giver_ == 0) run_giver(path_, ready[1]);
        ::close(ready[1]);
        char c;
        ASSERT_EQ(::read(ready[0], &c, 1), 1);
        ::close(ready[0]);
        client_ = ms::multistackd::connect_to_daemon(path_).value();
    }
    void TearDown() override {
        if (giver_ > 0) {
            ::kill(giver_, SIGKILL);
            ::waitpid(giver_, nullptr, 0);
        }
        ::close(client_);
        ::unlink(path_.c_str());
    }
    // Sends `req` on the client's session and returns the reply's header and descriptors,
    // serving `server` (the taker) meanwhile if given.
    template <class Req>
    ctl::Header call(const Req& req, std::vector<int>& fds, std::span<const int> with = {},
                     daemon::ControlServer* server = nullptr) {
        EXPECT_EQ(ctl::send_message(client_, &req, sizeof req, with), 0);
        alignas(8) std::uint8_t buf[ctl::kMaxMessage];
        for (int i = 0; i < 2000; ++i) {
            if (server) (void)server->run_once(0);
            const long n = ctl::receive_message(client_, buf, sizeof buf, fds, ctl::kMaxFds);
            if (n >= static_cast<long>(sizeof(ctl::Header))) {
                std::memcpy(&last_reply_, buf, std::min<std::size_t>(sizeof last_reply_, static_cast<std::size_t>(n)));
                ctl::Header h;
                std::memcpy(&h, buf, sizeof h);
                return h;
            }
            ::usleep(1000);
        }
        ADD_FAILURE() << "no reply";
        return {};
    }
    // The last reply as a message of type T.
    template <class T>
    T last_as() const {
        T v;
        std::memcpy(static_cast<void*>(&v), last_reply_, sizeof v);
        return v;
    }
    // Attaches a port and claims a UDP port with a fresh proof; the port's id.
    std::uint32_t attach_and_claim() {
        std::vector<int> fds;
        ctl::AttachRequest attach;
        attach.slots_per_ring = 64;
        EXPECT_EQ(call(attach, fds).status, ctl::Status::ok);
        const auto attached = last_as<ctl::AttachReply>();
        ctl::close_all(fds);
        proof_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_in sin{};
        sin.sin_family = AF_INET;
        EXPECT_EQ(::bind(proof_, reinterpret_cast<sockaddr*>(&sin), sizeof sin), 0);
        const int proof[] = {proof_};
        EXPECT_EQ(call(ctl::ClaimRequest{}, fds, proof).status, ctl::Status::ok);
        claimed_ = last_as<ctl::ClaimReply>();
        return attached.port_id;
    }
    // The port the client's session lists as its own, served by `server` if given.
    ctl::PortEntry own_port(daemon::ControlServer* server = nullptr) {
        std::vector<int> fds;
        EXPECT_EQ(call(ctl::Header{.op = ctl::Op::list_ports}, fds, {}, server).status, ctl::Status::ok);
        const auto e = last_as<ctl::PortEntry>();
        ctl::Header end;  // the list's end
        (void)call_end(end, server);
        return e;
    }
    bool call_end(ctl::Header& end, daemon::ControlServer* server) {
        alignas(8) std::uint8_t buf[ctl::kMaxMessage];
        std::vector<int> fds;
        for (int i = 0; i < 2000; ++i) {
            if (server) (void)server->run_once(0);
            if (ctl::receive_message(client_, buf, sizeof buf, fds, ctl::kMaxFds) > 0) {
                std::memcpy(&end, buf, sizeof end);
                return true;
            }
            ::usleep(1000);
        }
        return false;
    }

    std::string path_;
    pid_t giver_ = -1;
    int client_ = -1;
    int proof_ = -1;
    alignas(8) std::uint8_t last_reply_[ctl::kMaxMessage] = {};
    ctl::ClaimReply claimed_;
};

TEST_F(HandOverControl, TheClientGoesOnInItsSessionWithItsPortAndClaim) {
    const std::uint32_t port = attach_and_claim();
    const int taker = connect_to_daemon(path_).value();
    auto state = request(taker, 5000);
    ASSERT_TRUE(state.ok()) << state.error().detail;
    ASSERT_EQ(state->ports.size(), 1u);
    ASSERT_EQ(state->claims.size(), 1u);
    ASSERT_EQ(state->control.sessions.size(), 1u);  // the client's; not the taker's own
    sw::MemoryNic nic(1, 64, wire::MacAddr{{2, 0, 0, 0, 0, 1}});
    auto sw = sw::Switch::create(nic, sw::SwitchConfig{}).value();
    ASSERT_TRUE(sw->adopt_port(std::exchange(state->ports[0], {})).ok());
    ASSERT_TRUE(sw->registry().restore(state->claims[0]).ok());
    ASSERT_TRUE(take(taker, 5000).ok()) << "the giver did not let go";
    int status = 0;
    ASSERT_EQ(::waitpid(giver_, &status, 0), giver_);
    giver_ = -1;
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the giver did not exit after the hand-over";
    ::close(taker);
    daemon::NullDataPath data_path;
    netlink::InterfaceInfo iface;
    auto server = daemon::ControlServer::adopt(
        daemon::ServerContext{*sw, data_path, iface, {daemon::own_netns_cookie(), 0, {}}, {}, 256}, path_,
        std::move(state->control));
    ASSERT_TRUE(server.ok()) << server.error().message;
    sw->start();
    const ctl::PortEntry e = own_port(server->get());
    EXPECT_EQ(e.port_id, port);
    EXPECT_EQ(e.pid, ::getpid());
    EXPECT_EQ(e.claims, 1u);
    std::vector<int> fds;
    ctl::ReleaseRequest release;
    release.tuple = claimed_.claimed;
    EXPECT_EQ(call(release, fds, {}, server->get()).status, ctl::Status::ok) << "the claim did not go over";
    EXPECT_EQ(own_port(server->get()).claims, 0u);
    // A new client reaches the taker at the same path.
    const int first = std::exchange(client_, connect_to_daemon(path_).value());
    EXPECT_EQ(call(ctl::Header{.op = ctl::Op::info}, fds, {}, server->get()).status, ctl::Status::ok);
    ::close(std::exchange(client_, first));
    ::close(proof_);
}

TEST_F(HandOverControl, WhenTheTakerRefusesTheGiverServesOn) {
    const std::uint32_t port = attach_and_claim();
    const int taker = connect_to_daemon(path_).value();
    auto state = request(taker, 5000);
    ASSERT_TRUE(state.ok()) << state.error().detail;
    refuse(taker);
    close_descriptors(*state);
    ::close(taker);
    const ctl::PortEntry e = own_port();
    EXPECT_EQ(e.port_id, port);
    EXPECT_EQ(e.claims, 1u);
    ::close(proof_);
}

}  // namespace
}  // namespace ms::multistackd
