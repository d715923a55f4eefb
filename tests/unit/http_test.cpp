// The HTTP/1.1 core of ms-httpd (src/http), with no transport: requests in, bytes out.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <vector>

#include "http/session.hpp"

namespace ms::http {
namespace {

namespace fs = std::filesystem;

class HttpSession : public ::testing::Test {
protected:
    void SetUp() override {
        root_ = fs::temp_directory_path() / ("ms-http-test-" + std::to_string(::getpid()));
        fs::create_directories(root_ / "sub");
        write("index.html", "<h1>hello</h1>\n");
        write("sub/data.bin", std::string(4096, 'x'));
        files_ = std::make_unique<FileCache>(FileCache::open(root_.string()).value());
    }
    void TearDown() override { fs::remove_all(root_); }
    void write(const std::string& name, const std::string& content) { std::ofstream(root_ / name) << content; }

    // Everything the session would send, drained in pieces of `chunk` bytes.
    static std::string drain(Session& s, std::size_t chunk = 1 << 20) {
        std::string out;
        while (s.has_output()) {
            const std::string_view p = s.pending().substr(0, chunk);
            out += p;
            s.consumed(p.size());
        }
        return out;
    }
    static int count(const std::string& hay, const std::string& needle) {
        int n = 0;
        for (std::size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) ++n;
        return n;
    }

