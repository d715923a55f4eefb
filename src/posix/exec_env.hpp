// Contract: what the UTCP sockets that cross exec or leave with the process share
// (exec_listeners.hpp, arriving.hpp, handoff.cpp): the program's descriptor numbers,
// which of them survive exec, and the new image's environment with one variable of ours
// set.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace ms::posix {

struct Socket;

// Every number the program's descriptors may have (below its soft RLIMIT_NOFILE; the
// library's own are above), in order.
void for_each_program_number(const std::function<void(int)>& visit);

// Every number that names a UTCP socket and survives exec (no FD_CLOEXEC), in order:
// visit(fd, socket).
void for_each_crossing_socket(const std::function<void(int, Socket&)>& visit);
// `envp` without any entry of the variable `entry` names ("NAME=value"), then `entry`,
// then the null that ends it. `entry` must outlive the result.
[[nodiscard]] std::vector<char*> environment_with(char* const envp[], std::string& entry);

}  // namespace ms::posix
