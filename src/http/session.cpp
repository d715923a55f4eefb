#include "http/session.hpp"

#include <algorithm>
#include <charconv>
#include <ctime>

namespace ms::http {
namespace {

std::string_view reason(int status) {
    switch (status) {
        case 200: return "OK";
        case 400: return "Bad Request";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 413: return "Content Too Large";
        case 414: return "URI Too Long";
        case 431: return "Request Header Fields Too Large";
        default: return "Error";
    }
}

// RFC 9110 §5.6.2: tchar.
bool is_token(std::string_view s) {
    if (s.empty()) return false;
    return std::all_of(s.begin(), s.end(), [](unsigned char c) {
        return std::isalnum(c) || std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
    });
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return std::tolower(x) == std::tolower(y); });
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
}

// The end of the line starting at `from` (the index of its '\n'), or npos.
std::size_t line_end(std::string_view s, std::size_t from) { return s.find('\n', from); }

std::string_view line_at(std::string_view s, std::size_t from, std::size_t end) {
    std::string_view line = s.substr(from, end - from);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return line;
}

// The Date header's value, formatted once per second.
const std::string& date_now() {
    static std::int64_t cached_second = -1;
    static std::string cached;
    const std::int64_t now = std::time(nullptr);
    if (now != cached_second) {
        cached_second = now;
        cached = http_date(now);
    }
    return cached;
}

struct RequestHead {
    std::string_view method, target, version;
    bool keep_alive = true;
    bool has_host = false;
    int status = 0;  // non-zero: the error to answer
};

void parse_header(std::string_view line, RequestHead& r) {
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || !is_token(line.substr(0, colon))) {
        r.status = 400;  // RFC 9112 §5.1: no whitespace before the colon
        return;
    }
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = trim(line.substr(colon + 1));
    if (iequals(name, "host")) r.has_host = true;
    if (iequals(name, "connection")) {
        if (iequals(value, "close")) r.keep_alive = false;
        if (iequals(value, "keep-alive")) r.keep_alive = true;
    }
    if (iequals(name, "transfer-encoding")) r.status = 413;  // no request bodies here
    if (iequals(name, "content-length")) {
        std::uint64_t n = 0;
        const auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
        if (ec != std::errc() || p != value.data() + value.size()) {
            r.status = 400;
        } else if (n > 0) {
            r.status = 413;
        }
    }
}

// RFC 9112 §3: method SP request-target SP HTTP-version.
void parse_request_line(std::string_view line, RequestHead& r) {
    const std::size_t a = line.find(' ');
    const std::size_t b = a == std::string_view::npos ? a : line.find(' ', a + 1);
    if (b == std::string_view::npos || line.find(' ', b + 1) != std::string_view::npos) {
        r.status = 400;
        return;
    }
    r.method = line.substr(0, a);
    r.target = line.substr(a + 1, b - a - 1);
    r.version = line.substr(b + 1);
    if (!is_token(r.method) || r.target.empty() || r.target.front() != '/') r.status = 400;
    if (r.version == "HTTP/1.0") {
        r.keep_alive = false;
    } else if (r.version != "HTTP/1.1") {
        r.status = 400;
    }
}

}  // namespace

std::string http_date(std::int64_t unix_seconds) {
    const std::time_t t = unix_seconds;
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    char buf[64];
    const std::size_t n = std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    return {buf, n};
}

Session::Session(const FileCache& files, Timeouts timeouts, std::uint64_t now_ms)
    : files_(files), timeouts_(timeouts), last_activity_ms_(now_ms) {}

bool Session::feed(std::string_view bytes, std::uint64_t now_ms) {
    last_activity_ms_ = now_ms;
    if (closing_) return false;  // after an error or Connection: close, the rest is ignored
    if (!bytes.empty() && in_.empty()) request_started_ms_ = now_ms;
    in_.append(bytes);
    while (!closing_ && parse_one(now_ms)) {
    }
    return !closing_;
}

