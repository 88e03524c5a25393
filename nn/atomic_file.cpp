#include "nn/atomic_file.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "kernels/error.h"

namespace gnet {

namespace {
std::string errno_text() {
    return std::strerror(errno);
}
}  // namespace

AtomicFile::AtomicFile(std::string path, Durability durability)
    : path_(std::move(path)), durability_(durability) {
    tmp_path_ = path_ + ".tmp." + std::to_string(::getpid());
    file_ = std::fopen(tmp_path_.c_str(), "wb");
    if (!file_) throw Error(path_ + ": cannot create file: " + errno_text());
}

AtomicFile::~AtomicFile() {
    if (file_) {
        std::fclose(file_);
        std::remove(tmp_path_.c_str());
    }
}

void AtomicFile::write(const void* data, size_t bytes) {
    GNET_CHECK(file_ != nullptr, path_ + ": write after commit");
    if (bytes && std::fwrite(data, 1, bytes, file_) != bytes)
        throw Error(path_ + ": write failed: " + errno_text());
}

void AtomicFile::commit() {
    GNET_CHECK(file_ != nullptr, path_ + ": committed twice");
    bool ok = std::fflush(file_) == 0 &&
              (durability_ == Durability::Fast || ::fsync(::fileno(file_)) == 0);
    int err = errno;
    ok = (std::fclose(file_) == 0) && ok;
    file_ = nullptr;
    if (!ok || std::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
        if (ok) err = errno;
        std::remove(tmp_path_.c_str());
        throw Error(path_ + ": cannot write file: " + std::strerror(err));
    }
}

void write_file_atomic(const std::string& path, const std::string& content, Durability durability) {
    AtomicFile f(path, durability);
    f.write(content);
    f.commit();
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path + ": cannot open file: " + errno_text());
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) throw Error(path + ": read failed");
    return ss.str();
}

}  // namespace gnet

namespace gnet {

DirectoryLock::DirectoryLock(const std::string& dir, const std::string& what) {
    const std::string path = dir + "/.gnet.lock";
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw Error(dir + ": cannot create the lock file .gnet.lock: " + errno_text());
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
        const int err = errno;
        char buf[256] = {0};
        const ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
        std::string holder = n > 0 ? std::string(buf, size_t(n)) : std::string("another process");
        while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' '))
            holder.pop_back();
        ::close(fd_);
        fd_ = -1;
        if (err == EWOULDBLOCK)
            throw Error(dir + ": in use by " + holder +
                        "; wait for it to finish (or stop it) before writing to this folder");
        throw Error(dir + ": cannot lock: " + std::strerror(err));
    }
    const std::string me = what + " (pid " + std::to_string(::getpid()) + ")\n";
    if (::ftruncate(fd_, 0) == 0 && ::pwrite(fd_, me.data(), me.size(), 0) < 0) {
        // The holder's name is only for messages; a failed write changes nothing else.
    }
}

DirectoryLock::~DirectoryLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the flock
}

int remove_stale_temporaries(const std::string& dir) {
    namespace fs = std::filesystem;
    std::error_code ec;
    int removed = 0;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        const size_t at = name.rfind(".tmp.");
        if (at == std::string::npos) continue;
        const std::string pid_text = name.substr(at + 5);
        if (pid_text.empty() || pid_text.find_first_not_of("0123456789") != std::string::npos ||
            pid_text.size() > 9)
            continue;
        const pid_t pid = pid_t(std::stol(pid_text));
        if (pid == ::getpid() || ::kill(pid, 0) == 0 || errno != ESRCH) continue;
        std::error_code rm;
        if (fs::remove_all(it->path(), rm) > 0 && !rm) ++removed;
    }
    return removed;
}

void rename_file(const std::string& from, const std::string& to) {
    if (std::rename(from.c_str(), to.c_str()) != 0)
        throw Error(to + ": cannot move " + from + " into place: " + errno_text());
}

void create_folders(const std::string& path) {
    std::error_code ec;
    std::filesystem::create_directories(path, ec);
    if (ec) throw Error(path + ": cannot create folder: " + ec.message());
}

}  // namespace gnet
