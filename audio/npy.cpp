#include "audio/npy.h"

#include <sys/stat.h>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "kernels/error.h"
#include "nn/atomic_file.h"

namespace gnet {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLen = 6;

struct FileCloser {
    void operator()(std::FILE* f) const { std::fclose(f); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

[[noreturn]] void fail(const std::string& path, const std::string& why) {
    throw Error(path + ": not a valid .npy file: " + why);
}

// A tiny reader for the header's Python dict literal, e.g.
// {'descr': '<f4', 'fortran_order': False, 'shape': (128, 431), }
class HeaderParser {
  public:
    HeaderParser(const std::string& text, const std::string& path) : s_(text), path_(path) {}

    void parse(std::string& descr, bool& fortran, std::vector<int64_t>& shape) {
        bool have_descr = false, have_fortran = false, have_shape = false;
        expect('{');
        while (true) {
            skip_ws();
            if (peek() == '}') break;
            std::string key = string_literal();
            expect(':');
            if (key == "descr") {
                descr = string_literal();
                have_descr = true;
            } else if (key == "fortran_order") {
                fortran = boolean();
                have_fortran = true;
            } else if (key == "shape") {
                shape = tuple();
                have_shape = true;
            } else {
                fail(path_, "unexpected header key '" + key + "'");
            }
            skip_ws();
            if (peek() == ',') {
                ++i_;
                continue;
            }
            skip_ws();
            if (peek() != '}') fail(path_, "malformed header dict");
        }
        if (!have_descr || !have_fortran || !have_shape)
            fail(path_, "header lacks 'descr', 'fortran_order' or 'shape'");
    }

  private:
    char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
    void skip_ws() {
        while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_])))
            ++i_;
    }
    void expect(char c) {
        skip_ws();
        if (peek() != c) fail(path_, std::string("malformed header: expected '") + c + "'");
        ++i_;
    }
    std::string string_literal() {
        skip_ws();
        char q = peek();
        if (q != '\'' && q != '"') fail(path_, "malformed header: expected a quoted string");
        size_t end = s_.find(q, i_ + 1);
        if (end == std::string::npos) fail(path_, "malformed header: unterminated string");
        std::string out = s_.substr(i_ + 1, end - i_ - 1);
        i_ = end + 1;
        return out;
    }
    bool boolean() {
        skip_ws();
        if (s_.compare(i_, 4, "True") == 0) {
            i_ += 4;
            return true;
        }
        if (s_.compare(i_, 5, "False") == 0) {
            i_ += 5;
            return false;
        }
        fail(path_, "malformed header: fortran_order is not True/False");
    }
    std::vector<int64_t> tuple() {
        std::vector<int64_t> out;
        expect('(');
        while (true) {
            skip_ws();
            if (peek() == ')') {
                ++i_;
                return out;
            }
            if (!std::isdigit(static_cast<unsigned char>(peek())))
                fail(path_, "malformed header: shape holds a non-integer");
            int64_t v = 0;
            while (std::isdigit(static_cast<unsigned char>(peek()))) {
                v = v * 10 + (peek() - '0');
                if (v > (int64_t(1) << 40)) fail(path_, "shape dimension too large");
                ++i_;
            }
            out.push_back(v);
            skip_ws();
            if (peek() == ',')
                ++i_;
            else if (peek() != ')')
                fail(path_, "malformed header: bad shape tuple");
        }
    }

    const std::string& s_;
    const std::string& path_;
    size_t i_ = 0;
};

std::string shape_tuple(const std::vector<int64_t>& shape) {
    std::string s = "(";
    for (size_t i = 0; i < shape.size(); ++i) {
        s += std::to_string(shape[i]);
        if (shape.size() == 1 || i + 1 < shape.size()) s += ",";
        if (i + 1 < shape.size()) s += " ";
    }
    return s + ")";
}

int64_t numel_of(const std::vector<int64_t>& shape) {
    int64_t n = 1;
    for (int64_t d : shape)
        n *= d;
    return n;
}

void write_array(const std::string& path, NpyDtype dtype, const void* data,
                 const std::vector<int64_t>& shape, size_t elem_size) {
    AtomicFile f(path, Durability::Fast);  // bulk data: atomic, not fsynced one by one
    f.write(npy_header(dtype, shape));
    f.write(data, size_t(numel_of(shape)) * elem_size);
    f.commit();
}

}  // namespace