// Parses and answers one complete request from in_; false when more bytes are needed
// (or the session is closing).
bool Session::parse_one(std::uint64_t now_ms) {
    const std::string_view s = in_;
    const std::size_t first = line_end(s, 0);
    if (first == std::string_view::npos) {
        if (s.size() > kMaxRequestLine) error(414);
        return false;
    }
    if (first > kMaxRequestLine) {
        error(414);
        return false;
    }
    RequestHead r;
    parse_request_line(line_at(s, 0, first), r);
    std::size_t at = first + 1;
    for (;;) {
        const std::size_t end = line_end(s, at);
        if (end == std::string_view::npos || end - first > kMaxHeaderBlock) {
            if (s.size() - first > kMaxHeaderBlock) error(431);
            return false;
        }
        const std::string_view line = line_at(s, at, end);
        at = end + 1;
        if (line.empty()) break;
        if (r.status == 0) parse_header(line, r);
    }
    if (r.status == 0 && r.version == "HTTP/1.1" && !r.has_host) r.status = 400;  // RFC 9112 §3.2
    ++requests_;
    if (r.status != 0) {
        error(r.status);
    } else if (r.method != "GET" && r.method != "HEAD") {
        error(405);
    } else {
        respond(r.method, r.target, r.keep_alive);
    }
    in_.erase(0, at);
    request_started_ms_ = in_.empty() ? 0 : now_ms;
    return true;
}

void Session::respond(std::string_view method, std::string_view target, bool keep_alive) {
    std::string path(target.substr(0, target.find('?')));
    if (path.back() == '/') path += "index.html";
    auto snap = files_.snapshot();
    const auto it = snap->files.find(path);
    if (!keep_alive) {
        close_after_ = true;
        closing_ = true;
    }
    if (it == snap->files.end()) {
        queue(404, "text/html", "<html><body><h1>404 Not Found</h1></body></html>\n", method == "HEAD", nullptr, nullptr);
        return;
    }
    const File& f = it->second;
    queue(200, f.content_type, f.content, method == "HEAD", std::move(snap), &f);
}

void Session::error(int status) {
    closing_ = true;
    close_after_ = true;
    in_.clear();
    std::string body = "<html><body><h1>" + std::to_string(status) + " " + std::string(reason(status)) +
                       "</h1></body></html>\n";
    queue(status, "text/html", body, false, nullptr, nullptr);
}

void Session::queue(int status, std::string_view content_type, std::string_view body, bool head_only,
                    std::shared_ptr<const FileCache::Snapshot> pin, const File* file) {
    const std::size_t length = body.size();
    std::string head;
    head.reserve(256);
    head += "HTTP/1.1 ";
    head += std::to_string(status);
    head += ' ';
    head += reason(status);
    head += "\r\nServer: ms-httpd\r\nDate: ";
    head += date_now();
    head += "\r\nContent-Type: ";
    head += content_type;
    head += "\r\nContent-Length: ";
    head += std::to_string(length);
    if (file) {
        head += "\r\nLast-Modified: ";
        head += file->last_modified;
    }
    if (status == 405) head += "\r\nAllow: GET, HEAD";
    head += close_after_ ? "\r\nConnection: close\r\n\r\n" : "\r\nConnection: keep-alive\r\n\r\n";
    Chunk c{std::move(head), head_only ? std::string_view{} : body, std::move(pin)};
    if (!c.pin && !head_only) {  // a body that is not in the cache is copied into the head
        c.head += body;
        c.body = {};
    }
    out_.push_back(std::move(c));
}

std::string_view Session::pending() const {
    if (out_.empty()) return {};
    const Chunk& c = out_.front();
    if (sent_in_front_ < c.head.size()) return std::string_view(c.head).substr(sent_in_front_);
    return c.body.substr(sent_in_front_ - c.head.size());
}

const std::shared_ptr<const FileCache::Snapshot>* Session::pending_pin() const {
    if (out_.empty()) return nullptr;
    const Chunk& c = out_.front();
    return c.pin && sent_in_front_ >= c.head.size() ? &c.pin : nullptr;
}

void Session::consumed(std::size_t n) {
    sent_in_front_ += n;
    while (!out_.empty() && sent_in_front_ >= out_.front().head.size() + out_.front().body.size()) {
        sent_in_front_ -= out_.front().head.size() + out_.front().body.size();
        out_.pop_front();
    }
}

std::uint64_t Session::deadline_ms() const {
    if (request_started_ms_ != 0) return request_started_ms_ + timeouts_.header_ms;
    return last_activity_ms_ + timeouts_.idle_ms;
}

}  // namespace ms::http
