// Contract: the one result type of the tree. A Result holds a value or an error that
// names the reason, an enum of the layer's causes (or a small struct holding one, such
// as client::Failure); never both, never neither. Reading the value of a failed result,
// or the error of a successful one, is a programming error (std::get throws
// std::bad_variant_access, which no caller catches on purpose). std::expected would do,
// but clang 16 (the fuzzing build) cannot compile libstdc++ 12's <expected>.
#pragma once

#include <type_traits>
#include <utility>
#include <variant>

namespace ms::base {

// The value of a call that returns nothing but may fail.
struct Done {};

template <class T, class E>
class [[nodiscard]] Result {
    static_assert(!std::is_same_v<T, E>, "a Result's value and error must be told apart by type");

public:
    Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
    Result(E error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT: implicit by design

    [[nodiscard]] bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }

    [[nodiscard]] T& value() & { return std::get<0>(v_); }
    [[nodiscard]] const T& value() const& { return std::get<0>(v_); }
    [[nodiscard]] T&& value() && { return std::get<0>(std::move(v_)); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    [[nodiscard]] T value_or(T fallback) const { return ok() ? value() : std::move(fallback); }

    [[nodiscard]] const E& error() const { return std::get<1>(v_); }

private:
    std::variant<T, E> v_;
};

}  // namespace ms::base
