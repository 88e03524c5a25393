// AtomicFile: write a file so that readers see either the old file or the complete new one.
// Data goes to a temporary file beside the target; commit() flushes, fsyncs and renames it over
// the target. Destroyed without commit() (an exception, a crash), the temporary is removed and
// the old file is untouched: a half-written file never replaces a good one.
#pragma once

#include <cstddef>
#include <cstdio>
#include <string>

namespace gnet {

// Durable: fsync before the rename, so the new file survives a power cut too (checkpoints).
// Fast: rename only; still atomic for readers and against a killed process (bulk data files).
enum class Durability { Durable, Fast };

class AtomicFile {
  public:
    explicit AtomicFile(std::string path, Durability durability = Durability::Durable);
    ~AtomicFile();
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;

    void write(const void* data, size_t bytes);
    void write(const std::string& text) { write(text.data(), text.size()); }
    void commit();

  private:
    std::string path_;
    std::string tmp_path_;
    std::FILE* file_ = nullptr;
    Durability durability_;
};

// Convenience: the whole content at once.
void write_file_atomic(const std::string& path, const std::string& content,
                       Durability durability = Durability::Durable);

// Reads a whole file; an Error naming the file when it cannot be opened or read.
std::string read_file(const std::string& path);

}  // namespace gnet

namespace gnet {

// An exclusive lock on a folder for the whole of a run (flock on DIR/.gnet.lock, released when
// the process ends, however it ends): two `gnet prepare` or `gnet train` runs into one folder
// cannot interleave their files. A second run gets an Error naming the folder, what holds it
// and that process's id.
class DirectoryLock {
  public:
    DirectoryLock(const std::string& dir, const std::string& what);
    ~DirectoryLock();
    DirectoryLock(const DirectoryLock&) = delete;
    DirectoryLock& operator=(const DirectoryLock&) = delete;

  private:
    int fd_ = -1;
};

// Removes `*.tmp.<pid>` files (AtomicFile temporaries) in `dir` whose process no longer runs:
// what a killed write leaves behind. Returns how many were removed.
int remove_stale_temporaries(const std::string& dir);

// rename(2) with an Error naming both files on failure.
void rename_file(const std::string& from, const std::string& to);

// Creates `path`'s parent folders; an Error naming the folder on failure.
void create_folders(const std::string& path);

}  // namespace gnet
