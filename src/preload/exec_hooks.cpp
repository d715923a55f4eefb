// Contract: the exec calls of the preload library (execve and the calls built on it): the
// program's UTCP listeners go to the new image (posix/exec_listeners.hpp), which listens
// on them again at its start.
#include <stdarg.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "posix/arriving.hpp"
#include "posix/exec_listeners.hpp"
#include "preload/guarded.hpp"
#include "preload/interposition.hpp"

using namespace ms::preload;

namespace {

// Whether an environment loads this library into the new image.
bool loads_library(char* const envp[]) {
    for (char* const* e = envp; e && *e; ++e) {
        if (std::strncmp(*e, "LD_PRELOAD=", 11) == 0 && std::strstr(*e, "libmultistack-preload")) return true;
    }
    return false;
}

// Runs `exec` (an exec call of libc's that takes an environment) with the program's UTCP
// listeners and connections handed to the new image (posix/exec_listeners.hpp,
// posix/arriving.hpp); puts the listeners back if it fails (the connections come back on
// their next call).
// A vfork() child shares its parent's memory, so it execs with nothing handed over.
template <class Exec>
int exec_with_listeners(char* const envp[], Exec&& exec) {
    if (ms::posix::t_inside_library || in_vfork_child()) return exec(envp);
    InsideLibrary inside;
    // The new image keeps the kernel's sets and sees the kernel's readiness only.
    if (Runtime* rt = Runtime::current()) rt->hand_everything_to_kernel();
    const bool preloaded = loads_library(envp);
    auto handed = ms::posix::ExecListeners::prepare(envp, preloaded);
    const auto connections = ms::posix::ExecConnections::prepare(handed.envp(), preloaded);
    const int r = exec(connections.envp());
    const int error = errno;
    handed.undo();
    errno = error;
    return r;
}

// execl, execle and execlp: their variadic arguments as an argv (the first is `arg`).
std::vector<char*> variadic_argv(const char* arg, va_list& args) {
    std::vector<char*> argv{const_cast<char*>(arg)};
    while (argv.back()) argv.push_back(va_arg(args, char*));
    return argv;
}

}  // namespace

extern "C" {

int execve(const char* path, char* const argv[], char* const envp[]) {
    return ms::preload::guarded("execve", [&]() -> int {
        return exec_with_listeners(envp, [&](char* const* env) { return NEXT(execve)(path, argv, env); });
    });
}

int execv(const char* path, char* const argv[]) { return execve(path, argv, environ); }

int execvpe(const char* file, char* const argv[], char* const envp[]) {
    return ms::preload::guarded("execvpe", [&]() -> int {
        return exec_with_listeners(envp, [&](char* const* env) { return NEXT(execvpe)(file, argv, env); });
    });
}

int execvp(const char* file, char* const argv[]) { return execvpe(file, argv, environ); }

int execl(const char* path, const char* arg, ...) {
    va_list args;
    va_start(args, arg);
    const std::vector<char*> argv = variadic_argv(arg, args);
    va_end(args);
    return execve(path, argv.data(), environ);
}

int execlp(const char* file, const char* arg, ...) {
    va_list args;
    va_start(args, arg);
    const std::vector<char*> argv = variadic_argv(arg, args);
    va_end(args);
    return execvpe(file, argv.data(), environ);
}

int execle(const char* path, const char* arg, ...) {
    va_list args;
    va_start(args, arg);
    const std::vector<char*> argv = variadic_argv(arg, args);
    char* const* envp = va_arg(args, char* const*);
    va_end(args);
    return execve(path, argv.data(), envp);
}

}  // extern "C"

namespace ms::preload {

// In a new image: the listeners an exec handed over listen again, on UTCP if this
// process has it (the same proof joins the claim), else on the kernel.
void take_over_exec_listeners() {
    std::vector<ms::posix::InheritedListener> handed;
    {
        InsideLibrary inside;
        handed = ms::posix::take_exec_listeners();
    }
    for (const auto& l : handed) {
        if (!l.owned) {  // the exec'ing process had inherited it: join, taking no new connection
            if (Runtime* rt = Runtime::get()) {
                InsideLibrary inside;
                (void)rt->place_received_listener(l.fd, static_cast<std::uint32_t>(l.backlog), ms::ctl::ClaimRole::draining);
            }
            continue;
        }
        int reuse_port = 0;
        socklen_t len = sizeof reuse_port;
        const bool shared = NEXT(getsockopt)(l.fd, SOL_SOCKET, SO_REUSEPORT, &reuse_port, &len) == 0 && reuse_port;
        fd_table().set_pending(l.fd, pending::stream | (shared ? pending::reuse_port : 0));
        if (listen(l.fd, l.backlog) != 0) ms::posix::log_line(1, "a listener handed over by exec cannot listen again");
    }
}

}  // namespace ms::preload
