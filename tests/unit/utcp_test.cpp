// UTCP building blocks: sequence-number arithmetic across the wrap, the timer wheel, and
// the send buffer's copied and referenced bytes.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "utcp/buffers.hpp"
#include "utcp/seq.hpp"
#include "utcp/timer_wheel.hpp"

namespace ms::utcp {
namespace {

TEST(Seq32, ComparesAcrossTheWrap) {
    const Seq32 before(0xfffffff0u);
    const Seq32 after = before + 0x20;  // wrapped past zero
    EXPECT_EQ(after.value(), 0x10u);
    EXPECT_LT(before, after);
    EXPECT_GT(after, before);
    EXPECT_LE(before, before);
    EXPECT_EQ(after - before, 0x20);
    EXPECT_EQ(before - after, -0x20);
    EXPECT_EQ(Seq32::max(before, after), after);
    EXPECT_EQ(Seq32::min(before, after), before);
    Seq32 s(5);
    s += 0xffffffffu;
    EXPECT_EQ(s.value(), 4u);
}

TEST(Seq32, WindowsIncludeTheStartAndExcludeTheEnd) {
    const Seq32 start(0xfffffffeu);
    EXPECT_TRUE(Seq32::in_window(start, start, 10));
    EXPECT_TRUE(Seq32::in_window(start + 9, start, 10));  // across the wrap
    EXPECT_FALSE(Seq32::in_window(start + 10, start, 10));
    EXPECT_FALSE(Seq32::in_window(start - 1, start, 10));
    EXPECT_FALSE(Seq32::in_window(start, start, 0));  // a zero window holds nothing
}

TEST(TimerWheel, FiresInDeadlineOrderAndNotEarly) {
    TimerWheel w(1000);
    Timer a, b, c;
    w.schedule(a, 1005);
    w.schedule(b, 1003);
    w.schedule(c, 1003 + 4096 * 3);  // three turns away: shares a slot, must wait
    std::vector<Timer*> fired;
    auto record = [&](Timer& t) { fired.push_back(&t); };
    EXPECT_EQ(w.next_deadline(), 1003u);
    EXPECT_EQ(w.advance(1002, record), 0u);
    EXPECT_EQ(w.advance(1005, record), 2u);
    EXPECT_EQ(fired, (std::vector<Timer*>{&b, &a}));
    EXPECT_FALSE(a.pending());
    EXPECT_TRUE(c.pending());
    EXPECT_EQ(w.advance(1003 + 4096 * 3 - 1, record), 0u);
    EXPECT_EQ(w.advance(1003 + 4096 * 3, record), 1u);
    EXPECT_EQ(w.size(), 0u);
    EXPECT_EQ(w.next_deadline(), UINT64_MAX);
}

TEST(TimerWheel, CancelsReschedulesAndUnlinksOnDestruction) {
    TimerWheel w(0);
    Timer a;
    w.schedule(a, 10);
    w.schedule(a, 50);  // replaces the first deadline
    EXPECT_EQ(w.size(), 1u);
    {
        Timer gone;
        w.schedule(gone, 20);
        EXPECT_EQ(w.size(), 2u);
    }
    EXPECT_EQ(w.size(), 1u);  // a destroyed timer leaves the wheel
    int fired = 0;
    EXPECT_EQ(w.advance(30, [&](Timer&) { ++fired; }), 0u);
    w.cancel(a);
    EXPECT_EQ(w.advance(100, [&](Timer&) { ++fired; }), 0u);
    EXPECT_EQ(fired, 0);
    w.schedule(a, 5);  // in the past: fires at the next advance
    EXPECT_EQ(w.advance(100, [&](Timer&) { ++fired; }), 1u);
}

TEST(TimerWheel, MatchesAReferenceUnderRandomUse) {
    std::mt19937 rng(11);
    TimerWheel w(0, 256, 1);
    std::vector<Timer> timers(500);
    std::map<Timer*, std::uint64_t> expected;  // what is pending, by the reference
    std::uint64_t now = 0;
    for (int step = 0; step < 20000; ++step) {
        Timer& t = timers[rng() % timers.size()];
        switch (rng() % 3) {
            case 0:
            case 1: {
                const std::uint64_t deadline = now + rng() % 2000;  // up to ~8 turns ahead
                w.schedule(t, deadline);
                expected[&t] = deadline;
                break;
            }
            default:
                w.cancel(t);
                expected.erase(&t);
        }
        if (step % 7 == 0) {
            now += rng() % 50;
            w.advance(now, [&](Timer& f) {
                ASSERT_TRUE(expected.contains(&f));
                ASSERT_LE(expected[&f], now);
                expected.erase(&f);
            });
            for (const auto& [timer, deadline] : expected) ASSERT_GT(deadline, now) << "a due timer did not fire";
        }
        ASSERT_EQ(w.size(), expected.size());
    }
}

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

}  // namespace
}  // namespace ms::utcp
