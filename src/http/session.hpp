// Contract: the HTTP/1.1 server core of ms-httpd, independent of the transport (UTCP or
// kernel sockets). A Session is one connection: feed() takes received bytes (in any
// split, pipelined requests included) and queues responses, in request order; the
// transport drains them with pending() / consumed(). GET and HEAD are served from a
// FileCache; anything else gets its status: 400 malformed, 404 not found, 405 other
// methods, 413 a request body, 414 a request line over kMaxRequestLine, 431 a header
// block over kMaxHeaderBlock. After an error, or a request with Connection: close (or
// HTTP/1.0 without keep-alive), the session answers, then wants to close. Timeouts
// (idle, and a header that takes too long: slowloris) are the transport's to enforce
// with wants_close_at().
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>

#include "http/file_cache.hpp"

namespace ms::http {

inline constexpr std::size_t kMaxRequestLine = 8192;
inline constexpr std::size_t kMaxHeaderBlock = 16384;

struct Timeouts {
    std::uint64_t idle_ms = 60'000;    // no request in progress and nothing received
    std::uint64_t header_ms = 10'000;  // from a request's first byte to its blank line
};

// One queued response: a header block and an optional body that points into the cache
// (the snapshot keeps it alive while queued).
struct Chunk {
    std::string head;
    std::string_view body;
    std::shared_ptr<const FileCache::Snapshot> pin;
};

class Session {
public:
    Session(const FileCache& files, Timeouts timeouts, std::uint64_t now_ms);

    // Takes received bytes; returns false once the session wants to close.
    bool feed(std::string_view bytes, std::uint64_t now_ms);
    // The peer finished sending (FIN): answer what is complete, then close.
    void peer_closed() { close_after_ = true; }

    // Bytes to send next: the front chunk's unsent part (head first, then body).
    [[nodiscard]] std::string_view pending() const;
    // The snapshot that holds the pending() bytes when they lie in the file cache (the
    // transport may then send them by reference, pinning it); null otherwise.
    [[nodiscard]] const std::shared_ptr<const FileCache::Snapshot>* pending_pin() const;
    void consumed(std::size_t n);
    // The transport made progress sending: the connection is not idle.
    void touch(std::uint64_t now_ms) { last_activity_ms_ = now_ms; }
    [[nodiscard]] bool has_output() const { return !out_.empty(); }
    // True when all output is sent and the connection should close.
    [[nodiscard]] bool done() const { return out_.empty() && close_after_; }
    // When the connection must be cut if nothing changes (idle or header timeout).
    [[nodiscard]] std::uint64_t deadline_ms() const;
    [[nodiscard]] std::uint64_t requests() const { return requests_; }

private:
    bool parse_one(std::uint64_t now_ms);
    void respond(std::string_view method, std::string_view target, bool keep_alive);
    void error(int status);
    // `file` is the cached file served (null for error pages, whose body is copied).
    void queue(int status, std::string_view content_type, std::string_view body, bool head_only,
               std::shared_ptr<const FileCache::Snapshot> pin, const File* file);

    const FileCache& files_;
    Timeouts timeouts_;
    std::string in_;                 // received, not yet parsed
    std::deque<Chunk> out_;
    std::size_t sent_in_front_ = 0;  // bytes of out_.front() already sent
    bool close_after_ = false;       // close once out_ drains
    bool closing_ = false;           // an error or Connection: close: ignore what follows
    std::uint64_t last_activity_ms_;
    std::uint64_t request_started_ms_ = 0;  // first byte of the request in progress, or 0
    std::uint64_t requests_ = 0;
};

// "Thu, 26 Nov 2026 07:00:00 GMT" for `unix_seconds`, as the Date header wants it.
[[nodiscard]] std::string http_date(std::int64_t unix_seconds);

}  // namespace ms::http
