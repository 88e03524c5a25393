#include "nn/safetensors.h"

#include <algorithm>
#include <cstring>
#include <set>

#include "kernels/error.h"
#include "nn/atomic_file.h"
#include "nn/json.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors data is little-endian; gnet copies it as is");

namespace gnet {

namespace {

constexpr uint64_t kMaxHeaderBytes = 100u << 20;  // as the reference implementation
constexpr const char* kMetadataKey = "__metadata__";
constexpr size_t kMaxRank = 16;
// An honest header holds ~11 values and keys per tensor; a million is far beyond any real model
// and keeps a hostile header's parse under a few hundred MB.
constexpr size_t kMaxHeaderNodes = size_t(1) << 20;

[[noreturn]] void fail(const std::string& path, const std::string& why) {
    throw Error(path + ": not a valid .safetensors file: " + why);
}

size_t dtype_size(StDtype d) {
    return d == StDtype::F32 ? 4 : 8;
}

int64_t checked_numel(const std::vector<int64_t>& shape) {
    int64_t n = 1;
    for (int64_t d : shape) {
        if (d < 0) return -1;
        if (d != 0 && n > (int64_t(1) << 60) / d) return -1;
        n *= d;
    }
    return n;
}

struct Entry {
    std::string name;
    StDtype dtype;
    std::vector<int64_t> shape;
    uint64_t begin, end;
};

Entry parse_entry(const std::string& path, const std::string& name, const Json& info) {
    std::string where = "tensor '" + utf8_or_escaped(name) + "': ";
    if (!info.is_object()) fail(path, where + "header entry is not an object");
    for (auto it = info.begin(); it != info.end(); ++it)
        if (it.key() != "dtype" && it.key() != "shape" && it.key() != "data_offsets")
            fail(path, where + "unexpected header field '" + utf8_or_escaped(it.key()) + "'");
    if (!info.contains("dtype") || !info.contains("shape") || !info.contains("data_offsets"))
        fail(path, where + "needs dtype, shape and data_offsets");
    const Json& dtype = info["dtype"];
    const Json& shape = info["shape"];
    const Json& offsets = info["data_offsets"];
    Entry e;
    e.name = name;
    if (!dtype.is_string()) fail(path, where + "dtype is not a string");
    const std::string& dt = dtype.get_ref<const std::string&>();
    if (dt == "F32")
        e.dtype = StDtype::F32;
    else if (dt == "I64")
        e.dtype = StDtype::I64;
    else
        fail(path,
             where + "unsupported dtype '" + utf8_or_escaped(dt) + "' (gnet reads F32 and I64)");
    try {
        if (!shape.is_array()) fail(path, where + "shape is not an array");
        if (shape.size() > kMaxRank)
            fail(path, where + "shape has " + std::to_string(shape.size()) +
                           " dimensions (at most " + std::to_string(kMaxRank) + ")");
        for (size_t k = 0; k < shape.size(); ++k)
            e.shape.push_back(json_int(shape[k], "shape[" + std::to_string(k) + "]"));
        if (!offsets.is_array() || offsets.size() != 2)
            fail(path, where + "data_offsets must be [begin, end]");
        int64_t b = json_int(offsets[0], "data_offsets[0]"),
                en = json_int(offsets[1], "data_offsets[1]");
        if (b < 0 || en < b)
            fail(path, where + "data_offsets [" + std::to_string(b) + ", " + std::to_string(en) +
                           "] are not an increasing range");
        e.begin = uint64_t(b);
        e.end = uint64_t(en);
    } catch (const JsonError& err) {
        fail(path, where + "malformed shape or data_offsets: " + err.what());
    }
    int64_t n = checked_numel(e.shape);
    if (n < 0) fail(path, where + "invalid shape (a negative dimension, or more than 2^60 values)");
    if (e.end - e.begin != uint64_t(n) * dtype_size(e.dtype))
        fail(path, where + "data_offsets hold " + std::to_string(e.end - e.begin) +
                       " bytes but dtype and shape need " +
                       std::to_string(uint64_t(n) * dtype_size(e.dtype)));
    return e;
}

std::string shape_json(const std::vector<int64_t>& shape) {
    return json_dump(Json(shape));
}

}  // namespace

const char* st_dtype_name(StDtype dtype) {
    return dtype == StDtype::F32 ? "F32" : "I64";
}

int64_t StTensor::numel() const {
    int64_t n = 1;
    for (int64_t d : shape)
        n *= d;
    return n;
}

const StTensor* StFile::find(const std::string& name) const {
    for (const StTensor& t : tensors)
        if (t.name == name) return &t;
    return nullptr;
}

StFile safetensors_parse(const std::string& bytes, const std::string& path) {
    if (bytes.size() < 8) fail(path, "shorter than the 8-byte header length");
    uint64_t header_len = 0;
    std::memcpy(&header_len, bytes.data(), 8);
    if (header_len > kMaxHeaderBytes)
        fail(path, "header length " + std::to_string(header_len) + " is larger than 100 MB");
    if (header_len > bytes.size() - 8)
        fail(path, "header length " + std::to_string(header_len) + " runs past the end of the " +
                       std::to_string(bytes.size()) + "-byte file");
    std::string header_text = bytes.substr(8, header_len);
    if (header_text.empty() || header_text[0] != '{') fail(path, "header does not start with '{'");
    Json header;
    try {
        JsonLimits limits;
        limits.max_bytes = kMaxHeaderBytes;
        limits.max_nodes = kMaxHeaderNodes;
        limits.max_depth = 8;  // {name: {shape: [..]}} and __metadata__ need 3
        header = json_parse(header_text, limits);
    } catch (const JsonError& e) {
        fail(path, std::string("bad header: ") + e.what());
    }
    if (!header.is_object()) fail(path, "header is not a JSON object");

    StFile file;
    std::vector<Entry> entries;
    for (auto it = header.begin(); it != header.end(); ++it) {
        const std::string& name = it.key();
        const Json& info = it.value();
        if (name == kMetadataKey) {
            if (!info.is_object()) fail(path, "__metadata__ is not an object");
            for (auto m = info.begin(); m != info.end(); ++m) {
                if (!m.value().is_string())
                    fail(path, "__metadata__ value of '" + utf8_or_escaped(m.key()) +
                                   "' is not a string");
                file.metadata[m.key()] = m.value().get<std::string>();
            }
            continue;
        }
        entries.push_back(parse_entry(path, name, info));
    }

    // Data must be covered exactly: sorted by offset, no overlap, no hole, nothing left over.
    std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
        return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    const uint64_t data_bytes = bytes.size() - 8 - header_len;
    uint64_t cursor = 0;
    for (const Entry& e : entries) {
        if (e.begin < cursor)
            fail(path, "tensor '" + e.name + "' overlaps the previous tensor's data");
        if (e.begin > cursor) fail(path, "a hole in the data before tensor '" + e.name + "'");
        if (e.end > data_bytes)
            fail(path, "tensor '" + e.name + "' data [" + std::to_string(e.begin) + ", " +
                           std::to_string(e.end) + ") runs past the end of the data (" +
                           std::to_string(data_bytes) + " bytes; file truncated?)");
        cursor = e.end;
    }
    if (cursor != data_bytes)
        fail(path, std::to_string(data_bytes - cursor) + " bytes after the last tensor's data");

    const char* data = bytes.data() + 8 + header_len;
    for (const Entry& e : entries) {
        StTensor t;
        t.name = e.name;
        t.dtype = e.dtype;
        t.shape = e.shape;
        size_t n = size_t((e.end - e.begin) / dtype_size(e.dtype));
        if (e.dtype == StDtype::F32) {
            t.f32.resize(n);
            if (n) std::memcpy(t.f32.data(), data + e.begin, n * 4);
        } else {
            t.i64.resize(n);
            if (n) std::memcpy(t.i64.data(), data + e.begin, n * 8);
        }
        file.tensors.push_back(std::move(t));
    }
    return file;
}

StFile safetensors_read(const std::string& path) {
    return safetensors_parse(read_file(path), path);
}

std::string safetensors_serialize(const StFile& file) {
    // Written by hand (not through a Json object) to keep the tensors in their given order.
    std::string header = "{";
    bool first = true;
    if (!file.metadata.empty()) {
        Json meta = Json::object();
        for (const auto& [k, v] : file.metadata)
            meta[k] = v;
        header += json_dump(Json(kMetadataKey)) + ":" + json_dump(meta);
        first = false;
    }
    std::set<std::string> names;
    uint64_t offset = 0;
    for (const StTensor& t : file.tensors) {
        GNET_CHECK(t.name != kMetadataKey && names.insert(t.name).second,
                   "safetensors: duplicate or reserved tensor name '" + t.name + "'");
        int64_t n = checked_numel(t.shape);
        GNET_CHECK(n >= 0, "safetensors: tensor '" + t.name + "' has an invalid shape");
        size_t have = t.dtype == StDtype::F32 ? t.f32.size() : t.i64.size();
        GNET_CHECK(have == size_t(n), "safetensors: tensor '" + t.name + "' holds " +
                                          std::to_string(have) + " values but its shape " +
                                          shape_json(t.shape) + " needs " + std::to_string(n));
        uint64_t bytes = uint64_t(n) * dtype_size(t.dtype);
        if (!first) header += ",";
        first = false;
        header += json_dump(Json(t.name)) + ":{\"dtype\":\"" + st_dtype_name(t.dtype) +
                  "\",\"shape\":" + shape_json(t.shape) + ",\"data_offsets\":[" +
                  std::to_string(offset) + "," + std::to_string(offset + bytes) + "]}";
        offset += bytes;
    }
    header += "}";
    while (header.size() % 8)
        header += ' ';

    std::string out;
    out.reserve(8 + header.size() + offset);
    uint64_t len = header.size();
    out.append(reinterpret_cast<const char*>(&len), 8);
    out += header;
    for (const StTensor& t : file.tensors) {
        if (t.dtype == StDtype::F32)
            out.append(reinterpret_cast<const char*>(t.f32.data()), t.f32.size() * 4);
        else
            out.append(reinterpret_cast<const char*>(t.i64.data()), t.i64.size() * 8);
    }
    return out;
}

void safetensors_write(const std::string& path, const StFile& file) {
    write_file_atomic(path, safetensors_serialize(file));
}

}  // namespace gnet
