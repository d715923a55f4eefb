// Contract: connections that move between processes (runtime.hpp, Processes; docs/DESIGN.md
// §7, "Connections that move"). A connection lives in one process's stack at a time.
//   - A process lets go of one when it closes its last number for it while another
//     process holds the application's end (the readiness pair's library end does not
//     hang up): the connection is written out (utcp/connection_image.hpp) into a memfd
//     and handed to the daemon with the pair's library end (ctl::Op::hand_off). Nothing
//     goes to the peer: its segments meanwhile are dropped and sent again.
//   - A process that holds the application's end takes it up on its first call on it
//     (ctl::Op::take_over): the daemon gives it the image and the library's end, joins its
//     port to the claim and steers the connection to it.
// Only connections marked shared (a fork since they were made, or passed over
// SCM_RIGHTS) take this path; the others close as they always did.
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "posix/exec_env.hpp"
#include "posix/fd_table.hpp"
#include "posix/options.hpp"
#include "posix/runtime.hpp"
#include "posix/sockaddr.hpp"
#include "utcp/connection_image.hpp"

namespace ms::posix {

namespace {

static_assert(2 * std::uint64_t{utcp::ConnectionImage::kMaxBuffer} + (1 << 20) <= ctl::kMaxImageBytes,
              "the daemon must take the largest image the stack writes");

// A memfd that holds `bytes`, or -1.
int image_file(const std::vector<std::uint8_t>& bytes) {
    const int fd = ::memfd_create("multistack-connection", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) return -1;
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n <= 0) {
            ::close(fd);
            return -1;
        }
        done += static_cast<std::size_t>(n);
    }
    return fd;
}

// The image in `fd` (at most `bytes`, as the daemon checked), read as hostile input.
base::Result<utcp::ConnectionImage, utcp::ImageError> read_image(int fd, std::uint64_t bytes) {
    struct stat st {};
    if (::fstat(fd, &st) != 0 || static_cast<std::uint64_t>(st.st_size) != bytes || bytes == 0) {
        return utcp::ImageError::truncated;
    }
    void* mapped = ::mmap(nullptr, bytes, PROT_READ, MAP_PRIVATE, fd, 0);
    if (mapped == MAP_FAILED) return utcp::ImageError::truncated;
    auto image = utcp::decode({static_cast<const std::uint8_t*>(mapped), bytes});
    ::munmap(mapped, bytes);
    return image;
}

std::int64_t micros_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start).count();
}

ctl::HandOffRequest hand_off_request(const utcp::FourTuple& t, const OpenSocketIdentity& token, std::uint64_t bytes) {
    ctl::HandOffRequest req;
    req.local = ctl::to_tuple({IPPROTO_TCP, t.local, t.local_port});
    req.remote_family = static_cast<std::uint8_t>(t.remote.family);
    req.remote_port = t.remote_port;
    std::memcpy(req.remote, t.remote.bytes.data(), sizeof req.remote);
    req.token_device = token.device;
    req.token_inode = token.inode;
    req.image_bytes = bytes;
    return req;
}

}  // namespace

void Runtime::prepare_fork() {
    mutex_.lock();
    for (Socket& s : sockets_) {
        if (auto* stream = s.as<StreamState>()) stream->shared = true;
    }
    show_everything_to_kernel();
}

void Runtime::after_fork_in_parent() { mutex_.unlock(); }

void Runtime::settle_closed_shared() {
    std::unique_lock lock(mutex_);
    for (Socket* s : std::exchange(closing_shared_, {})) settle_closed(*s);
    closing_shared_count_.store(0, std::memory_order_relaxed);
    after_call(lock);
}

void Runtime::settle_closed(Socket& s) {
    const auto token = s.ready ? s.ready->app_end_identity() : std::nullopt;
    const auto* stream = s.as<StreamState>();
    if (stream && stream->shared && token && s.ready->held_elsewhere() && hand_off(s, *token)) {
        recycle(s);
    } else {
        release(s);
    }
}

