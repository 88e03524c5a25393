// .safetensors files: an 8-byte little-endian header length n, n bytes of JSON header
// {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//  "__metadata__": {"key": "string value", ...}}, then the raw little-endian tensor bytes;
// offsets are relative to the end of the header.
//
// Reading is strict, as the reference implementation is: a header length past the file, a header
// that is not a JSON object, an entry without dtype/shape/data_offsets, an unknown dtype, a
// negative dimension, offsets that do not match dtype x shape, that overlap, leave holes or run
// past the end of the file, or bytes left over after the last tensor are all an Error naming the
// file and, where there is one, the tensor. Only F32 and I64 tensors are supported (what gnet's
// checkpoints hold); another dtype is an Error naming the tensor.
//
// Writing puts tensors in the order given (data aligned to 8 bytes: the header is padded with
// spaces) and is atomic (AtomicFile): readers see the old file or the complete new one.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace gnet {

enum class StDtype { F32, I64 };
const char* st_dtype_name(StDtype dtype);  // "F32" | "I64"

struct StTensor {
    std::string name;
    StDtype dtype = StDtype::F32;
    std::vector<int64_t> shape;  // [] for a scalar
    std::vector<float> f32;      // filled when dtype == F32
    std::vector<int64_t> i64;    // filled when dtype == I64
    int64_t numel() const;
};

struct StFile {
    std::vector<StTensor> tensors;  // in the order of their data in the file
    std::map<std::string, std::string> metadata;

    const StTensor* find(const std::string& name) const;  // nullptr when absent
};

StFile safetensors_read(const std::string& path);
// Parses a whole file held in memory; `path` only names it in errors.
StFile safetensors_parse(const std::string& bytes, const std::string& path);
std::string safetensors_serialize(const StFile& file);
void safetensors_write(const std::string& path, const StFile& file);

}  // namespace gnet
