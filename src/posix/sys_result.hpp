// Contract: the result type of the POSIX socket layer: a value, or the errno that Linux
// would give for the same failure (the reason, by its standard name). The preload
// library turns a failure into -1 and errno at the boundary; nothing here throws.
#pragma once

#include <utility>
#include <variant>

namespace ms::posix {

// An errno value, as a type of its own so that it cannot be mistaken for a count.
struct Errno {
    int code = 0;
};

template <class T>
class [[nodiscard]] SysResult {
public:
    SysResult(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
    SysResult(Errno e) : v_(e) {}                 // NOLINT: implicit by design
    [[nodiscard]] bool ok() const { return std::holds_alternative<T>(v_); }
    explicit operator bool() const { return ok(); }
    [[nodiscard]] T& value() { return std::get<T>(v_); }
    [[nodiscard]] const T& value() const { return std::get<T>(v_); }
    [[nodiscard]] int error() const { return std::get<Errno>(v_).code; }

private:
    std::variant<T, Errno> v_;
};

}  // namespace ms::posix