int64_t NpyArray::numel() const {
    return numel_of(shape);
}

std::string npy_header(NpyDtype dtype, const std::vector<int64_t>& shape) {
    std::string dict = std::string("{'descr': '") + (dtype == NpyDtype::F32 ? "<f4" : "<i8") +
                       "', 'fortran_order': False, 'shape': " + shape_tuple(shape) + ", }";
    // Total header (magic + version + length field + dict + padding + '\n') is a multiple of 64.
    size_t prefix_v1 = kMagicLen + 2 + 2;
    size_t total = prefix_v1 + dict.size() + 1;
    size_t padded = (total + 63) / 64 * 64;
    bool v2 = padded - prefix_v1 > 65535;
    size_t prefix = v2 ? kMagicLen + 2 + 4 : prefix_v1;
    if (v2) padded = (prefix + dict.size() + 1 + 63) / 64 * 64;
    size_t header_len = padded - prefix;
    std::string out(kMagic, kMagicLen);
    out += char(v2 ? 2 : 1);
    out += char(0);
    for (size_t i = 0; i < (v2 ? 4u : 2u); ++i)
        out += char((header_len >> (8 * i)) & 0xff);
    out += dict;
    out.append(header_len - dict.size() - 1, ' ');
    out += '\n';
    return out;
}

namespace {

// The header of a .npy held in `bytes` (at least the magic, version, length and dict).
struct NpyHeader {
    NpyDtype dtype = NpyDtype::F32;
    std::vector<int64_t> shape;
    size_t data_offset = 0;
    uint64_t data_bytes = 0;  // numel x element size, overflow-checked
};

// Needs the first 10 or 12 bytes to know the header length; returns 0 when `bytes` is too short.
size_t header_end(const std::string& bytes, const std::string& path) {
    if (bytes.size() < kMagicLen + 2) fail(path, "file too short");
    if (std::memcmp(bytes.data(), kMagic, kMagicLen) != 0)
        fail(path, "bad magic (not a .npy file)");
    const int major = static_cast<unsigned char>(bytes[kMagicLen]);
    if (major < 1 || major > 3)
        fail(path, "unsupported format version " + std::to_string(major) + "." +
                       std::to_string(static_cast<unsigned char>(bytes[kMagicLen + 1])));
    const size_t len_bytes = major == 1 ? 2 : 4;
    if (bytes.size() < kMagicLen + 2 + len_bytes) fail(path, "truncated header");
    size_t header_len = 0;
    for (size_t i = 0; i < len_bytes; ++i)
        header_len |= size_t(static_cast<unsigned char>(bytes[kMagicLen + 2 + i])) << (8 * i);
    if (header_len > (1u << 20))
        fail(path, "header length " + std::to_string(header_len) + " is implausible");
    return kMagicLen + 2 + len_bytes + header_len;
}

NpyHeader parse_header(const std::string& bytes, const std::string& path) {
    const size_t end = header_end(bytes, path);
    if (bytes.size() < end) fail(path, "truncated header");
    const size_t start =
        kMagicLen + 2 + (static_cast<unsigned char>(bytes[kMagicLen]) == 1 ? 2 : 4);
    const std::string header = bytes.substr(start, end - start);
    std::string descr;
    bool fortran = false;
    NpyHeader h;
    HeaderParser(header, path).parse(descr, fortran, h.shape);
    if (descr.size() == 3 && descr[0] == '>' && descr[1] != '1')
        fail(path, "big-endian data ('" + descr + "') is not supported; save it little-endian");
    if (descr == "<f4") {
        h.dtype = NpyDtype::F32;
    } else if (descr == "<i8") {
        h.dtype = NpyDtype::I64;
    } else {
        fail(path, "dtype '" + descr + "' is not supported (float32 '<f4' or int64 '<i8')");
    }
    if (fortran && h.shape.size() > 1)
        fail(path, "Fortran-order arrays are not supported; save with C order");
    if (h.shape.size() > 32)
        fail(path, "shape has " + std::to_string(h.shape.size()) + " dimensions");
    // The product, checked for overflow: (2^40, 2^40, 16) must not wrap to a small number.
    const uint64_t elem = h.dtype == NpyDtype::F32 ? 4 : 8;
    uint64_t bytes_needed = elem;
    for (int64_t d : h.shape) {
        if (d != 0 && bytes_needed > (uint64_t(1) << 62) / uint64_t(d))
            fail(path, "shape " + shape_tuple(h.shape) + " is too large (more than 2^62 bytes)");
        bytes_needed *= uint64_t(d);
    }
    h.data_offset = end;
    h.data_bytes = bytes_needed;
    return h;
}

// Checked against what the file holds before anything is allocated.
void check_size(const NpyHeader& h, uint64_t file_size, const std::string& path) {
    const uint64_t have = file_size - h.data_offset;
    if (have < h.data_bytes)
        fail(path, "truncated data: shape " + shape_tuple(h.shape) + " needs " +
                       std::to_string(h.data_bytes) + " bytes, the file holds " +
                       std::to_string(have));
    if (have > h.data_bytes) fail(path, "trailing bytes after the data");
}

NpyArray array_from(const NpyHeader& h, const char* data) {
    NpyArray arr;
    arr.shape = h.shape;
    arr.dtype = h.dtype;
    if (h.dtype == NpyDtype::F32) {
        arr.f32.resize(size_t(h.data_bytes / 4));
        if (h.data_bytes) std::memcpy(arr.f32.data(), data, size_t(h.data_bytes));
    } else {
        arr.i64.resize(size_t(h.data_bytes / 8));
        if (h.data_bytes) std::memcpy(arr.i64.data(), data, size_t(h.data_bytes));
    }
    return arr;
}

}  // namespace

