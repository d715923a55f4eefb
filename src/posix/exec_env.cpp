// What the UTCP sockets that cross exec share. See exec_env.hpp.
#include "posix/exec_env.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>

#include "posix/fd_table.hpp"

namespace ms::posix {

void for_each_program_number(const std::function<void(int)>& visit) {
    const long limit = ::sysconf(_SC_OPEN_MAX);
    for (int fd = 0; fd < limit && fd_table().in_range(fd); ++fd) visit(fd);
}

void for_each_crossing_socket(const std::function<void(int, Socket&)>& visit) {
    for_each_program_number([&](int fd) {
        Socket* s = fd_table().socket(fd);
        if (s && (::fcntl(fd, F_GETFD) & FD_CLOEXEC) == 0) visit(fd, *s);
    });
}

std::vector<char*> environment_with(char* const envp[], std::string& entry) {
    const std::size_t name_length = entry.find('=') + 1;  // the name and its '='
    std::vector<char*> environment;
    for (char* const* e = envp; e && *e; ++e) {
        if (std::strncmp(*e, entry.data(), name_length) != 0) environment.push_back(*e);
    }
    environment.push_back(entry.data());
    environment.push_back(nullptr);
    return environment;
}

}  // namespace ms::posix
