// The stdio, message-batch and splice paths of a TCP connection, as a C program uses
// them (netns.io_paths): the connection is wrapped in two stdio streams (fdopen), and
//   - 500 lines go with fprintf (every tenth with dprintf) and come back with fgets;
//   - 1 MiB of random bytes goes with fwrite and comes back with fread, byte-exact;
//   - three messages go in one sendmmsg() and their echo comes back by recvmmsg();
//   - with --on-utcp, the socket is the preload's: fileno() names it, and splice() on it
//     fails at once with EINVAL, and so does tee(); an option UTCP does not have
//     (TCP_REPAIR) fails with ENOPROTOOPT.
// The server echoes lines (fgets, fputs) until "BYE". Prints "ok ..." and exits 0, or
// prints what went wrong and exits 1.
//
// Usage: ms-io-paths-peer server ADDR PORT [--on-utcp]
//        ms-io-paths-peer client ADDR PORT [--on-utcp]
//        ms-io-paths-peer udp-client ADDR PORT   (2 datagrams by sendmmsg, back by recvmmsg)
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

[[noreturn]] void die(const std::string& why) {
    std::printf("FAIL: %s (errno %s)\n", why.c_str(), std::strerror(errno));
    std::exit(1);
}

sockaddr_in address(const char* ip, const char* port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(std::atoi(port)));
    if (::inet_pton(AF_INET, ip, &a.sin_addr) != 1) die(std::string("bad address ") + ip);
    return a;
}

struct Streams {
    int fd;
    FILE* in;
    FILE* out;
};

Streams wrap(int fd) {
    FILE* in = ::fdopen(fd, "r");
    FILE* out = ::fdopen(::dup(fd), "w");
    if (!in || !out) die("fdopen");
    return {fd, in, out};
}

// The checks that only hold on the preload's socket.
void check_on_utcp(const Streams& s) {
    if (::fileno(s.in) != s.fd) die("fileno() does not name the socket");
    int pipe_fds[2];
    if (::pipe(pipe_fds) != 0) die("pipe");
    const ssize_t spliced = ::splice(s.fd, nullptr, pipe_fds[1], nullptr, 4096, SPLICE_F_NONBLOCK);
    if (spliced != -1 || errno != EINVAL) die("splice() on the UTCP socket did not fail with EINVAL");
    // tee() takes pipes only: the kernel refuses the socket (the readiness pair's end) itself.
    if (::tee(s.fd, pipe_fds[1], 4096, SPLICE_F_NONBLOCK) != -1 || errno != EINVAL)
        die("tee() on the UTCP socket did not fail with EINVAL");
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    // An option UTCP does not have: ENOPROTOOPT (and one log line from the library).
    const int on = 1;
    if (::setsockopt(s.fd, IPPROTO_TCP, TCP_REPAIR, &on, sizeof on) != -1 || errno != ENOPROTOOPT) {
        die("setsockopt(TCP_REPAIR) on the UTCP socket did not fail with ENOPROTOOPT");
    }
}

