// Connections in hand-off at the control plane (daemon/parcels.hpp, control_handoffs.cpp):
// a hand-off is hostile input, checked before anything is kept; only the holder of the
// connection's descriptor takes it up, and its port then gets the connection's frames;
// only the sender takes back what nobody took; what a user keeps in hand-off is bounded.
#include <sys/mman.h>
#include <sys/stat.h>

#include "control_fixture.hpp"

namespace ms::daemon {
namespace {

using namespace control_fixture;

// A sealable memfd holding `bytes` bytes of `fill`, as a sender's library writes an image.
int image_file(std::size_t bytes, std::uint8_t fill = 0x5a) {
    const int fd = ::memfd_create("image", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    const std::vector<std::uint8_t> data(bytes, fill);
    EXPECT_EQ(::write(fd, data.data(), data.size()), static_cast<ssize_t>(bytes));
    return fd;
}

struct Pair {
    int app = -1;  // the application's end: what a forked child or a receiver holds
    int lib = -1;  // the library's end, which goes with the image
};

Pair readiness_pair() {
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    return {fds[0], fds[1]};
}

class HandOffTest : public ControlTest {
protected:
    // A session with a port and a standing-by claim on the wildcard's port `port_`.
    int claimed_session() {
        const int c = connect();
        EXPECT_EQ(attach(c), ctl::Status::ok);
        proof_ = bound_socket(SOCK_STREAM);
        EXPECT_EQ(claim(c, proof_, ctl::ClaimRole::standby), ctl::Status::ok);
        port_ = local_port(proof_);
        return c;
    }
    ~HandOffTest() override {
        if (proof_ >= 0) ::close(proof_);
    }
    // The request for a connection 198.18.0.1:port_ <- 198.18.0.2:40000 whose application end is `app`.
    ctl::HandOffRequest request(int app, std::uint64_t bytes) const {
        struct stat st {};
        EXPECT_EQ(::fstat(app, &st), 0);
        ctl::HandOffRequest req;
        req.local = ctl::to_tuple({IPPROTO_TCP, wire::IpAddr::v4(0xc6120001), port_});
        req.remote_family = 4;
        req.remote_port = 40000;
        const auto remote = wire::IpAddr::v4(0xc6120002);
        std::memcpy(req.remote, remote.bytes.data(), sizeof req.remote);
        req.token_device = st.st_dev;
        req.token_inode = st.st_ino;
        req.image_bytes = bytes;
        return req;
    }
    // Sends `req` with `fds`; the reply (its header, the parcel number of a hand-off) and
    // the descriptors it carried, which the caller closes.
    template <class Req, class Rep>
    Rep call_for(int c, const Req& req, std::span<const int> fds, std::vector<int>& received) {
        EXPECT_EQ(ctl::send_message(c, &req, sizeof req, fds), 0);
        settle();
        Rep rep{};
        EXPECT_GE(ctl::receive_message(c, &rep, sizeof rep, received, ctl::kMaxFds), static_cast<long>(sizeof(ctl::Header)));
        return rep;
    }
    ctl::HandOffReply hand_off(int c, const ctl::HandOffRequest& req, int image, int lib) {
        std::vector<int> received;
        const int fds[] = {image, lib};
        return call_for<ctl::HandOffRequest, ctl::HandOffReply>(c, req, fds, received);
    }
    ctl::TakeOverReply take_over(int c, int held, std::vector<int>& received) {
        const int fds[] = {held};
        return call_for<ctl::TakeOverRequest, ctl::TakeOverReply>(c, ctl::TakeOverRequest{}, fds, received);
    }

    int proof_ = -1;
    std::uint16_t port_ = 0;
};

TEST_F(HandOffTest, AHandOffIsCheckedBeforeAnythingIsKept) {
    const int sender = claimed_session();
    const Pair pair = readiness_pair();
    const int image = image_file(100);
    const int short_image = image_file(50);
    const int not_a_file = ::eventfd(0, EFD_CLOEXEC);
    struct Case {
        const char* what;
        ctl::HandOffRequest req;
        std::vector<int> fds;
        ctl::Status status;
    };
    ctl::HandOffRequest elsewhere = request(pair.app, 100);
    elsewhere.local = ctl::to_tuple({IPPROTO_TCP, wire::IpAddr::v4(0xc6120001), static_cast<std::uint16_t>(port_ + 1)});
    ctl::HandOffRequest huge = request(pair.app, ctl::kMaxImageBytes + 1);
    ctl::HandOffRequest no_token = request(pair.app, 100);
    no_token.token_inode = 0;
    const std::vector<Case> cases = {
        {"no descriptors", request(pair.app, 100), {}, ctl::Status::bad_request},
        {"an image that is no file", request(pair.app, 100), {not_a_file, pair.lib}, ctl::Status::bad_request},
        {"an image shorter than it says", request(pair.app, 100), {short_image, pair.lib}, ctl::Status::bad_request},
        {"a readiness end that is no socket", request(pair.app, 100), {image, not_a_file}, ctl::Status::bad_request},
        {"an image over the bound", huge, {image, pair.lib}, ctl::Status::bad_request},
        {"no token", no_token, {image, pair.lib}, ctl::Status::bad_request},
        {"a port the session does not claim", elsewhere, {image, pair.lib}, ctl::Status::not_found},
    };
    for (const Case& c : cases) {
        std::vector<int> received;
        const auto rep = call_for<ctl::HandOffRequest, ctl::HandOffReply>(sender, c.req, c.fds, received);
        EXPECT_EQ(rep.h.status, c.status) << c.what;
    }
    const int stranger = connect();
    EXPECT_EQ(hand_off(stranger, request(pair.app, 100), image, pair.lib).h.status, ctl::Status::not_attached);
    const auto kept = hand_off(sender, request(pair.app, 100), image, pair.lib);
    ASSERT_EQ(kept.h.status, ctl::Status::ok);
    EXPECT_NE(kept.parcel, 0u);
    EXPECT_EQ(::write(image, "x", 1), -1) << "the sender can still change the image it handed off";
    EXPECT_EQ(hand_off(sender, request(pair.app, 100), image_file(100), pair.lib).h.status, ctl::Status::address_in_use)
        << "two parcels for one connection";
    for (int fd : {image, short_image, not_a_file, pair.app, pair.lib}) ::close(fd);
}

TEST_F(HandOffTest, OnlyTheHolderOfTheDescriptorTakesTheConnectionUp) {
    const int sender = claimed_session();
    const int taker = connect();
    ASSERT_EQ(attach(taker), ctl::Status::ok);
    const Pair pair = readiness_pair();
    const int image = image_file(100, 0x42);
    ASSERT_EQ(hand_off(sender, request(pair.app, 100), image, pair.lib).h.status, ctl::Status::ok);
    ::close(image);
    ::close(pair.lib);
    std::vector<int> received;
    const Pair other = readiness_pair();
    EXPECT_EQ(take_over(taker, other.app, received).h.status, ctl::Status::not_found) << "another socket took it";
    const int held = ::dup(pair.app);  // what a forked child holds
    const auto taken = take_over(taker, held, received);
    ASSERT_EQ(taken.h.status, ctl::Status::ok);
    ASSERT_EQ(received.size(), 2u);
    std::uint8_t first = 0;
    EXPECT_EQ(::pread(received[0], &first, 1, 0), 1);
    EXPECT_EQ(first, 0x42) << "not the image that was handed off";
    EXPECT_EQ(taken.image_bytes, 100u);
    const auto entries = sw_->registry().entries();
    ASSERT_EQ(entries.size(), 1u);
    ASSERT_EQ(entries[0].members.size(), 2u) << "the taker did not join the connection's claim";
    EXPECT_EQ(entries[0].members[1].role, sw::MemberRole::draining) << "the taker would get new connections";
    EXPECT_EQ(entries[0].flows, 1u) << "the switch does not steer the connection to the taker";
    std::vector<int> again;
    EXPECT_EQ(take_over(taker, held, again).h.status, ctl::Status::not_found) << "taken up twice";
    EXPECT_EQ(server_->counters().handoffs_taken, 1u);
    ctl::close_all(received);
    for (int fd : {held, pair.app, other.app, other.lib}) ::close(fd);
}

TEST_F(HandOffTest, OnlyTheSenderTakesBackWhatNobodyTook) {
    const int sender = claimed_session();
    const Pair pair = readiness_pair();
    const int image = image_file(100);
    const auto kept = hand_off(sender, request(pair.app, 100), image, pair.lib);
    ASSERT_EQ(kept.h.status, ctl::Status::ok);
    std::vector<int> received;
    ctl::ReclaimRequest wrong;
    wrong.parcel = kept.parcel + 1;
    EXPECT_EQ((call_for<ctl::ReclaimRequest, ctl::TakeOverReply>(sender, wrong, {}, received).h.status),
              ctl::Status::not_found);
    ctl::ReclaimRequest right;
    right.parcel = kept.parcel;
    const auto back = call_for<ctl::ReclaimRequest, ctl::TakeOverReply>(sender, right, {}, received);
    ASSERT_EQ(back.h.status, ctl::Status::ok);
    EXPECT_EQ(back.h.op, ctl::Op::reclaim);
    EXPECT_EQ(received.size(), 2u);
    ctl::close_all(received);
    EXPECT_EQ((call_for<ctl::ReclaimRequest, ctl::TakeOverReply>(sender, right, {}, received).h.status),
              ctl::Status::not_found);
    EXPECT_EQ(server_->counters().handoffs_reclaimed, 1u);
    for (int fd : {image, pair.app, pair.lib}) ::close(fd);
}

TEST_F(HandOffTest, HandOffsAreBoundedPerUser) {
    const int sender = claimed_session();
    const Pair pair = readiness_pair();
    const int image = image_file(100);
    std::vector<Pair> pairs;
    ctl::Status last = ctl::Status::ok;
    for (std::uint32_t i = 0; i <= server_->limits().handoffs_per_user && last == ctl::Status::ok; ++i) {
        pairs.push_back(readiness_pair());
        last = hand_off(sender, request(pairs.back().app, 100), image_file(100), pairs.back().lib).h.status;
    }
    EXPECT_EQ(last, ctl::Status::limit_reached);
    EXPECT_EQ(pairs.size(), server_->limits().handoffs_per_user + 1u);
    for (const Pair& p : pairs) {
        ::close(p.app);
        ::close(p.lib);
    }
    for (int fd : {image, pair.app, pair.lib}) ::close(fd);
}

}  // namespace
}  // namespace ms::daemon
