// Contract: UTCP listeners across exec(). A listening socket whose descriptor is not
// close-on-exec survives exec in Linux, and servers rely on it: one that re-execs itself,
// nginx's binary upgrade (USR2 starts the new binary with the old listeners). On UTCP the
// program's number names the library's readiness pair, which means nothing to the new
// image, so before exec each such listener gets its kernel socket (the claim's proof)
// back on its number, and the new image learns which numbers they are from
// MULTISTACK_LISTENERS ("fd:backlog:o,..." for its own, ":i" for inherited ones). The
// new image's library takes that variable out of its environment at start and listens
// on each number again: on UTCP, where the daemon lets its session share the claim
// because it presents the same kernel socket (docs/DESIGN.md §3, §4.2), or on the kernel
// if it has no UTCP. One the exec'ing process had inherited across fork (nginx's USR2
// child, a CGI helper) joins without taking new connections (ctl::ClaimRole::draining):
// its parent, or the new image's own workers, serve. A new image without the library
// gets a kernel listener for the process's own listeners, never for inherited ones,
// whose socket the parent still serves on UTCP. The old image's own stack stops answering SYNs for
// them meanwhile (Runtime::pause_for_exec): a client's next SYN, a second later, reaches
// the new image; connections queued but never accepted are reset. An exec that fails
// puts every number back as it was.
// Established connections do not cross exec (docs/DESIGN.md §7.1).
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace ms::posix {

struct Socket;

class ExecListeners {
public:
    // Before exec with environment `envp`: puts the proofs on the listeners' numbers.
    // `preloaded`: whether the new image loads this library (else they listen on the kernel).
    static ExecListeners prepare(char* const envp[], bool preloaded);
    ExecListeners(ExecListeners&&) = default;
    ExecListeners& operator=(ExecListeners&&) = default;
    ExecListeners(const ExecListeners&) = delete;
    ExecListeners& operator=(const ExecListeners&) = delete;
    ~ExecListeners();

    // The environment for the new image: `envp` with MULTISTACK_LISTENERS set (or
    // `envp` itself when no listener crosses).
    [[nodiscard]] char* const* envp() const { return moved_.empty() ? original_ : environment_.data(); }
    // The exec failed: every number names its UTCP listener again.
    void undo();

private:
    explicit ExecListeners(char* const envp[]) : original_(envp) {}
    struct Moved {
        int fd;     // the program's number, which names the proof now
        int saved;  // the readiness descriptor it named, kept close-on-exec
        Socket* socket;
    };
    char* const* original_;
    std::vector<Moved> moved_;
    std::unique_ptr<std::string> variable_;  // environment_ points into it: it stays put when this moves
    std::vector<char*> environment_;
};

// In a new image, at start: the listeners that MULTISTACK_LISTENERS names, as pairs of
// number and backlog (malformed entries and numbers that are not unplaced, bound TCP
// sockets are skipped, with a log line). The variable leaves the environment.
struct InheritedListener {
    int fd;
    int backlog;
    bool owned;  // the exec'ing process's own listener (else one it had inherited across fork)
};
[[nodiscard]] std::vector<InheritedListener> take_exec_listeners();

}  // namespace ms::posix
