// The claim registry: conflicts, wildcard precedence, local addresses, removal, and
// lock-free readers while the control thread changes the claims.
#include <gtest/gtest.h>

#include <netinet/in.h>

#include <atomic>
#include <map>
#include <thread>

#include "sw/registry.hpp"

namespace ms::sw {
namespace {

wire::IpAddr ip(const char* text) {
    wire::IpAddr a;
    EXPECT_TRUE(wire::parse_ip(text, a));
    return a;
}

const wire::IpAddr kLocal = ip("198.18.0.1");
const wire::IpAddr kLocal6 = ip("2001:2::1");
const wire::IpAddr kAny4 = wire::IpAddr::any(wire::IpFamily::v4);
const wire::IpAddr kAny6 = wire::IpAddr::any(wire::IpFamily::v6);

// The port of an unshared claim (kNoPort if none).
PortId owner(const ClaimTable& t, std::uint8_t protocol, const wire::IpAddr& addr, std::uint16_t port) {
    return t.lookup(protocol, addr, port).port;
}

class RegistryTest : public ::testing::Test {
protected:
    void SetUp() override { reg_.set_local_addresses({kLocal, ip("198.18.0.3"), kLocal6}); }
    // The control thread's view; the reader side is exercised by RegistryConcurrency.
    std::shared_ptr<const ClaimTable> table() { return reg_.snapshot(); }
    Qsbr qsbr_{1};
    Registry reg_{qsbr_};
};

TEST_F(RegistryTest, FindsAnExactClaim) {
    ASSERT_TRUE(reg_.add({IPPROTO_UDP, kLocal, 7}, 3));
    EXPECT_EQ(owner(*table(), IPPROTO_UDP, kLocal, 7), 3);
    EXPECT_EQ(owner(*table(), IPPROTO_TCP, kLocal, 7), kNoPort);    // other protocol
    EXPECT_EQ(owner(*table(), IPPROTO_UDP, kLocal, 8), kNoPort);    // other port
    EXPECT_EQ(owner(*table(), IPPROTO_UDP, ip("198.18.0.3"), 7), kNoPort);  // other address
}

TEST_F(RegistryTest, RefusesADuplicateClaim) {
    ASSERT_TRUE(reg_.add({IPPROTO_TCP, kLocal, 80}, 1));
    EXPECT_EQ(reg_.add({IPPROTO_TCP, kLocal, 80}, 2).error(), ClaimError::conflict);
    EXPECT_EQ(reg_.add({IPPROTO_TCP, kLocal, 80}, 1).error(), ClaimError::conflict);
    ASSERT_TRUE(reg_.add({IPPROTO_TCP, kAny4, 81}, 1));
    EXPECT_EQ(reg_.add({IPPROTO_TCP, kAny4, 81}, 2).error(), ClaimError::conflict);
    EXPECT_EQ(owner(*table(), IPPROTO_TCP, kLocal, 80), 1);
}

TEST_F(RegistryTest, RefusesBadClaims) {
    EXPECT_EQ(reg_.add({IPPROTO_ICMP, kLocal, 1}, 1).error(), ClaimError::bad_protocol);
    EXPECT_EQ(reg_.add({IPPROTO_TCP, kLocal, 0}, 1).error(), ClaimError::bad_port);
    EXPECT_EQ(reg_.add({IPPROTO_TCP, kLocal, 1}, kNoPort).error(), ClaimError::bad_port);
}

TEST_F(RegistryTest, ExactClaimTakesPrecedenceOverWildcard) {
    ASSERT_TRUE(reg_.add({IPPROTO_TCP, kAny4, 80}, 1));
    ASSERT_TRUE(reg_.add({IPPROTO_TCP, ip("198.18.0.3"), 80}, 2));
    EXPECT_EQ(owner(*table(), IPPROTO_TCP, ip("198.18.0.3"), 80), 2);
    EXPECT_EQ(owner(*table(), IPPROTO_TCP, kLocal, 80), 1);
}

TEST_F(RegistryTest, WildcardMatchesOnlyLocalAddresses) {
    ASSERT_TRUE(reg_.add({IPPROTO_UDP, kAny4, 53}, 4));
    EXPECT_EQ(owner(*table(), IPPROTO_UDP, kLocal, 53), 4);
    EXPECT_EQ(owner(*table(), IPPROTO_UDP, ip("198.18.0.2"), 53), kNoPort);  // a remote host's port 53
    EXPECT_EQ(owner(*table(), IPPROTO_UDP, kLocal6, 53), kNoPort);           // 0.0.0.0 is IPv4 only
    ASSERT_TRUE(reg_.add({IPPROTO_UDP, kAny6, 53}, 5));
    EXPECT_EQ(owner(*table(), IPPROTO_UDP, kLocal6, 53), 5);
    reg_.set_local_addresses({ip("198.18.0.3")});
    EXPECT_EQ(owner(*table(), IPPROTO_UDP, kLocal, 53), kNoPort);
    EXPECT_EQ(reg_.entries().size(), 2u);  // claims survive an address change
}

TEST_F(RegistryTest, RemovesClaimsOneByOneAndByPort) {
    ASSERT_TRUE(reg_.add({IPPROTO_TCP, kLocal, 1}, 1));
    ASSERT_TRUE(reg_.add({IPPROTO_TCP, kLocal, 2}, 1));
    ASSERT_TRUE(reg_.add({IPPROTO_TCP, kLocal, 3}, 2));
    EXPECT_EQ(reg_.remove({IPPROTO_TCP, kLocal, 3}, 1).error(), ClaimError::not_found);  // not its owner
    EXPECT_TRUE(reg_.remove({IPPROTO_TCP, kLocal, 3}, 2));
    EXPECT_EQ(reg_.remove({IPPROTO_TCP, kLocal, 3}, 2).error(), ClaimError::not_found);
    EXPECT_EQ(owner(*table(), IPPROTO_TCP, kLocal, 3), kNoPort);
    EXPECT_EQ(reg_.remove_port(1), 2u);
    EXPECT_EQ(owner(*table(), IPPROTO_TCP, kLocal, 1), kNoPort);
    // A released 3-tuple can be claimed again at once.
    EXPECT_TRUE(reg_.add({IPPROTO_TCP, kLocal, 1}, 7));
    EXPECT_EQ(owner(*table(), IPPROTO_TCP, kLocal, 1), 7);
}

TEST_F(RegistryTest, HoldsThousandsOfClaims) {
    for (std::uint16_t p = 1; p <= 3000; ++p) {
        ASSERT_TRUE(reg_.add({IPPROTO_UDP, kLocal, p}, static_cast<PortId>(p % 1024)));
    }
    for (std::uint16_t p = 1; p <= 3000; ++p) ASSERT_EQ(owner(*table(), IPPROTO_UDP, kLocal, p), p % 1024);
    EXPECT_EQ(owner(*table(), IPPROTO_UDP, kLocal, 3001), kNoPort);
}

// Claims made and released in rounds leave tombstones and make the table rebuild
// itself; lookups and the listing stay exactly those of a plain map throughout.
TEST_F(RegistryTest, StaysRightThroughChurnAndRebuilds) {
    std::map<std::uint16_t, PortId> model;
    for (int round = 0; round < 20; ++round) {
        for (std::uint16_t p = 1; p <= 500; ++p) {
            const bool held = model.contains(p);
            if (held && (p + round) % 3 == 0) {
                ASSERT_TRUE(reg_.remove({IPPROTO_UDP, kLocal, p}, model[p]));
                model.erase(p);
            } else if (!held && (p + round) % 2 == 0) {
                const auto owner = static_cast<PortId>((p + round) % 100);
                ASSERT_TRUE(reg_.add({IPPROTO_UDP, kLocal, p}, owner));
                model[p] = owner;
            }
        }
        for (std::uint16_t p = 1; p <= 500; ++p) {
            const auto it = model.find(p);
            ASSERT_EQ(owner(*table(), IPPROTO_UDP, kLocal, p), it == model.end() ? kNoPort : it->second) << p;
        }
        ASSERT_EQ(reg_.size(), model.size());
        ASSERT_EQ(reg_.entries().size(), model.size());
    }
}

TEST(RegistryConcurrency, ReadersNeverSeeATornOrFreedTable) {
    // Two workers read continuously while the control thread adds and removes claims.
    // Under ASan a reclaimed-too-early table is a use-after-free.
    Qsbr qsbr(2);
    Registry reg(qsbr);
    reg.set_local_addresses({kLocal});
    ASSERT_TRUE(reg.add({IPPROTO_UDP, kLocal, 9}, 1));
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> lookups{0};
    std::atomic<int> running{0};
    auto reader = [&](std::size_t id) {
        std::uint64_t n = 0;
        while (!stop.load(std::memory_order_relaxed)) {
            qsbr.quiescent(id);
            const ClaimTable& t = reg.read();
            // The permanent claim is always there; the churned one may or may not be.
            if (owner(t, IPPROTO_UDP, kLocal, 9) != 1) ADD_FAILURE() << "lost a stable claim";
            const PortId churn = owner(t, IPPROTO_UDP, kLocal, 10);
            if (churn != kNoPort && churn != 2) ADD_FAILURE() << "torn claim";
            if (++n == 1) ++running;
            if (n % 1024 == 0) qsbr.offline(id);  // readers also go offline, as sleeping workers do
        }
        qsbr.offline(id);
        lookups += n;
    };
    std::thread a(reader, 0);
    std::thread b(reader, 1);
    while (running < 2) std::this_thread::yield();  // the churn must overlap the reads
    for (int i = 0; i < 300; ++i) {
        ASSERT_TRUE(reg.add({IPPROTO_UDP, kLocal, 10}, 2));
        ASSERT_TRUE(reg.remove({IPPROTO_UDP, kLocal, 10}, 2));
    }
    stop = true;
    a.join();
    b.join();
    EXPECT_GT(lookups.load(), 0u);
}

}  // namespace
}  // namespace ms::sw
