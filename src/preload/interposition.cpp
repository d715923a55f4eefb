// Contract: interposition.hpp's shared steps of the interposed calls.
#include "preload/interposition.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <set>
#include <string>
#include <tuple>

#include "posix/sockaddr.hpp"

namespace ms::preload {

long fail(int error) {
    errno = error;
    return -1;
}

void say_once(std::atomic<bool>& said, const std::string& line) {
    if (!said.exchange(true)) ms::posix::log_line(1, line);
}

long report_unknown_option(const char* call, int fd, int level, int name, long result) {
    if (result != -1 || errno != ENOPROTOOPT) return result;
    static std::mutex mutex;
    static std::set<std::tuple<std::string, int, int>> said;
    {
        std::lock_guard lock(mutex);
        if (!said.emplace(call, level, name).second) return fail(ENOPROTOOPT);
    }
    ms::posix::log_line(1, std::string(call) + " (level " + std::to_string(level) + ", option " + std::to_string(name) +
                               ") on the UTCP socket " + std::to_string(fd) + " is not supported: ENOPROTOOPT");
    return fail(ENOPROTOOPT);
}

Socket* ours(int fd) { return ms::posix::t_inside_library ? nullptr : fd_table().socket(fd); }

Runtime* runtime_for(int fd, Socket& s) {
    if (!Runtime::inherited(s)) return s.owner;
    Runtime* rt = Runtime::get();
    if (rt) {
        InsideLibrary inside;
        if (s.is<ListenerState>() ? rt->adopt_listener(fd, s).ok() : rt->take_over_connection(fd, s).ok()) return rt;
    }
    if (s.is<ListenerState>()) {
        static std::atomic<bool> said{false};
        say_once(said, "a UTCP listener inherited from the parent process cannot move to this one: EOPNOTSUPP");
    }
    return nullptr;
}

void settle_closed_shared() {
    Runtime* rt = ms::posix::t_inside_library ? nullptr : Runtime::current();
    if (!rt || !rt->closing_shared()) return;
    InsideLibrary inside;
    rt->settle_closed_shared();
}

bool bound_to_loopback(int fd) {
    InsideLibrary inside;
    const auto bound = ms::posix::bound_address(fd);
    return bound && ms::posix::is_loopback(*bound);
}

bool is_pending(int fd) { return !ms::posix::t_inside_library && (fd_table().pending(fd) & pending::stream); }

void settle_in_kernel(int fd) {
    const std::uint8_t bits = fd_table().pending(fd);
    fd_table().set_pending(fd, 0);
    const int one = 1;
    if (bits & pending::reuse_addr) NEXT(setsockopt)(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bits & pending::reuse_port) NEXT(setsockopt)(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
}

bool is_pending_datagram(int fd) { return !ms::posix::t_inside_library && (fd_table().pending(fd) & pending::datagram); }

namespace {
std::atomic<pid_t> g_process{0};
}  // namespace

void note_this_process() { g_process.store(::getpid()); }
bool in_vfork_child() { return ::getpid() != g_process.load(std::memory_order_relaxed); }

}  // namespace ms::preload
