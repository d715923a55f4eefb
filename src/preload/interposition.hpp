// Contract: what the preload library's interposed calls share (preload.cpp and the
// hooks beside it): libc's own definitions (NEXT), results as -1 and errno, which
// descriptors are UTCP sockets or pending ones, and which process the library's memory
// belongs to. Internal to libmultistack-preload.
#pragma once

#include <dlfcn.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "posix/fd_table.hpp"
#include "posix/reentry.hpp"
#include "posix/runtime.hpp"

// libc's (the next object's) definition of `name`, looked up once.
#define NEXT(name)                                                                             \
    ([]() {                                                                                    \
        static const auto fn = reinterpret_cast<decltype(&::name)>(::dlsym(RTLD_NEXT, #name)); \
        return fn;                                                                             \
    }())

namespace ms::preload {

using posix::DatagramState;
using posix::Errno;
using posix::fd_table;
using posix::InsideLibrary;
using posix::ListenerState;
using posix::Placement;
using posix::Runtime;
using posix::Socket;
namespace pending = posix::pending;

template <class T>
long finish(base::Result<T, Errno> r) {
    if (r.ok()) return static_cast<long>(r.value());
    errno = r.error().code;
    return -1;
}

long fail(int error);
// One log line per process (at level 1) for what `said` stands for: the first call says
// `line`, later ones nothing.
void say_once(std::atomic<bool>& said, const std::string& line);
// The UTCP socket `fd` names, for a call from the application (not the library itself).
Socket* ours(int fd);
// The runtime for a call on one of our sockets. A listener or a connection that another
// process had (fork, exec, SCM_RIGHTS) moves to this process's stack first; null if it
// cannot (the call fails with EOPNOTSUPP, logged once).
Runtime* runtime_for(int fd, Socket& s);
// After the kernel closed a number: connections the close set aside (another process may
// hold them) move there or close here (Runtime::settle_closed_shared).
void settle_closed_shared();
bool bound_to_loopback(int fd);
bool is_pending(int fd);
bool is_pending_datagram(int fd);
// The socket stays with the kernel for good: the options kept virtual are applied now.
void settle_in_kernel(int fd);
// After getsockopt or setsockopt (`call`) on the UTCP socket `fd`: when it failed with
// ENOPROTOOPT (an option UTCP does not have), one log line per process and option names
// the call, the option and the socket. Returns `result`, with errno as it was.
long report_unknown_option(const char* call, int fd, int level, int name, long result);

// Runs `call` with the runtime of our socket on `fd`, inside the library: its result, or
// -1 and errno (EOPNOTSUPP for a connection inherited across fork, EBADF if it is gone).
template <class Call>
long on_runtime(int fd, Call&& call) {
    Socket* s = fd_table().socket(fd);
    Runtime* rt = s ? runtime_for(fd, *s) : nullptr;
    if (!rt) return fail(s ? EOPNOTSUPP : EBADF);
    InsideLibrary inside;
    return finish(call(*rt));
}

// The process the library's memory belongs to: a vfork() child shares its parent's until
// it execs, and must leave the parent's tables alone (it only closes descriptors).
void note_this_process();
bool in_vfork_child();

// Descriptor passing (passed_rights.cpp).
base::Result<std::vector<char>, Errno> passable_rights(const msghdr& msg);
void adopt_passed_sockets(const msghdr& msg);

// In a forked child: the epoll sets it inherited become the kernel's (readiness_hooks.cpp).
void forget_inherited_epoll_sets();

// In a new image: the listeners an exec handed over (exec_hooks.cpp).
void take_over_exec_listeners();

}  // namespace ms::preload
