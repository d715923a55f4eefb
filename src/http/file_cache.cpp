#include "http/file_cache.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "http/session.hpp"

namespace ms::http {
namespace fs = std::filesystem;

namespace {

std::shared_ptr<std::uint8_t[]> from_heap(std::size_t bytes) {
    return std::shared_ptr<std::uint8_t[]>(new std::uint8_t[std::max<std::size_t>(bytes, 1)]);
}

// A file found under the root, before its bytes are read.
struct Found {
    fs::path path;
    std::string url;
    std::size_t size;
    std::int64_t mtime;
};

base::Result<std::vector<Found>, FileCacheFailure> list_files(const std::string& root) {
    std::error_code ec;
    if (!fs::is_directory(root, ec)) {
        return FileCacheFailure{FileCacheError::not_a_directory, "--root " + root + " is not a readable directory"};
    }
    std::vector<Found> found;
    for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
        struct stat st {};  // (std::chrono::clock_cast is missing from g++ 12)
        if (!it->is_regular_file(ec) || ::stat(it->path().c_str(), &st) != 0) continue;
        found.push_back({it->path(), "/" + fs::relative(it->path(), root, ec).generic_string(),
                         static_cast<std::size_t>(st.st_size), st.st_mtime});
    }
    if (ec) return FileCacheFailure{FileCacheError::unreadable, "reading " + root + ": " + ec.message()};
    return found;
}

// Reads every file into one block, each at most the size it had when listed (a file
// that grows meanwhile is served as it was); an unreadable file is not served.
base::Result<std::shared_ptr<const FileCache::Snapshot>, FileCacheFailure> load(const std::string& root,
                                                                                const FileCache::Allocator& allocate) {
    const auto listed = list_files(root);
    if (!listed) return listed.error();
    const std::vector<Found>& found = *listed;
    std::size_t total = 0;
    for (const Found& f : found) total += f.size;
    auto snap = std::make_shared<FileCache::Snapshot>();
    snap->block = allocate(total);
    std::uint8_t* at = snap->block.get();
    for (const Found& f : found) {
        std::ifstream in(f.path, std::ios::binary);
        if (!in) continue;
        in.read(reinterpret_cast<char*>(at), static_cast<std::streamsize>(f.size));
        const auto got = static_cast<std::size_t>(in.gcount());
        snap->files.emplace(
            f.url, File{{reinterpret_cast<const char*>(at), got}, std::string(content_type_for(f.url)), http_date(f.mtime)});
        snap->bytes += got;
        at += got;
    }
    return std::shared_ptr<const FileCache::Snapshot>(std::move(snap));
}

// The same files in a block from `allocate`.
std::shared_ptr<const FileCache::Snapshot> copy_into(const FileCache::Snapshot& old, const FileCache::Allocator& allocate) {
    auto snap = std::make_shared<FileCache::Snapshot>();
    snap->block = allocate(old.bytes);
    std::uint8_t* at = snap->block.get();
    for (const auto& [url, f] : old.files) {
        std::memcpy(at, f.content.data(), f.content.size());
        snap->files.emplace(url,
                            File{{reinterpret_cast<const char*>(at), f.content.size()}, f.content_type, f.last_modified});
        at += f.content.size();
    }
    snap->bytes = old.bytes;
    return snap;
}

}  // namespace

FileCache::FileCache(std::string root, std::shared_ptr<const Snapshot> first)
    : root_(std::move(root)), allocate_(from_heap), current_(std::move(first)) {}

base::Result<FileCache, FileCacheFailure> FileCache::open(std::string root) {
    auto first = load(root, from_heap);
    if (!first) return first.error();
    return FileCache(std::move(root), std::move(first.value()));
}

base::Result<base::Done, FileCacheFailure> FileCache::reload() {
    auto next = load(root_, allocate_);
    if (!next) return next.error();
    current_ = std::move(next.value());
    return base::Done{};
}

void FileCache::store_in(Allocator allocate) {
    if (!allocate) allocate = from_heap;
    current_ = copy_into(*current_, allocate);  // if it throws, nothing has changed
    allocate_ = std::move(allocate);
}

std::string_view content_type_for(std::string_view path) {
    static constexpr std::pair<std::string_view, std::string_view> types[] = {
        {".html", "text/html"},
        {".htm", "text/html"},
        {".txt", "text/plain"},
        {".css", "text/css"},
        {".js", "application/javascript"},
        {".json", "application/json"},
        {".png", "image/png"},
        {".jpg", "image/jpeg"},
        {".svg", "image/svg+xml"},
    };
    for (const auto& [ext, type] : types) {
        if (path.ends_with(ext)) return type;
    }
    return "application/octet-stream";
}

}  // namespace ms::http
