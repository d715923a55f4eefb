// Contract: the preload library's re-entry guard. While the library itself runs (a call
// it took over, or its stack thread), the socket calls it makes (the control socket,
// claims' proof sockets, the readiness pairs) must reach libc, not the library again.
#pragma once

namespace ms::posix {

inline thread_local bool t_inside_library = false;

class InsideLibrary {
public:
    InsideLibrary() : outer_(t_inside_library) { t_inside_library = true; }
    ~InsideLibrary() { t_inside_library = outer_; }
    InsideLibrary(const InsideLibrary&) = delete;
    InsideLibrary& operator=(const InsideLibrary&) = delete;

private:
    bool outer_;
};

// The opposite, while the library sleeps or raises a signal on the application's
// behalf: a signal handler that runs meanwhile and calls close() or send() must reach
// the library, as it would reach the kernel.
class OutsideLibrary {
public:
    OutsideLibrary() : outer_(t_inside_library) { t_inside_library = false; }
    ~OutsideLibrary() { t_inside_library = outer_; }
    OutsideLibrary(const OutsideLibrary&) = delete;
    OutsideLibrary& operator=(const OutsideLibrary&) = delete;

private:
    bool outer_;
};

}  // namespace ms::posix