void Runtime::close_at_exit() {
    for_each_program_number([this](int fd) {
        Socket* s = fd_table().socket(fd);
        const auto* stream = s && s->owner == this ? s->as<StreamState>() : nullptr;
        if (!stream || !stream->conn) return;
        fd_table().set_socket(fd, nullptr);
        ::close(fd);  // inside the library: the kernel's close alone
        if (--s->references == 0) settle_closed(*s);
    });
    loop_->stack().flush(loop::EventLoop::clock_us());
}

bool Runtime::hand_off_for_exec(int fd) {
    std::unique_lock lock(mutex_);
    Socket* s = live(fd);
    const auto* stream = s && s->owner == this ? s->as<StreamState>() : nullptr;
    struct stat st {};
    if (!stream || !stream->conn || !s->ready || ::fstat(fd, &st) != 0) return false;
    const bool handed = hand_off(*s, {static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)});
    if (handed) recycle(*s);
    after_call(lock);
    return handed;
}

void Runtime::note_passed(int fd) {
    std::unique_lock lock(mutex_);
    if (Socket* s = live(fd); s && s->owner == this) {
        if (auto* stream = s->as<StreamState>()) stream->shared = true;
        expose(*s);  // the other process's poll, select and epoll see it through its pair
    }
}

bool Runtime::hand_off(Socket& s, const OpenSocketIdentity& token) {
    const auto start = std::chrono::steady_clock::now();
    auto& stream = std::get<StreamState>(s.state);
    auto image = loop_->stack().export_connection(stream.tuple);
    if (!image) {
        log_line(1, std::string("a connection that another process holds cannot move to it (") + to_string(image.error()) +
                        "): it closes here");
        return false;
    }
    const std::vector<std::uint8_t> bytes = utcp::encode(*image);
    const int file = image_file(bytes);
    if (file < 0) return take_back(stream, *image, "its image could not be written");
    // A process asleep in poll or select on its copy wakes, and takes the connection up
    // with its next call.
    s.ready->make_visible();
    s.ready->show(EPOLLIN | EPOLLOUT);
    const int library_end = s.ready->release_library_end();
    auto handed = loop_->control().hand_off(hand_off_request(stream.tuple, token, bytes.size()), file, library_end);
    ::close(file);
    if (handed) watch_handed(handed.value(), library_end);
    ::close(library_end);
    if (!handed) return take_back(stream, *image, handed.error().message());
    log_line(2, "a connection with " + describe(Endpoint{stream.tuple.remote, stream.tuple.remote_port}) +
                    " moves to the process that holds it (" + std::to_string(bytes.size()) +
                    " bytes of state, handed off in " + std::to_string(micros_since(start)) + " us)");
    stream.conn = nullptr;
    return true;
}

bool Runtime::take_back(StreamState& stream, const utcp::ConnectionImage& image, const std::string& why) {
    log_line(1, "a connection could not be handed to the process that holds it (" + why + "): it closes here");
    auto back = loop_->stack().import_connection(image, this, loop::EventLoop::clock_us());
    stream.conn = back ? back.value() : nullptr;
    return false;
}

void Runtime::watch_handed(std::uint64_t parcel, int library_end) {
    const int watch = ::fcntl(library_end, F_DUPFD_CLOEXEC, fd_table().own_fd_floor());
    if (watch < 0) return;  // unwatched: the daemon drops it if nobody takes it
    epoll_event ev{};
    ev.events = EPOLLRDHUP;  // and the hang-up, which epoll always reports
    ev.data.fd = watch;
    ::epoll_ctl(sleep_set_, EPOLL_CTL_ADD, watch, &ev);
    handed_.push_back({parcel, watch});
}

void Runtime::reclaim_orphans() {
    std::erase_if(handed_, [this](const Handed& h) {
        pollfd pfd{.fd = h.watch_fd, .events = POLLRDHUP, .revents = 0};
        if (::poll(&pfd, 1, 0) <= 0 || (pfd.revents & POLLHUP) == 0) return false;
        ::close(h.watch_fd);  // leaves the sleep set with it
        auto back = loop_->control().reclaim(h.parcel);
        if (!back) return true;  // taken up, and closed there
        auto image = read_image(back->image_fd, back->image_bytes);
        ::close(back->image_fd);
        ::close(back->library_end);
        auto conn = image ? loop_->stack().import_connection(*image, this, loop::EventLoop::clock_us())
                          : base::Result<utcp::Connection*, utcp::ImageError>(image.error());
        if (conn) {
            conn.value()->close();
            log_line(2, "a connection handed off that no process took up closes here");
        }
        return true;
    });
}