void serve(const char* ip, const char* port, bool on_utcp) {
    const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
    const int one = 1;
    ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    const sockaddr_in a = address(ip, port);
    if (::bind(listener, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0 || ::listen(listener, 4) != 0) die("listen");
    std::printf("listening\n");
    std::fflush(stdout);
    const int fd = ::accept(listener, nullptr, nullptr);
    if (fd < 0) die("accept");
    const Streams s = wrap(fd);
    if (on_utcp) check_on_utcp(s);
    char line[70000];
    long lines = 0;
    while (std::fgets(line, sizeof line, s.in)) {
        if (std::strcmp(line, "BYE\n") == 0) break;
        if (std::strncmp(line, "BIN ", 4) == 0) {  // a binary block: fread, then fwrite it back
            const std::size_t n = std::strtoul(line + 4, nullptr, 10);
            std::vector<char> block(n);
            if (std::fread(block.data(), 1, n, s.in) != n) die("fread of a block");
            if (std::fwrite(block.data(), 1, n, s.out) != n) die("fwrite of a block");
        } else if (std::fputs(line, s.out) < 0) {
            die("fputs");
        }
        if (std::fflush(s.out) != 0) die("fflush");
        ++lines;
    }
    std::fclose(s.in);
    std::fclose(s.out);
    std::printf("ok - served %ld lines and blocks through stdio\n", lines);
}

void expect_line(FILE* in, const std::string& want) {
    char got[256];
    if (!std::fgets(got, sizeof got, in)) die("fgets: the echo of '" + want + "' did not come");
    if (want != got) die("fgets: '" + std::string(got) + "' came back for '" + want + "'");
}

// Three messages in one sendmmsg(), their echo by recvmmsg(); the input stream holds
// nothing then (every earlier echo has been read through it).
void batches(const Streams& s) {
    std::string parts[] = {"batch one\n", "batch two\n", "batch three\n"};
    iovec iov[3];
    mmsghdr messages[3]{};
    for (int i = 0; i < 3; ++i) {
        iov[i] = {parts[i].data(), parts[i].size()};
        messages[i].msg_hdr.msg_iov = &iov[i];
        messages[i].msg_hdr.msg_iovlen = 1;
    }
    if (::sendmmsg(s.fd, messages, 3, 0) != 3) die("sendmmsg did not send 3 messages");
    const std::string want = parts[0] + parts[1] + parts[2];
    std::string got;
    char buffers[3][64];
    while (got.size() < want.size()) {
        mmsghdr in[3]{};
        iovec in_iov[3];
        for (int i = 0; i < 3; ++i) {
            in_iov[i] = {buffers[i], sizeof buffers[i]};
            in[i].msg_hdr.msg_iov = &in_iov[i];
            in[i].msg_hdr.msg_iovlen = 1;
        }
        const int n = ::recvmmsg(s.fd, in, 3, MSG_WAITFORONE, nullptr);
        if (n <= 0) die("recvmmsg");
        const std::size_t before = got.size();
        for (int i = 0; i < n; ++i) got.append(buffers[i], in[i].msg_len);
        if (got.size() == before) die("recvmmsg: the connection ended before the echo came");
    }
    if (got != want) die("recvmmsg: other bytes came back");
}

void run_client(const char* ip, const char* port, bool on_utcp) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    const sockaddr_in a = address(ip, port);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) die("connect");
    const Streams s = wrap(fd);
    if (on_utcp) check_on_utcp(s);
    for (int i = 0; i < 500; ++i) {  // every tenth line by dprintf() on the descriptor
        const std::string line = "line " + std::to_string(i) + " of the stdio test\n";
        if (i % 10 == 9) {
            if (::dprintf(s.fd, "%s", line.c_str()) != static_cast<int>(line.size())) die("dprintf");
        } else if (std::fprintf(s.out, "%s", line.c_str()) < 0 || std::fflush(s.out) != 0) {
            die("fprintf");
        }
        expect_line(s.in, line);
    }
    std::mt19937 random(42);
    std::size_t echoed = 0;
    for (int i = 0; i < 16; ++i) {
        std::vector<char> block(65536);
        for (char& c : block) c = static_cast<char>(random());
        if (std::fprintf(s.out, "BIN %zu\n", block.size()) < 0) die("fprintf");
        if (std::fwrite(block.data(), 1, block.size(), s.out) != block.size() || std::fflush(s.out) != 0) die("fwrite");
        std::vector<char> back(block.size());
        if (std::fread(back.data(), 1, back.size(), s.in) != back.size()) die("fread: the block did not come back");
        if (back != block) die("fread: other bytes came back");
        echoed += back.size();
    }
    batches(s);
    std::fprintf(s.out, "BYE\n");
    std::fclose(s.out);
    std::fclose(s.in);
    std::printf(
        "ok - 500 lines (fprintf and dprintf, fgets), %zu bytes (fwrite, fread) byte-exact, 3 messages by sendmmsg and "
        "recvmmsg%s\n",
        echoed,
        on_utcp ? "; fileno() names the UTCP socket, splice() and tee() fail with EINVAL, TCP_REPAIR with ENOPROTOOPT" : "");
}

// UDP from an unbound socket: its first sendmmsg() places it (on UTCP under the preload),
// and recvmmsg() takes the two echoed datagrams.
void run_udp_client(const char* ip, const char* port) {
    const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in to = address(ip, port);
    std::string parts[] = {"datagram one", "datagram two"};
    iovec iov[2];
    mmsghdr out[2]{};
    for (int i = 0; i < 2; ++i) {
        iov[i] = {parts[i].data(), parts[i].size()};
        out[i].msg_hdr = {.msg_name = &to, .msg_namelen = sizeof to, .msg_iov = &iov[i], .msg_iovlen = 1};
    }
    if (::sendmmsg(fd, out, 2, 0) != 2) die("sendmmsg of 2 datagrams");
    const timeval wait{.tv_sec = 5, .tv_usec = 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
    std::vector<std::string> got;
    while (got.size() < 2) {
        char buffers[2][64];
        iovec in_iov[2];
        mmsghdr in[2]{};
        for (int i = 0; i < 2; ++i) {
            in_iov[i] = {buffers[i], sizeof buffers[i]};
            in[i].msg_hdr.msg_iov = &in_iov[i];
            in[i].msg_hdr.msg_iovlen = 1;
        }
        const int n = ::recvmmsg(fd, in, 2, MSG_WAITFORONE, nullptr);
        if (n <= 0) die("recvmmsg: the echoed datagrams did not come");
        for (int i = 0; i < n; ++i) got.emplace_back(buffers[i], in[i].msg_len);
    }
    if (got[0] != parts[0] || got[1] != parts[1]) die("recvmmsg: other datagrams came back");
    std::printf("ok - 2 datagrams by sendmmsg from an unbound socket, echoed back by recvmmsg\n");
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4 || (argc == 5 && std::strcmp(argv[4], "--on-utcp") != 0) || argc > 5) {
        std::fprintf(stderr, "usage: %s server|client|udp-client ADDR PORT [--on-utcp]\n", argv[0]);
        return 2;
    }
    const bool on_utcp = argc == 5;
    if (std::strcmp(argv[1], "server") == 0) {
        serve(argv[2], argv[3], on_utcp);
    } else if (std::strcmp(argv[1], "client") == 0) {
        run_client(argv[2], argv[3], on_utcp);
    } else if (std::strcmp(argv[1], "udp-client") == 0) {
        run_udp_client(argv[2], argv[3]);
    } else {
        std::fprintf(stderr, "%s: unknown role %s\n", argv[0], argv[1]);
        return 2;
    }
    return 0;
}
