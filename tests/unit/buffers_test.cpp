// Contract: a connection's byte buffers (utcp/buffers.hpp): SendBuffer's copied and referenced bytes, and BufferPool's file
 // blocks.
#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "utcp/buffers.hpp"

namespace ms::utcp {
namespace {

// What a view of the send buffer says, as a string.
std::string text(const SplitBytes& v) {
    std::string out(v.first.begin(), v.first.end());
    out.append(v.second.begin(), v.second.end());
    return out;
}

wire::Bytes bytes(const std::string& s) { return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()}; }

TEST(SendBuffer, InterleavesCopiedAndReferencedBytesInStreamOrder) {
    SendBuffer buf(64);
    auto body = std::make_shared<std::string>("BODYBODY");
    ASSERT_EQ(buf.append(bytes("head:")), 5u);
    ASSERT_EQ(buf.append_reference(bytes(*body), body), 8u);
    ASSERT_EQ(buf.append(bytes("|next")), 5u);
    EXPECT_EQ(buf.size(), 18u);
    EXPECT_EQ(buf.referenced(), 8u);
    // A view never needs more than two spans: it stops where a third would begin.
    EXPECT_EQ(text(buf.view(0, 18)), "head:BODYBODY");
    EXPECT_EQ(text(buf.view(7, 11)), "DYBODY|next");
    EXPECT_EQ(buf.view(5, 8).first.data(), reinterpret_cast<const std::uint8_t*>(body->data()))
        << "referenced bytes must be read in place, not copied";
    buf.consume(3);
    EXPECT_EQ(text(buf.view(0, 4)), "d:BO");
    EXPECT_EQ(body.use_count(), 2);
    buf.consume(10);  // through the end of the body: its pin goes
    EXPECT_EQ(body.use_count(), 1);
    EXPECT_EQ(text(buf.view(0, 100)), "|next");
    buf.consume(5);
    EXPECT_EQ(buf.size(), 0u);
    EXPECT_FALSE(buf.holds_memory());
}

TEST(SendBuffer, CountsReferencedBytesAgainstItsCapacity) {
    SendBuffer buf(64);
    auto big = std::make_shared<std::string>(100, 'x');
    EXPECT_EQ(buf.append_reference(bytes(*big), big), 64u);
    EXPECT_EQ(buf.room(), 0u);
    EXPECT_EQ(buf.append(bytes("more")), 0u);
    EXPECT_EQ(buf.append_reference(bytes(*big), big), 0u);
    EXPECT_FALSE(buf.holds_memory()) << "referenced bytes take no ring memory";
}

// Against a plain string as the reference model, under random appends (copied or by
// reference, across the ring's wrap), views and acknowledgements.
TEST(SendBuffer, MatchesAReferenceUnderRandomUse) {
    std::mt19937 rng(7);
    SendBuffer buf(256);
    std::string model;
    std::uint64_t next = 0;
    for (int step = 0; step < 20000; ++step) {
        const auto op = rng() % 3;
        if (op == 0) {
            std::string data(rng() % 80, ' ');
            for (char& c : data) c = static_cast<char>('a' + next++ % 26);
            std::size_t n;
            if (rng() % 2) {
                auto block = std::make_shared<std::string>(data);
                n = buf.append_reference(bytes(*block), block);
            } else {
                n = buf.append(bytes(data));
            }
            model += data.substr(0, n);
            next -= data.size() - n;
        } else if (op == 1 && !model.empty()) {
            const std::size_t offset = rng() % model.size();
            const std::size_t len = rng() % (model.size() - offset + 1);
            const std::string got = text(buf.view(offset, len));
            ASSERT_LE(got.size(), len);
            ASSERT_EQ(got, model.substr(offset, got.size()));
            if (len > 0) {
                ASSERT_GT(got.size(), 0u) << "a view must make progress";
            }
        } else if (op == 2) {
            const std::size_t n = model.empty() ? 0 : rng() % (model.size() + 1);
            buf.consume(n);
            model.erase(0, n);
        }
        ASSERT_EQ(buf.size(), model.size());
    }
}

// ms-httpd's file cache: blocks from the shared area while it has room, reused by the
// next block that fits once released (a reload alternates between two), else the heap.
TEST(BufferPool, FileBlocksComeFromTheAreaAndAreReusedOnceReleased) {
    std::vector<std::uint8_t> area(1 << 16);
    BufferPool pool;
    pool.set_shared_area(area);
    auto a = pool.take_block(30000);
    auto b = pool.take_block(30000);  // a reload's new copy beside the old one
    EXPECT_TRUE(pool.in_shared_area(a.get()));
    EXPECT_TRUE(pool.in_shared_area(b.get()));
    const std::uint8_t* first = a.get();
    a.reset();
    auto c = pool.take_block(29000);  // the next reload fits where the first one was
    EXPECT_EQ(c.get(), first);
    auto d = pool.take_block(30000);  // no room left: from the heap
    EXPECT_FALSE(pool.in_shared_area(d.get()));
    auto e = pool.take_block(0);
    ASSERT_NE(e.get(), nullptr);
    EXPECT_TRUE(pool.in_shared_area(e.get()));
}

// The loop attached again to a new port: new arrays and blocks come from its data area;
// those of the old area stay valid while held and are never handed out again.
TEST(BufferPool, ANewAreaServesWhatComesNextAndTheOldOneIsNotReused) {
    std::vector<std::uint8_t> old_area(1 << 16);
    std::vector<std::uint8_t> new_area(1 << 16);
    BufferPool pool;
    pool.set_shared_area(old_area);
    std::uint8_t* held = pool.take(4096, true);
    std::uint8_t* returned = pool.take(4096, true);
    auto block = pool.take_block(8192);
    pool.give(returned, 4096);
    pool.move_shared_area(new_area);
    std::uint8_t* fresh = pool.take(4096, true);
    EXPECT_TRUE(pool.in_shared_area(fresh));
    EXPECT_NE(fresh, returned) << "an array of the old area was handed out again";
    pool.give(held, 4096);   // dropped: its area is no port's
    block.reset();           // likewise
    EXPECT_NE(pool.take(4096, true), held);
    auto next_block = pool.take_block(8192);
    EXPECT_TRUE(pool.in_shared_area(next_block.get()));
}

}  // namespace
}  // namespace ms::utcp
