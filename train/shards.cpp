#include "train/shards.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "audio/spectrogram.h"
#include "kernels/error.h"
#include "train/dataset.h"

namespace gnet {

const char* shard_dtype_name(ShardDtype d) {
    return d == ShardDtype::F16 ? "float16" : "float32";
}

ShardDtype parse_shard_dtype(const std::string& text) {
    if (text == "float32") return ShardDtype::F32;
    if (text == "float16") return ShardDtype::F16;
    throw UsageError("unknown shard dtype '" + text + "' (expected float32 or float16)");
}

int shard_dtype_bytes(ShardDtype d) {
    return d == ShardDtype::F16 ? 2 : 4;
}

uint16_t float_to_half(float f) {
    uint32_t x;
    std::memcpy(&x, &f, 4);
    const uint16_t sign = uint16_t((x >> 16) & 0x8000u);
    uint32_t mant = x & 0x7fffffu;
    const int32_t exp = int32_t((x >> 23) & 0xffu);
    if (exp == 0xff) return uint16_t(sign | 0x7c00u | (mant ? 0x200u : 0u));  // inf, NaN
    const int32_t e = exp - 127 + 15;
    if (e >= 31) return uint16_t(sign | 0x7c00u);  // overflow: infinity
    if (e <= 0) {                                  // a half subnormal, or zero
        if (e < -10) return sign;
        mant |= 0x800000u;
        const int shift = 14 - e;
        uint32_t h = mant >> shift;
        const uint32_t rem = mant & ((1u << shift) - 1u), halfway = 1u << (shift - 1);
        if (rem > halfway || (rem == halfway && (h & 1u))) ++h;
        return uint16_t(sign | h);
    }
    uint32_t h = (uint32_t(e) << 10) | (mant >> 13);
    const uint32_t rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // a carry rounds up the exponent
    return uint16_t(sign | h);
}

float half_to_float(uint16_t h) {
    const uint32_t sign = uint32_t(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    uint32_t x;
    if (exp == 0) {
        if (mant == 0) {
            x = sign;
        } else {  // subnormal: normalise
            int e = -1;
            do {
                ++e;
                mant <<= 1;
            } while (!(mant & 0x400u));
            x = sign | (uint32_t(127 - 15 - e) << 23) | ((mant & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        x = sign | 0x7f800000u | (mant << 13);
    } else {
        x = sign | ((exp + 112u) << 23) | (mant << 13);
    }
    float f;
    std::memcpy(&f, &x, 4);
    return f;
}

uint32_t crc32_bytes(const void* data, size_t n) {
    uLong crc = crc32(0L, Z_NULL, 0);
    const Bytef* p = static_cast<const Bytef*>(data);
    while (n > 0) {  // zlib takes 32-bit lengths
        const uInt step = uInt(std::min<size_t>(n, size_t(1) << 30));
        crc = crc32(crc, p, step);
        p += step;
        n -= step;
    }
    return uint32_t(crc);
}

std::string shard_header(ShardDtype dtype, int64_t frames) {
    GNET_CHECK(frames >= 0 && frames < int64_t(1e15), "shard frame count out of range");
    std::string dict = std::string("{'descr': '") + (dtype == ShardDtype::F16 ? "<f2" : "<f4") +
                       "', 'fortran_order': False, 'shape': (" + std::to_string(frames) + ", " +
                       std::to_string(kShardBands) + "), }";
    const size_t prefix = 10;  // magic (6), version (2), header length (2)
    dict.resize(size_t(kShardHeaderBytes) - prefix - 1, ' ');
    dict += '\n';
    std::string h = "\x93NUMPY";
    h += char(1);
    h += char(0);
    const uint16_t len = uint16_t(dict.size());
    h += char(len & 0xff);
    h += char(len >> 8);
    return h + dict;
}

namespace {

std::string sys_error() {
    return std::strerror(errno);
}

// Reads exactly n bytes at offset; false on a short read (end of file), Error on an I/O error.
bool pread_all(int fd, void* buf, size_t n, int64_t offset, const std::string& path) {
    char* p = static_cast<char*>(buf);
    while (n > 0) {
        ssize_t r = ::pread(fd, p, n, off_t(offset));
        if (r < 0) {
            if (errno == EINTR) continue;
            throw Error(path + ": read failed: " + sys_error());
        }
        if (r == 0) return false;
        p += r;
        n -= size_t(r);
        offset += r;
    }
    return true;
}

void write_all(int fd, const void* buf, size_t n, const std::string& path) {
    const char* p = static_cast<const char*>(buf);
    while (n > 0) {
        ssize_t w = ::write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            throw Error(path + ": write failed: " + sys_error());
        }
        p += w;
        n -= size_t(w);
    }
}

struct Fd {
    int fd = -1;
    ~Fd() {
        if (fd >= 0) ::close(fd);
    }
};

}  // namespace

ShardHeader read_shard_header(const std::string& path) {
    Fd f;
    f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (f.fd < 0) throw Error(path + ": cannot open shard: " + sys_error());
    std::string h(size_t(kShardHeaderBytes), '\0');
    const std::string bad = path + ": not a gnet shard (";
    if (!pread_all(f.fd, h.data(), h.size(), 0, path))
        throw Error(bad + "shorter than its " + std::to_string(kShardHeaderBytes) +
                    "-byte header; truncated?)");
    if (h.compare(0, 6, "\x93NUMPY") != 0 || h[6] != 1 || h[7] != 0)
        throw Error(bad + "no .npy 1.0 magic)");
    const size_t len = size_t(uint8_t(h[8])) | size_t(uint8_t(h[9])) << 8;
    if (len + 10 != size_t(kShardHeaderBytes) || h.back() != '\n')
        throw Error(bad + "header length " + std::to_string(len) + ")");
    ShardHeader out;
    if (h.find("'descr': '<f2'") != std::string::npos)
        out.dtype = ShardDtype::F16;
    else if (h.find("'descr': '<f4'") != std::string::npos)
        out.dtype = ShardDtype::F32;
    else
        throw Error(bad + "dtype is not <f2 or <f4)");
    if (h.find("'fortran_order': False") == std::string::npos) throw Error(bad + "not C order)");
    const size_t s = h.find("'shape': (");
    if (s == std::string::npos) throw Error(bad + "no shape)");
    long long frames = -1;
    int bands = -1;
    if (std::sscanf(h.c_str() + s, "'shape': (%lld, %d)", &frames, &bands) != 2 || frames < 0 ||
        bands != kShardBands)
        throw Error(bad + "shape is not (frames, " + std::to_string(kShardBands) + "))");
    out.frames = frames;
    struct stat st;
    if (::fstat(f.fd, &st) != 0) throw Error(path + ": " + sys_error());
    const int64_t want =
        kShardHeaderBytes + out.frames * kShardBands * shard_dtype_bytes(out.dtype);
    if (int64_t(st.st_size) != want)
        throw Error(path + ": corrupt shard: " + std::to_string(st.st_size) +
                    " bytes where its header promises " + std::to_string(want) + " (" +
                    std::to_string(out.frames) + " frames of " + shard_dtype_name(out.dtype) + ")" +
                    (int64_t(st.st_size) < want ? "; truncated?" : ""));
    return out;
}

ShardWriter::ShardWriter(std::string dir, ShardDtype dtype, int64_t max_bytes)
    : dir_(std::move(dir)), dtype_(dtype), max_bytes_(max_bytes) {
    GNET_CHECK(max_bytes_ > 0, "shard size must be positive");
}

ShardWriter::~ShardWriter() {
    try {
        finish();
    } catch (...) {
    }
}

void ShardWriter::open_next() {
    char name[32];
    std::snprintf(name, sizeof name, "shard-%05zu.npy", names_.size());
    const std::string path = dir_ + "/" + name;
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) throw Error(path + ": cannot create shard: " + sys_error());
    names_.push_back(name);
    frames_ = 0;
    const std::string h = shard_header(dtype_, 0);
    write_all(fd_, h.data(), h.size(), path);
}

void ShardWriter::close_current() {
    if (fd_ < 0) return;
    const std::string path = dir_ + "/" + names_.back();
    const std::string h = shard_header(dtype_, frames_);
    int fd = fd_;
    fd_ = -1;
    if (::pwrite(fd, h.data(), h.size(), 0) != ssize_t(h.size())) {
        const std::string why = sys_error();
        ::close(fd);
        throw Error(path + ": write failed: " + why);
    }
    if (::close(fd) != 0) throw Error(path + ": write failed: " + sys_error());
}

void ShardWriter::finish() {
    close_current();
}

ShardLocation ShardWriter::append(const float* x, int64_t frames) {
    GNET_CHECK(frames > 0, "an empty span");
    const int64_t bytes = frames * kShardBands * shard_dtype_bytes(dtype_);
    if (fd_ >= 0 && frames_ > 0 &&
        kShardHeaderBytes + frames_ * kShardBands * shard_dtype_bytes(dtype_) + bytes > max_bytes_)
        close_current();
    if (fd_ < 0) open_next();
    const std::string path = dir_ + "/" + names_.back();
    ShardLocation loc;
    loc.shard = int(names_.size()) - 1;
    loc.frame = frames_;
    const size_t n = size_t(frames) * kShardBands;
    if (dtype_ == ShardDtype::F16) {
        half_.resize(n);
        for (size_t i = 0; i < n; ++i)
            half_[i] = float_to_half(x[i]);
        loc.crc32 = crc32_bytes(half_.data(), n * 2);
        write_all(fd_, half_.data(), n * 2, path);
    } else {
        loc.crc32 = crc32_bytes(x, n * 4);
        write_all(fd_, x, n * 4, path);
    }
    frames_ += frames;
    return loc;
}

void read_shard_frames(const std::string& path, const ShardHeader& header, int64_t first,
                       int64_t frames, float* out, const uint32_t* expect_crc) {
    const std::string where =
        path + ": frames " + std::to_string(first) + ".." + std::to_string(first + frames);
    if (first < 0 || frames < 0 || first + frames > header.frames)
        throw Error(where + " lie outside the shard's " + std::to_string(header.frames) +
                    " frames (the index does not match the shard; run gnet prepare again)");
    Fd f;
    f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (f.fd < 0) throw Error(path + ": cannot open shard: " + sys_error());
    const int eb = shard_dtype_bytes(header.dtype);
    const size_t n = size_t(frames) * kShardBands;
    const int64_t offset = kShardHeaderBytes + first * kShardBands * eb;
    std::vector<uint16_t> half;
    void* dst = out;
    if (header.dtype == ShardDtype::F16) {
        half.resize(n);
        dst = half.data();
    }
    if (!pread_all(f.fd, dst, n * size_t(eb), offset, path))
        throw Error(where + ": the file ends early (truncated shard; run gnet prepare again)");
    if (expect_crc) {
        const uint32_t got = crc32_bytes(dst, n * size_t(eb));
        if (got != *expect_crc) {
            char buf[96];
            std::snprintf(buf, sizeof buf, ": CRC-32 %08x where the index says %08x", got,
                          *expect_crc);
            throw Error(where + buf + " (a corrupt shard; run gnet prepare again)");
        }
    }
    if (header.dtype == ShardDtype::F16)
        for (size_t i = 0; i < n; ++i)
            out[i] = half_to_float(half[i]);
}

void window_from_frames(const float* x, int64_t start, float* out, float top_db,
                        const std::string& what) {
    const float* w = x + start * kShardBands;
    for (int t = 0; t < kFrames; ++t)
        for (int m = 0; m < kMelBands; ++m) {
            const float v = w[int64_t(t) * kShardBands + m];
            if (!std::isfinite(v))
                throw Error(what + ": value " + std::to_string(v) + " at frame " +
                            std::to_string(start + t) + ", band " + std::to_string(m) +
                            " is not finite (a corrupt shard; run gnet prepare again)");
            out[int64_t(m) * kFrames + t] = v;
        }
    cpu::normalize_db_chunk(out, kChunkFloats, top_db);
}

}  // namespace gnet
