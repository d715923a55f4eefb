#include "daemon/descriptors.hpp"

#include <dirent.h>

namespace ms::daemon {

std::uint32_t open_descriptor_count() {
    DIR* d = ::opendir("/proc/self/fd");
    if (!d) return 0;
    std::uint32_t n = 0;
    while (const dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
    ::closedir(d);
    return n - 1;  // the directory's own descriptor
}

}  // namespace ms::daemon
