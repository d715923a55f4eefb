#include "multistackd/service_manager.hpp"

#include <sys/mman.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace ms::multistackd {
namespace {

constexpr const char* kRecordName = "ms-record";
constexpr const char* kPrefix = "ms-";

HandOverFailure store_failure(const std::string& why) { return {HandOverError::transport, "the fd store: " + why}; }

bool notify_socket_set() { return std::getenv("NOTIFY_SOCKET") != nullptr; }

// Stores one descriptor under `name`.
bool store(int fd, const std::string& name) {
    const std::string message = "FDSTORE=1\nFDNAME=" + name;
    return sd_pid_notify_with_fds(0, 0, message.c_str(), &fd, 1) > 0;
}

void remove_stored(const std::string& name) {
    const std::string message = "FDSTOREREMOVE=1\nFDNAME=" + name;
    (void)sd_notify(0, message.c_str());
}

// The record's bytes, from the memfd they were stored in.
base::Result<std::vector<std::uint8_t>, HandOverFailure> read_record(int fd) {
    struct stat st {};
    if (::fstat(fd, &st) != 0 || st.st_size < 0 || static_cast<std::size_t>(st.st_size) > kMaxRecordBytes) {
        return HandOverFailure{HandOverError::malformed, "the stored hand-over record is not of a readable size"};
    }
    std::vector<std::uint8_t> bytes(static_cast<std::size_t>(st.st_size));
    std::size_t at = 0;
    while (at < bytes.size()) {
        const ssize_t n = ::pread(fd, bytes.data() + at, bytes.size() - at, static_cast<off_t>(at));
        if (n <= 0) return HandOverFailure{HandOverError::malformed, "the stored hand-over record cannot be read"};
        at += static_cast<std::size_t>(n);
    }
    return bytes;
}

// The index of a descriptor stored as "ms-N"; nothing for any other name.
std::optional<std::size_t> stored_index(const std::string& name) {
    const std::size_t prefix = std::strlen(kPrefix);
    if (name.rfind(kPrefix, 0) != 0 || name.size() == prefix) return std::nullopt;
    char* end = nullptr;
    const unsigned long index = std::strtoul(name.c_str() + prefix, &end, 10);
    if (!end || *end != '\0') return std::nullopt;
    return index;
}

// The stored descriptors by index, and the record's apart; false (and the stray one
// closed) if a name is not ours or comes twice.
bool sort_by_name(int count, char** names, int& record, std::map<std::size_t, int>& by_index) {
    bool ok = true;
    for (int i = 0; i < count; ++i) {
        const int fd = SD_LISTEN_FDS_START + i;
        const std::string name = names && names[i] ? names[i] : "";
        const auto index = stored_index(name);
        if (name == kRecordName && record < 0) {
            record = fd;
            continue;
        }
        if (index && by_index.emplace(*index, fd).second) continue;
        ::close(fd);
        ok = false;
    }
    return ok;
}

}  // namespace

void notify_ready() { (void)sd_notify(0, "READY=1"); }

base::Result<base::Done, HandOverFailure> store_hand_over(const EncodedState& state) {
    if (!notify_socket_set()) return store_failure("no service manager listens (NOTIFY_SOCKET is not set)");
    const int record = ::memfd_create(kRecordName, MFD_CLOEXEC);
    const bool written = record >= 0 &&
                         ::write(record, state.bytes.data(), state.bytes.size()) == static_cast<ssize_t>(state.bytes.size());
    const bool stored = written && store(record, kRecordName);
    if (record >= 0) ::close(record);
    if (!stored) return store_failure(std::string("the record was not taken: ") + std::strerror(errno));
    for (std::size_t i = 0; i < state.fds.size(); ++i) {
        if (!store(state.fds[i], kPrefix + std::to_string(i))) {
            return store_failure("descriptor " + std::to_string(i) + " was not taken: " + std::strerror(errno));
        }
    }
    return base::Done{};
}

base::Result<std::optional<HandOverState>, HandOverFailure> stored_hand_over() {
    char** names = nullptr;
    const int count = sd_listen_fds_with_names(1, &names);
    if (count <= 0) return std::optional<HandOverState>{};
    int record = -1;
    std::map<std::size_t, int> by_index;
    const bool named = sort_by_name(count, names, record, by_index);
    for (int i = 0; names && i < count; ++i) {
        remove_stored(names[i]);
        std::free(names[i]);
    }
    std::free(names);
    std::vector<int> fds;
    for (const auto& [index, fd] : by_index) fds.push_back(fd);
    auto fail = [&](HandOverFailure failure) -> base::Result<std::optional<HandOverState>, HandOverFailure> {
        for (const int fd : fds) ::close(fd);
        if (record >= 0) ::close(record);
        return failure;
    };
    const bool dense = by_index.empty() || by_index.rbegin()->first == by_index.size() - 1;
    if (!named || record < 0 || !dense) {
        return fail({HandOverError::malformed, "the service manager passed descriptors that are not a whole hand-over"});
    }
    const auto bytes = read_record(record);
    if (!bytes) return fail(bytes.error());
    ::close(record);
    auto decoded = decode(*bytes, std::move(fds));  // closes the descriptors on failure
    if (!decoded) return decoded.error();
    return std::optional<HandOverState>(std::move(decoded).value());
}

}  // namespace ms::multistackd
