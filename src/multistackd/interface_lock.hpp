// Contract: the interface lock, /run/multistack/IF.lock, which one daemon per interface
// holds for its life (a second one refuses to start); the kernel drops it when the last
// descriptor of it closes, so a hand-over passes it on with the descriptor. Also the
// failure every start step returns.
#pragma once

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

#include "base/result.hpp"

namespace ms::multistackd {

inline constexpr const char* kRunDir = "/run/multistack";

// Why the daemon cannot start, as the operator reads it.
struct StartFailure {
    std::string why;
};

// Holds an exclusive lock on /run/multistack/IF.lock for the daemon's life, so that a
// second daemon on the same interface refuses to start; the kernel drops it on exit.
class InterfaceLock {
public:
    // The lock, at once or (with `wait_ms`) once its holder lets go within that time.
    static base::Result<std::unique_ptr<InterfaceLock>, StartFailure> acquire(const std::string& iface, int wait_ms = 0) {
        ::mkdir(kRunDir, 0755);
        const std::string path = std::string(kRunDir) + "/" + iface + ".lock";
        const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) return StartFailure{path + ": " + std::strerror(errno)};
        std::unique_ptr<InterfaceLock> lock(new InterfaceLock(fd));
        while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
            if (wait_ms-- <= 0) {
                return StartFailure{"another multistackd owns " + iface + " (pid " + std::to_string(lock->holder()) + ")"};
            }
            ::usleep(1000);
        }
        lock->write_own_pid();
        return lock;
    }
    // The lock a previous daemon handed over with its descriptor; refused if the
    // descriptor does not hold the lock. The file names the previous daemon until
    // write_own_pid().
    static base::Result<std::unique_ptr<InterfaceLock>, StartFailure> adopt(int fd) {
        std::unique_ptr<InterfaceLock> lock(new InterfaceLock(fd));
        if (::flock(fd, LOCK_EX | LOCK_NB) != 0) return StartFailure{"the handed-over interface lock is not held"};
        return lock;
    }
    // Names this daemon in the file, as the lock's holder.
    void write_own_pid() const {
        const std::string me = std::to_string(::getpid());
        (void)!::ftruncate(fd_, 0);
        (void)!::pwrite(fd_, me.c_str(), me.size(), 0);
    }
    ~InterfaceLock() { release(); }
    // The descriptor that holds the lock, for a hand-over.
    [[nodiscard]] int fd() const { return fd_; }
    // Lets go of the interface before the process ends.
    void release() {
        if (fd_ >= 0) ::close(std::exchange(fd_, -1));
    }
    // The pid the lock file names: its holder's while it is held.
    [[nodiscard]] pid_t holder() const {
        char pid[32] = {};
        (void)!::pread(fd_, pid, sizeof pid - 1, 0);
        return static_cast<pid_t>(std::atoi(pid));
    }
    // The pid of the daemon that holds `iface`'s lock, or 0 if none does.
    static pid_t running_daemon(const std::string& iface) {
        const std::string path = std::string(kRunDir) + "/" + iface + ".lock";
        const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return 0;
        InterfaceLock probe(fd);
        if (::flock(fd, LOCK_SH | LOCK_NB) == 0) return 0;  // nobody holds it
        return probe.holder();
    }
    InterfaceLock(const InterfaceLock&) = delete;
    InterfaceLock& operator=(const InterfaceLock&) = delete;

private:
    explicit InterfaceLock(int fd) : fd_(fd) {}
    int fd_;
};

}  // namespace ms::multistackd
