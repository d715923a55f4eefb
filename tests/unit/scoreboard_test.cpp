// The sender's scoreboard (utcp/scoreboard.hpp): what each ACK reports delivered, which
// the delivery rate and RACK count from.
#include "utcp/scoreboard.hpp"

#include <gtest/gtest.h>

#include <array>

namespace ms::utcp {
namespace {

// A peer that acknowledges part of a segment, then the rest: each byte is delivered once.
TEST(Scoreboard, APartialCumulativeAckDeliversOnlyItsPart) {
    Scoreboard board;
    const Seq32 start(1000);
    board.on_send(start, 1000, 10);
    board.on_send(start + 1000, 1000, 20);
    std::uint32_t delivered = 0;
    const auto count = [&](const SentSegment& s) { delivered += s.len; };
    board.on_cumulative_ack(start + 1500, count);
    EXPECT_EQ(delivered, 1500u);
    EXPECT_EQ(board.in_flight(), 500u);
    board.on_cumulative_ack(start + 2000, count);
    EXPECT_EQ(delivered, 2000u) << "the second half of the segment came once";
    EXPECT_EQ(board.in_flight(), 0u);
}

// A segment SACKed before its cumulative ACK was delivered then, not again.
TEST(Scoreboard, ASackedSegmentIsNotDeliveredAgainByTheCumulativeAck) {
    Scoreboard board;
    const Seq32 start(5000);
    board.on_send(start, 1000, 10);
    board.on_send(start + 1000, 1000, 20);
    std::uint32_t delivered = 0;
    const auto count = [&](const SentSegment& s) { delivered += s.len; };
    const std::array blocks{wire::SackBlock{.left = (start + 1000).value(), .right = (start + 2000).value()}};
    board.on_sack(blocks, start, start + 2000, count);
    EXPECT_EQ(delivered, 1000u);
    board.on_cumulative_ack(start + 2000, count);
    EXPECT_EQ(delivered, 2000u);
}

}  // namespace
}  // namespace ms::utcp