    fs::path root_;
    std::unique_ptr<FileCache> files_;
};

TEST_F(HttpSession, GetServesTheFileByteExactWithNginxLikeHeaders) {
    Session s(*files_, {}, 1000);
    EXPECT_TRUE(s.feed("GET /sub/data.bin HTTP/1.1\r\nHost: a\r\n\r\n", 1000));
    const std::string out = drain(s, 1000);
    EXPECT_TRUE(out.starts_with("HTTP/1.1 200 OK\r\nServer: ms-httpd\r\nDate: ")) << out.substr(0, 200);
    EXPECT_NE(out.find("\r\nContent-Length: 4096\r\n"), std::string::npos);
    EXPECT_NE(out.find("\r\nConnection: keep-alive\r\n"), std::string::npos);
    EXPECT_TRUE(out.ends_with("\r\n\r\n" + std::string(4096, 'x')));
    EXPECT_FALSE(s.done());
}

TEST_F(HttpSession, RootIsIndexHtmlAndQueryIsIgnored) {
    Session s(*files_, {}, 1000);
    s.feed("GET /?x=1 HTTP/1.1\r\nHost: a\r\n\r\n", 1000);
    EXPECT_TRUE(drain(s).ends_with("<h1>hello</h1>\n"));
}

TEST_F(HttpSession, HeadSendsHeadersWithTheLengthButNoBody) {
    Session s(*files_, {}, 1000);
    s.feed("HEAD /sub/data.bin HTTP/1.1\r\nHost: a\r\n\r\n", 1000);
    const std::string out = drain(s);
    EXPECT_NE(out.find("Content-Length: 4096"), std::string::npos);
    EXPECT_TRUE(out.ends_with("\r\n\r\n"));
}

TEST_F(HttpSession, PipelinedRequestsAreAnsweredInOrder) {
    Session s(*files_, {}, 1000);
    s.feed("GET /index.html HTTP/1.1\r\nHost: a\r\n\r\nGET /nope HTTP/1.1\r\nHost: a\r\n\r\n"
           "HEAD /index.html HTTP/1.1\r\nHost: a\r\n\r\n",
           1000);
    const std::string out = drain(s);
    const auto a = out.find("200 OK"), b = out.find("404 Not Found"), c = out.rfind("200 OK");
    EXPECT_LT(a, b);
    EXPECT_LT(b, c);
    EXPECT_EQ(s.requests(), 3u);
}

TEST_F(HttpSession, RequestSplitByteByByteIsParsed) {
    Session s(*files_, {}, 1000);
    const std::string req = "GET /index.html HTTP/1.1\r\nHost: a\r\nUser-Agent: t\r\n\r\n";
    for (char ch : req) s.feed(std::string_view(&ch, 1), 1000);
    EXPECT_EQ(count(drain(s), "200 OK"), 1);
}

TEST_F(HttpSession, ConnectionCloseAnswersThenCloses) {
    Session s(*files_, {}, 1000);
    EXPECT_FALSE(s.feed("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n\r\n", 1000));
    const std::string out = drain(s);
    EXPECT_EQ(count(out, "HTTP/1.1 200"), 1) << "nothing after Connection: close is answered";
    EXPECT_NE(out.find("Connection: close"), std::string::npos);
    EXPECT_TRUE(s.done());
}

TEST_F(HttpSession, Http10ClosesUnlessKeepAlive) {
    Session a(*files_, {}, 1000);
    EXPECT_FALSE(a.feed("GET / HTTP/1.0\r\n\r\n", 1000));
    Session b(*files_, {}, 1000);
    EXPECT_TRUE(b.feed("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 1000));
}

struct BadRequest {
    std::string request;
    int status;
};

class HttpErrors : public HttpSession, public ::testing::WithParamInterface<BadRequest> {};

TEST_P(HttpErrors, AnswerWithTheStatusAndClose) {
    Session s(*files_, {}, 1000);
    EXPECT_FALSE(s.feed(GetParam().request, 1000));
    const std::string out = drain(s);
    EXPECT_TRUE(out.starts_with("HTTP/1.1 " + std::to_string(GetParam().status) + " ")) << out.substr(0, 80);
    EXPECT_NE(out.find("Connection: close"), std::string::npos);
    EXPECT_TRUE(s.done());
}

INSTANTIATE_TEST_SUITE_P(
    Requests, HttpErrors,
    ::testing::Values(BadRequest{"GARBAGE\r\n\r\n", 400}, BadRequest{"GET /\r\n\r\n", 400},
                      BadRequest{"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 400},
                      BadRequest{"GET relative HTTP/1.1\r\nHost: a\r\n\r\n", 400},
                      BadRequest{"GET / HTTP/1.1\r\n\r\n", 400},  // HTTP/1.1 without Host
                      BadRequest{"GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n", 400},
                      BadRequest{"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n", 400},
                      BadRequest{"GET /missing HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 404},
                      BadRequest{"POST / HTTP/1.1\r\nHost: a\r\n\r\n", 405},
                      BadRequest{"BREW / HTTP/1.1\r\nHost: a\r\n\r\n", 405},
                      BadRequest{"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", 413},
                      BadRequest{"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", 413},
                      BadRequest{"GET /" + std::string(kMaxRequestLine, 'a') + " HTTP/1.1\r\n\r\n", 414},
                      BadRequest{"GET /" + std::string(kMaxRequestLine, 'a'), 414},
                      BadRequest{"GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(kMaxHeaderBlock, 'b') + "\r\n\r\n", 431},
                      BadRequest{"GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(kMaxHeaderBlock, 'b'), 431}));

TEST_F(HttpSession, DeadlinesCutIdleAndSlowHeaders) {
    Session s(*files_, {.idle_ms = 5000, .header_ms = 1000}, 1000);
    EXPECT_EQ(s.deadline_ms(), 6000u) << "idle";
    s.feed("GET / HT", 2000);
    EXPECT_EQ(s.deadline_ms(), 3000u) << "a request in progress must complete within the header timeout";
    s.feed("TP/1.1\r\nHost: a\r\n\r\n", 2500);
    EXPECT_EQ(s.deadline_ms(), 7500u);
}

TEST_F(HttpSession, ReloadServesNewFilesAndQueuedResponsesKeepTheOld) {
    Session s(*files_, {}, 1000);
    s.feed("GET /index.html HTTP/1.1\r\nHost: a\r\n\r\n", 1000);
    write("index.html", "<h1>new</h1>\n");
    EXPECT_TRUE(files_->reload());
    EXPECT_TRUE(drain(s).ends_with("<h1>hello</h1>\n")) << "the queued body stays valid";
    s.feed("GET /index.html HTTP/1.1\r\nHost: a\r\n\r\n", 1000);
    EXPECT_TRUE(drain(s).ends_with("<h1>new</h1>\n"));
}

// The UTCP transport sends file bodies by reference: pending_pin() names the snapshot
// exactly while the pending bytes are a cached body, never for headers or error pages.
TEST_F(HttpSession, OnlyCachedBodiesArePinnedForSendingByReference) {
    Session s(*files_, {}, 1000);
    s.feed("GET /sub/data.bin HTTP/1.1\r\nHost: a\r\n\r\nGET /missing HTTP/1.1\r\nHost: a\r\n\r\n", 1000);
    EXPECT_EQ(s.pending_pin(), nullptr) << "the header block is the session's own";
    s.consumed(s.pending().size());
    ASSERT_NE(s.pending_pin(), nullptr);
    EXPECT_EQ(s.pending().size(), 4096u);
    EXPECT_EQ(s.pending().data(), files_->snapshot()->files.at("/sub/data.bin").content.data());
    s.consumed(4096);
    EXPECT_EQ(s.pending_pin(), nullptr) << "a 404 page is copied, not pinned";
}

// store_in() moves the contents into another allocator's memory; what is served stays
// the same, sessions that hold the old snapshot keep it, and reloads use the allocator.
TEST_F(HttpSession, StoreInMovesTheContentsAndReloadsFollow) {
    std::vector<std::size_t> asked;
    auto old = files_->snapshot();
    files_->store_in([&](std::size_t bytes) {
        asked.push_back(bytes);
        return std::shared_ptr<std::uint8_t[]>(new std::uint8_t[bytes + 1]);
    });
    ASSERT_EQ(asked.size(), 1u);
    EXPECT_EQ(asked[0], 4096u + 15u);
    const auto now = files_->snapshot();
    EXPECT_NE(now->block.get(), old->block.get());
    EXPECT_EQ(now->files.at("/index.html").content, "<h1>hello</h1>\n");
    EXPECT_EQ(old->files.at("/index.html").content, "<h1>hello</h1>\n");
    write("index.html", "<h1>new</h1>\n");
    EXPECT_TRUE(files_->reload());
    EXPECT_EQ(asked.size(), 2u);
    Session s(*files_, {}, 1000);
    s.feed("GET / HTTP/1.1\r\nHost: a\r\n\r\n", 1000);
    EXPECT_TRUE(drain(s).ends_with("<h1>new</h1>\n"));
    files_->store_in(nullptr);  // back to the heap
    EXPECT_EQ(asked.size(), 2u);
    EXPECT_EQ(files_->snapshot()->files.at("/index.html").content, "<h1>new</h1>\n");
}

TEST(FileCache, MissingRootIsAClearError) {
    const auto opened = FileCache::open("/nonexistent/ms-httpd-root");
    ASSERT_FALSE(opened);
    EXPECT_EQ(opened.error().error, FileCacheError::not_a_directory);
    EXPECT_EQ(opened.error().detail, "--root /nonexistent/ms-httpd-root is not a readable directory");
}

}  // namespace
}  // namespace ms::http
