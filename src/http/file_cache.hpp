// Contract: the files ms-httpd serves, loaded into memory at start (as in the paper) and
// again on reload() (SIGHUP). A Snapshot is immutable; reload() publishes a new one and
// sessions (and UTCP connections sending its bytes by reference) that still use the old
// one keep it alive through their shared_ptr. A snapshot's contents lie in one block from
// the cache's allocator: the heap, or (ms-httpd on UTCP) the port's data area, from which
// responses leave by reference with no copy in user space.
// Only regular files under the root are served; paths are looked up exactly ("/" maps
// to /index.html), so ".." and other escapes simply are not found.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/result.hpp"

namespace ms::http {

struct File {
    std::string_view content;  // in its snapshot's block
    std::string content_type;
    std::string last_modified;  // HTTP date
};

enum class FileCacheError : std::uint8_t {
    not_a_directory,  // the root is missing, or not a readable directory
    unreadable,       // walking the tree failed part-way
};

// The cause, and the message a user sees (it names the root).
struct FileCacheFailure {
    FileCacheError error;
    std::string detail;
};

class FileCache {
public:
    struct Snapshot {
        std::unordered_map<std::string, File> files;  // by URL path, "/a/b.html"
        std::size_t bytes = 0;
        std::shared_ptr<std::uint8_t[]> block;  // every file's content
    };
    // Memory for a snapshot's contents (uninitialised).
    using Allocator = std::function<std::shared_ptr<std::uint8_t[]>(std::size_t bytes)>;

    // Loads every regular file under `root` into heap memory; fails if `root` is not a
    // readable directory.
    [[nodiscard]] static base::Result<FileCache, FileCacheFailure> open(std::string root);
    // Loads again; on failure keeps the old snapshot.
    [[nodiscard]] base::Result<base::Done, FileCacheFailure> reload();
    // Moves the current contents into memory from `allocate` (no disk read); later
    // reloads use it too. Null: back to the heap.
    void store_in(Allocator allocate);

    // Single-threaded: the server reloads from its own loop when SIGHUP has been seen.
    [[nodiscard]] std::shared_ptr<const Snapshot> snapshot() const { return current_; }
    [[nodiscard]] const std::string& root() const { return root_; }

private:
    FileCache(std::string root, std::shared_ptr<const Snapshot> first);

    std::string root_;
    Allocator allocate_;
    std::shared_ptr<const Snapshot> current_;
};

[[nodiscard]] std::string_view content_type_for(std::string_view path);

}  // namespace ms::http