base::Result<int, Errno> Runtime::take_over_connection(int fd, Socket& elsewhere) {
    const auto start = std::chrono::steady_clock::now();
    auto& inherited = std::get<StreamState>(elsewhere.state);
    if (inherited.stays_elsewhere) return Errno{EOPNOTSUPP};
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kTakeOverWaitMs);
    auto pause = std::chrono::microseconds(200);
    for (;;) {
        std::unique_lock lock(mutex_);
        if (daemon_gone_) return Errno{ENETDOWN};
        if (Socket* now = live(fd); now && now->owner == this) return fd;  // another thread took it
        if (fd_table().socket(fd) != &elsewhere) return Errno{EBADF};
        auto taken = loop_->control().take_over(fd);
        if (taken) {
            auto adopted = adopt_connection(fd, elsewhere, taken.value(), lock);
            if (adopted) {
                log_line(2, "a connection moved here from another process (" + std::to_string(taken->image_bytes) +
                                " bytes of state, taken up " + std::to_string(micros_since(start)) +
                                " us after the first call on it)");
            }
            return adopted;
        }
        if (taken.error().error != client::Error::not_found || std::chrono::steady_clock::now() >= deadline) {
            inherited.stays_elsewhere = true;
            log_line(1, "a UTCP connection that another process had is still that process's (" + taken.error().message() +
                            "): EOPNOTSUPP here");
            return Errno{EOPNOTSUPP};
        }
        lock.unlock();
        std::this_thread::sleep_for(pause);  // the other process has not let go of it yet
        pause = std::min(pause * 2, std::chrono::microseconds(20'000));
    }
}

base::Result<int, Errno> Runtime::adopt_connection(int fd, const Socket& elsewhere,
                                                   const client::ControlSession::TakenConnection& taken,
                                                   std::unique_lock<std::mutex>& lock) {
    lingering_claims_.push_back({taken.claim, nullptr});  // released with the port's last connection
    auto image = read_image(taken.image_fd, taken.image_bytes);
    ::close(taken.image_fd);
    auto ready = Readiness::adopt(fd, taken.library_end, fd_table().own_fd_floor());
    const std::uint64_t now = loop::EventLoop::clock_us();
    auto conn = image ? loop_->stack().import_connection(*image, this, now)
                      : base::Result<utcp::Connection*, utcp::ImageError>(image.error());
    if (!conn || !ready) {
        log_line(1, "a connection handed over by another process cannot be taken up here (" +
                        std::string(conn ? "no descriptor" : to_string(conn.error())) + "): ECONNRESET");
        if (conn) conn.value()->abort();
        return Errno{ECONNRESET};
    }
    utcp::Connection& c = *conn.value();
    Socket& s = allocate(StreamState{.conn = &c, .tuple = c.tuple()});
    s.options = elsewhere.options;
    s.ip = elsewhere.ip;
    c.set_options(effective_options(s));  // the image carries no IP marks: the socket's go on
    s.nonblocking = elsewhere.nonblocking;
    s.recv_timeout_ms = elsewhere.recv_timeout_ms;
    s.send_timeout_ms = elsewhere.send_timeout_ms;
    s.linger_option = elsewhere.linger_option;
    s.ready.emplace(std::move(ready.value()));
    s.references = 1;
    c.handler = this;
    c.context = &s;
    fd_table().set_socket(fd, &s);
    if (elsewhere.references > 1) {  // other numbers of it (dup, or stdin and stdout of an exec'd program)
        for_each_program_number([&](int other) {
            if (other != fd && fd_table().socket(other) == &elsewhere) {
                fd_table().set_socket(other, &s);
                ++s.references;
            }
        });
    }
    refresh(s);
    after_call(lock);
    return fd;
}

}  // namespace ms::posix
