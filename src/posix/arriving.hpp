// Contract: UTCP connections that arrive in this process from another one (docs/DESIGN.md
// §7, "Connections that move") other than by fork: by exec (MULTISTACK_CONNECTIONS names
// the numbers in the new image) and by SCM_RIGHTS (the sender's library gives the
// application's end of the readiness pair an abstract AF_UNIX name, kConnectionLabel,
// before it goes, so that the receiving library knows it). Each such number gets a
// stand-in socket that belongs to no runtime, so the program's first call on it takes the
// connection up (Runtime::take_over_connection), as a forked child's first call does.
// Stand-ins are never freed (a few per process, like the table they sit in).
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace ms::posix {

struct Socket;

// `fd` names a connection that another process or image hands over. Several numbers
// of one open socket (dup before exec) share a stand-in.
void expect_connection(int fd);

// Before an SCM_RIGHTS message carries connection `fd`: names its application end so that
// the receiver knows it (once; a named one stays named).
void label_passed_connection(int fd);
// Whether the just received descriptor `fd` is a connection another process passed.
[[nodiscard]] bool labelled_connection(int fd);

// exec: the connections on numbers without close-on-exec go to the new image. Those
// this process's stack has are handed to the daemon now (Runtime::hand_off_for_exec);
// every one gets a stand-in here, so that a failed exec takes them back on first use.
class ExecConnections {
public:
    // The environment for the new image: `envp` with MULTISTACK_CONNECTIONS set, or
    // `envp` itself when no connection crosses. `preloaded`: the new image loads the
    // library (else its connections cannot follow: one log line).
    static ExecConnections prepare(char* const envp[], bool preloaded);
    [[nodiscard]] char* const* envp() const { return environment_.empty() ? original_ : environment_.data(); }

private:
    explicit ExecConnections(char* const envp[]) : original_(envp) {}
    char* const* original_;
    std::unique_ptr<std::string> variable_;  // environment_ points into it: it stays put when this moves
    std::vector<char*> environment_;
};

// In a new image, at start: every number MULTISTACK_CONNECTIONS names that is an AF_UNIX
// stream socket expects its connection (the variable leaves the environment; other
// entries are skipped with a log line).
void expect_exec_connections();

}  // namespace ms::posix
