#include "http/file_cache.hpp"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "http/session.hpp"

namespace ms::http {
namespace fs = std::filesystem;

namespace {

std::shared_ptr<const FileCache::Snapshot> load(const std::string& root) {
    std::error_code ec;
    if (!fs::is_directory(root, ec)) throw std::runtime_error("--root " + root + " is not a readable directory");
    auto snap = std::make_shared<FileCache::Snapshot>();
    for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
        if (!it->is_regular_file(ec)) continue;
        std::ifstream in(it->path(), std::ios::binary);
        if (!in) continue;  // unreadable: not served
        std::ostringstream body;
        body << in.rdbuf();
        const std::string url = "/" + fs::relative(it->path(), root, ec).generic_string();
        struct stat st {};
        ::stat(it->path().c_str(), &st);  // (std::chrono::clock_cast is missing from g++ 12)
        File f{body.str(), std::string(content_type_for(url)), http_date(st.st_mtime)};
        snap->bytes += f.content.size();
        snap->files.emplace(url, std::move(f));
    }
    if (ec) throw std::runtime_error("reading " + root + ": " + ec.message());
    return snap;
}

}  // namespace

FileCache::FileCache(std::string root) : root_(std::move(root)), current_(load(root_)) {}

std::string FileCache::reload() {
    try {
        current_ = load(root_);
        return {};
    } catch (const std::exception& e) {
        return e.what();
    }
}

std::string_view content_type_for(std::string_view path) {
    static constexpr std::pair<std::string_view, std::string_view> types[] = {
        {".html", "text/html"}, {".htm", "text/html"},        {".txt", "text/plain"},
        {".css", "text/css"},   {".js", "application/javascript"}, {".json", "application/json"},
        {".png", "image/png"},  {".jpg", "image/jpeg"},        {".svg", "image/svg+xml"},
    };
    for (const auto& [ext, type] : types) {
        if (path.ends_with(ext)) return type;
    }
    return "application/octet-stream";
}

}  // namespace ms::http
