// Connections that arrive from another process other than by fork. See arriving.hpp.
#include "posix/arriving.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <string_view>

#include "posix/exec_env.hpp"
#include "posix/fd_table.hpp"
#include "posix/runtime.hpp"
#include "posix/socket.hpp"

namespace ms::posix {

namespace {

constexpr std::string_view kVariable = "MULTISTACK_CONNECTIONS";
constexpr std::string_view kConnectionLabel = "multistack-connection-";

std::mutex g_stand_ins_mutex;
std::deque<Socket> g_stand_ins;                                     // never freed
std::map<std::pair<dev_t, ino_t>, Socket*> g_stand_in_of;           // by open socket

bool unix_stream(int fd) {
    int domain = 0, type = 0;
    socklen_t len = sizeof domain;
    if (::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0 || domain != AF_UNIX) return false;
    len = sizeof type;
    return ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
}

// The abstract name `fd` is bound to, if any ("" otherwise).
std::string abstract_name(int fd) {
    sockaddr_un addr{};
    socklen_t len = sizeof addr;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0 || len <= sizeof(sa_family_t) + 1 ||
        addr.sun_path[0] != '\0') {
        return {};
    }
    return std::string(addr.sun_path + 1, len - sizeof(sa_family_t) - 1);
}

}  // namespace

void expect_connection(int fd) {
    struct stat st {};
    if (!fd_table().in_range(fd) || ::fstat(fd, &st) != 0) return;
    std::lock_guard lock(g_stand_ins_mutex);
    Socket*& stand_in = g_stand_in_of[{st.st_dev, st.st_ino}];
    if (!stand_in) {
        stand_in = &g_stand_ins.emplace_back();
        stand_in->state = StreamState{};
        stand_in->nonblocking = (::fcntl(fd, F_GETFL) & O_NONBLOCK) != 0;
    }
    ++stand_in->references;
    fd_table().set_pending(fd, 0);
    fd_table().set_socket(fd, stand_in);
}

void label_passed_connection(int fd) {
    if (!abstract_name(fd).empty()) return;
    struct stat st {};
    if (::fstat(fd, &st) != 0) return;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string name = std::string(kConnectionLabel) + std::to_string(::getpid()) + "-" + std::to_string(st.st_ino);
    std::memcpy(addr.sun_path + 1, name.data(), std::min(name.size(), sizeof addr.sun_path - 1));
    const auto len = static_cast<socklen_t>(sizeof(sa_family_t) + 1 + std::min(name.size(), sizeof addr.sun_path - 1));
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), len) != 0) {
        log_line(1, "a UTCP connection passed over SCM_RIGHTS could not be labelled for its receiver: " +
                        std::string(std::strerror(errno)));
    }
}

bool labelled_connection(int fd) { return unix_stream(fd) && abstract_name(fd).starts_with(kConnectionLabel); }

ExecConnections ExecConnections::prepare(char* const envp[], bool preloaded) {
    ExecConnections handed(envp);
    std::vector<std::pair<int, Socket*>> crossing;
    for_each_crossing_socket([&](int fd, Socket& s) {
        if (s.is<StreamState>()) crossing.emplace_back(fd, &s);
    });
    if (!crossing.empty() && !preloaded) {
        log_line(1, "a UTCP connection cannot follow exec into a program without the library: it stays behind");
        return handed;
    }
    std::string list;
    for (const auto& [fd, s] : crossing) {
        const bool first_number = std::ranges::find(crossing, s, &std::pair<int, Socket*>::second)->first == fd;
        if (first_number && !Runtime::inherited(*s)) (void)s->owner->hand_off_for_exec(fd);
        if (!list.empty()) list += ',';
        list += std::to_string(fd);
    }
    if (list.empty()) return handed;
    // Every number a stand-in now, this image's own included: a failed exec takes them back.
    for (std::string_view rest = list; !rest.empty();) {
        int fd = -1;
        const auto parsed = std::from_chars(rest.data(), rest.data() + rest.size(), fd);
        expect_connection(fd);
        rest.remove_prefix(std::min(rest.size(), static_cast<std::size_t>(parsed.ptr - rest.data()) + 1));
    }
    handed.variable_ = std::make_unique<std::string>(std::string(kVariable) + "=" + list);
    handed.environment_ = environment_with(envp, *handed.variable_);
    return handed;
}

void expect_exec_connections() {
    const char* value = std::getenv(kVariable.data());
    if (!value) return;
    const std::string list = value;
    ::unsetenv(kVariable.data());
    for (std::string_view rest = list; !rest.empty();) {
        const std::string_view entry = rest.substr(0, rest.find(','));
        rest.remove_prefix(std::min(rest.size(), entry.size() + 1));
        int fd = -1;
        const auto parsed = std::from_chars(entry.data(), entry.data() + entry.size(), fd);
        if (parsed.ec != std::errc{} || parsed.ptr != entry.data() + entry.size() || fd < 0 || !unix_stream(fd)) {
            log_line(1, std::string(kVariable) + ": '" + std::string(entry) + "' names no connection to take over: skipped");
            continue;
        }
        expect_connection(fd);
    }
}

}  // namespace ms::posix
