// Contract: base::Result, the tree's one result type: a value or the error that names
// why there is none.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <variant>

#include "base/result.hpp"

namespace {

using ms::base::Done;
using ms::base::Result;

enum class Why { missing, refused };

Result<int, Why> parse_digit(char c) {
    if (c < '0' || c > '9') return Why::refused;
    return c - '0';
}

TEST(Result, HoldsTheValueOrTheReason) {
    const auto good = parse_digit('7');
    ASSERT_TRUE(good);
    EXPECT_TRUE(good.ok());
    EXPECT_EQ(*good, 7);
    EXPECT_EQ(good.value_or(0), 7);

    const auto bad = parse_digit('x');
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error(), Why::refused);
    EXPECT_EQ(bad.value_or(-1), -1);
}

TEST(Result, ReadingTheWrongSideIsAnError) {
    const auto bad = parse_digit('x');
    EXPECT_THROW((void)bad.value(), std::bad_variant_access);
    const auto good = parse_digit('1');
    EXPECT_THROW((void)good.error(), std::bad_variant_access);
}

TEST(Result, MovesOutValuesThatCannotBeCopied) {
    Result<std::unique_ptr<std::string>, Why> r = std::make_unique<std::string>("kept");
    ASSERT_TRUE(r);
    EXPECT_EQ(*r->get(), "kept");
    std::unique_ptr<std::string> taken = std::move(r).value();
    EXPECT_EQ(*taken, "kept");
}

TEST(Result, DoneStandsForNothingReturned) {
    const Result<Done, Why> done = Done{};
    EXPECT_TRUE(done);
    const Result<Done, Why> failed = Why::missing;
    EXPECT_EQ(failed.error(), Why::missing);
}

}  // namespace
