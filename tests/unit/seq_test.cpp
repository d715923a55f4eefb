// Contract: TCP sequence numbers as Seq32 (RFC 9293 §3.4): comparison, arithmetic and windows across the 2^32 wrap.
#include <gtest/gtest.h>

#include "utcp/seq.hpp"

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

}  // namespace
}  // namespace ms::utcp
