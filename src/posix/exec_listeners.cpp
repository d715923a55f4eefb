// UTCP listeners across exec(). See exec_listeners.hpp.
#include "posix/exec_listeners.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string_view>

#include "posix/exec_env.hpp"
#include "posix/fd_table.hpp"
#include "posix/runtime.hpp"
#include "posix/socket.hpp"

namespace ms::posix {

namespace {

constexpr std::string_view kVariable = "MULTISTACK_LISTENERS";

}  // namespace

ExecListeners ExecListeners::prepare(char* const envp[], bool preloaded) {
    ExecListeners handed(envp);
    std::string list;
    for_each_crossing_socket([&](int fd, Socket& s) {
        const auto* listening = s.as<ListenerState>();
        if (!listening || listening->proof_fd < 0) return;
        const int saved = ::fcntl(fd, F_DUPFD_CLOEXEC, fd_table().own_fd_floor());
        if (saved < 0) return;
        if (::dup3(listening->proof_fd, fd, 0) < 0) {
            ::close(saved);
            return;
        }
        const int backlog = listening->listener ? static_cast<int>(listening->listener->backlog) : SOMAXCONN;
        const bool owned = !Runtime::inherited(s);
        handed.moved_.push_back({fd, saved, &s});
        if (owned) s.owner->pause_for_exec(s, true);
        if (!preloaded && owned) ::listen(fd, backlog);  // a program without the library gets the kernel's listener
        if (!list.empty()) list += ',';
        list += std::to_string(fd) + ':' + std::to_string(backlog) + (owned ? ":o" : ":i");
    });
    if (handed.moved_.empty() || !preloaded) return handed;
    handed.variable_ = std::make_unique<std::string>(std::string(kVariable) + "=" + list);
    handed.environment_ = environment_with(envp, *handed.variable_);
    return handed;
}

void ExecListeners::undo() {
    for (const Moved& m : moved_) {
        ::dup3(m.saved, m.fd, 0);  // clears close-on-exec, which these numbers did not have
        if (!Runtime::inherited(*m.socket)) m.socket->owner->pause_for_exec(*m.socket, false);
    }
}

ExecListeners::~ExecListeners() {
    for (const Moved& m : moved_) ::close(m.saved);
}

namespace {

// "fd:backlog:o" or "fd:backlog:i": the listener it names, if well formed.
std::optional<InheritedListener> parse_entry(std::string_view entry) {
    InheritedListener l{-1, 0, false};
    const auto first = entry.find(':');
    const auto second = first == std::string_view::npos ? first : entry.find(':', first + 1);
    if (second == std::string_view::npos || second + 2 != entry.size()) return std::nullopt;
    const char* begin = entry.data();
    if (std::from_chars(begin, begin + first, l.fd).ec != std::errc{} || l.fd < 0) return std::nullopt;
    const auto backlog = std::from_chars(begin + first + 1, begin + second, l.backlog);
    if (backlog.ec != std::errc{} || backlog.ptr != begin + second) return std::nullopt;
    if (entry[second + 1] != 'o' && entry[second + 1] != 'i') return std::nullopt;
    l.owned = entry[second + 1] == 'o';
    return l;
}

}  // namespace

std::vector<InheritedListener> take_exec_listeners() {
    std::vector<InheritedListener> found;
    const char* value = std::getenv(kVariable.data());
    if (!value) return found;
    const std::string list = value;
    ::unsetenv(kVariable.data());
    std::string_view rest = list;
    while (!rest.empty()) {
        const std::string_view entry = rest.substr(0, rest.find(','));
        rest.remove_prefix(std::min(rest.size(), entry.size() + 1));
        const auto l = parse_entry(entry);
        if (!l || !unplaced_tcp_socket(l->fd)) {
            log_line(1, std::string(kVariable) + ": '" + std::string(entry) + "' names no listener to take over: skipped");
            continue;
        }
        found.push_back(*l);
    }
    return found;
}

}  // namespace ms::posix
