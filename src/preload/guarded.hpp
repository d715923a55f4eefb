// Contract: the preload library's boundary with the host program (preload.cpp). Nothing
// the library throws may unwind through the program's frames (they are C, and the
// program never expects it): guarded() runs one interposed call and turns an exception
// into -1 with an errno (a system error's own, ENOMEM for memory, EIO otherwise) and one
// log line naming the call.
#pragma once

#include <cerrno>
#include <exception>
#include <new>
#include <string>
#include <system_error>

#include "posix/runtime.hpp"

namespace ms::preload {

template <class Call>
auto guarded(const char* call_name, Call&& call) noexcept -> decltype(call()) {
    try {
        return call();
    } catch (const std::system_error& e) {
        ms::posix::log_line(1, std::string(call_name) + ": " + e.what());
        errno = e.code().category() == std::generic_category() || e.code().category() == std::system_category()
                    ? e.code().value()
                    : EIO;
    } catch (const std::bad_alloc&) {
        ms::posix::log_line(1, std::string(call_name) + ": out of memory");
        errno = ENOMEM;
    } catch (const std::exception& e) {
        ms::posix::log_line(1, std::string(call_name) + ": " + e.what());
        errno = EIO;
    } catch (...) {
        ms::posix::log_line(1, std::string(call_name) + ": an unknown exception");
        errno = EIO;
    }
    return -1;
}

}  // namespace ms::preload
