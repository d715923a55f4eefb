// The sender's scoreboard (utcp/scoreboard.hpp): what each ACK reports delivered, which
// the delivery rate and RACK count from.
#include "utcp/scoreboard.hpp"

#include <gtest/gtest.h>

#include <array>

namespace ms::utcp {
namespace {

// Two segments of 1000 bytes in flight, and the bytes the ACKs deliver.
class TwoSegments : public ::testing::Test {
protected:
    TwoSegments() {
        board.on_send(start, 1000, 10);
        board.on_send(start + 1000, 1000, 20);
    }
    void cumulative_ack(Seq32 una) {
        board.on_cumulative_ack(una, [&](const SentSegment& s) { delivered += s.len; });
    }

    const Seq32 start{1000};
    Scoreboard board;
    std::uint32_t delivered = 0;
};

// A peer that acknowledges part of a segment, then the rest: each byte is delivered once.
TEST_F(TwoSegments, APartialCumulativeAckDeliversOnlyItsPart) {
    cumulative_ack(start + 1500);
    EXPECT_EQ(delivered, 1500u);
    EXPECT_EQ(board.in_flight(), 500u);
    cumulative_ack(start + 2000);
    EXPECT_EQ(delivered, 2000u) << "the second half of the segment came once";
    EXPECT_EQ(board.in_flight(), 0u);
}

// A segment SACKed before its cumulative ACK was delivered then, not again.
TEST_F(TwoSegments, ASackedSegmentIsNotDeliveredAgainByTheCumulativeAck) {
    const std::array blocks{wire::SackBlock{.left = (start + 1000).value(), .right = (start + 2000).value()}};
    board.on_sack(blocks, start, start + 2000, [&](const SentSegment& s) { delivered += s.len; });
    EXPECT_EQ(delivered, 1000u);
    cumulative_ack(start + 2000);
    EXPECT_EQ(delivered, 2000u);
}

}  // namespace
}  // namespace ms::utcp
