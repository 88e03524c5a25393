// NumPy .npy files: float32 and int64, C order, little-endian; format versions 1.0, 2.0 (and 3.0)
// are read, 1.0 is written (2.0 when the header would not fit 1.0's 16-bit length).
//
// Reading is strict: a bad magic, an unknown version, a malformed header, a big-endian or
// Fortran-order array, another dtype, or a data section shorter or longer than the shape says
// is an Error that names the file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gnet {

enum class NpyDtype { F32, I64 };

struct NpyArray {
    std::vector<int64_t> shape;
    NpyDtype dtype = NpyDtype::F32;
    std::vector<float> f32;    // filled when dtype == F32
    std::vector<int64_t> i64;  // filled when dtype == I64
    int64_t numel() const;
};

// The shape's product is checked for overflow and against the bytes the file holds before any
// allocation, so a 128-byte file declaring (128, 431, 72000) or (2^40,) is an error naming the
// file, never a huge allocation.
NpyArray npy_read(const std::string& path);
// With `expect_shape`, a different shape is refused before the data is read.
NpyArray npy_read_checked(const std::string& path, const std::vector<int64_t>* expect_shape);
// A whole file held in memory; `path` only names it in errors.
NpyArray npy_parse(const std::string& bytes, const std::string& path);
// Reads a float32 array and checks its shape (an Error naming the file when it differs).
std::vector<float> npy_read_f32(const std::string& path, const std::vector<int64_t>& expect_shape);

// Written atomically: to a temporary file beside `path`, then renamed over it (not fsynced:
// .npy files are bulk data whose completeness the manifest written after them vouches for).
void npy_write(const std::string& path, const float* data, const std::vector<int64_t>& shape);
void npy_write(const std::string& path, const int64_t* data, const std::vector<int64_t>& shape);

// The bytes of a complete .npy header (magic ... padding ... '\n') for the given array.
std::string npy_header(NpyDtype dtype, const std::vector<int64_t>& shape);

}  // namespace gnet