NpyArray npy_parse(const std::string& bytes, const std::string& path) {
    NpyHeader h = parse_header(bytes, path);
    check_size(h, bytes.size(), path);
    return array_from(h, bytes.data() + h.data_offset);
}

NpyArray npy_read(const std::string& path) {
    return npy_read_checked(path, nullptr);
}

NpyArray npy_read_checked(const std::string& path, const std::vector<int64_t>* expect_shape) {
    FilePtr f(std::fopen(path.c_str(), "rb"));
    if (!f) throw Error(path + ": cannot open: " + std::strerror(errno));
    struct stat st {};
    if (::fstat(::fileno(f.get()), &st) != 0 || !S_ISREG(st.st_mode))
        fail(path, "not a regular file");
    // Header first (at most 12 + 1 MiB bytes), then the data once its size is known to fit.
    std::string bytes(std::min<size_t>(size_t(st.st_size), 12), '\0');
    if (std::fread(bytes.data(), 1, bytes.size(), f.get()) != bytes.size())
        fail(path, "read failed");
    const size_t end = header_end(bytes, path);
    if (uint64_t(st.st_size) < end) fail(path, "truncated header");
    const size_t have = bytes.size();
    bytes.resize(end);
    if (end > have && std::fread(bytes.data() + have, 1, end - have, f.get()) != end - have)
        fail(path, "truncated header");
    if (std::fseek(f.get(), long(end), SEEK_SET) != 0) fail(path, "seek failed");
    NpyHeader h = parse_header(bytes, path);
    if (expect_shape && h.shape != *expect_shape)
        throw Error(path + ": shape " + shape_tuple(h.shape) + " where " +
                    shape_tuple(*expect_shape) + " was expected");
    check_size(h, uint64_t(st.st_size), path);
    std::string data(size_t(h.data_bytes), '\0');
    if (h.data_bytes && std::fread(data.data(), 1, data.size(), f.get()) != data.size())
        fail(path, "truncated data");
    return array_from(h, data.data());
}

std::vector<float> npy_read_f32(const std::string& path, const std::vector<int64_t>& expect_shape) {
    NpyArray a = npy_read_checked(path, &expect_shape);
    if (a.dtype != NpyDtype::F32) throw Error(path + ": expected float32 data, found int64");
    return std::move(a.f32);
}

void npy_write(const std::string& path, const float* data, const std::vector<int64_t>& shape) {
    write_array(path, NpyDtype::F32, data, shape, sizeof(float));
}

void npy_write(const std::string& path, const int64_t* data, const std::vector<int64_t>& shape) {
    write_array(path, NpyDtype::I64, data, shape, sizeof(int64_t));
}

}  // namespace gnet
