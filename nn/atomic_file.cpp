#include "nn/atomic_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
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
