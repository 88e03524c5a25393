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

[[noreturn]] void fail(const std::string& path, const std::string& why) {
    throw Error(path + ": not a valid .safetensors file: " + why);
}

size_t dtype_size(StDtype d) { return d == StDtype::F32 ? 4 : 8; }

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
    std::string where = "tensor '" + name + "': ";
    if (!info.is_object()) fail(path, where + "header entry is not an object");
    for (const auto& [key, value] : info.as_object()) {
        (void)value;
        if (key != "dtype" && key != "shape" && key != "data_offsets")
            fail(path, where + "unexpected header field '" + key + "'");
    }
    const Json* dtype = info.find("dtype");
    const Json* shape = info.find("shape");
    const Json* offsets = info.find("data_offsets");
    if (!dtype || !shape || !offsets) fail(path, where + "needs dtype, shape and data_offsets");
    Entry e;
    e.name = name;
    if (!dtype->is_string()) fail(path, where + "dtype is not a string");
    if (dtype->as_string() == "F32") e.dtype = StDtype::F32;
    else if (dtype->as_string() == "I64") e.dtype = StDtype::I64;
    else fail(path, where + "unsupported dtype '" + dtype->as_string() + "' (gnet reads F32 and I64)");
    try {
        for (const Json& d : shape->as_array()) e.shape.push_back(d.as_int());
        if (offsets->size() != 2) fail(path, where + "data_offsets must be [begin, end]");
        int64_t b = offsets->at(size_t(0)).as_int(), en = offsets->at(size_t(1)).as_int();
        if (b < 0 || en < b) fail(path, where + "data_offsets [" + std::to_string(b) + ", " +
                                        std::to_string(en) + "] are not an increasing range");
        e.begin = uint64_t(b);
        e.end = uint64_t(en);
    } catch (const JsonError& err) {
        fail(path, where + "malformed shape or data_offsets: " + err.what());
    }
    int64_t n = checked_numel(e.shape);
    if (n < 0) fail(path, where + "invalid shape");
    if (e.end - e.begin != uint64_t(n) * dtype_size(e.dtype))
        fail(path, where + "data_offsets hold " + std::to_string(e.end - e.begin) +
                       " bytes but dtype and shape need " +
                       std::to_string(uint64_t(n) * dtype_size(e.dtype)));
    return e;
}

std::string shape_json(const std::vector<int64_t>& shape) {
    Json a = Json::array();
    for (int64_t d : shape) a.push_back(Json(d));
    return a.dump();
}

}  // namespace

const char* st_dtype_name(StDtype dtype) { return dtype == StDtype::F32 ? "F32" : "I64"; }

int64_t StTensor::numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
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
        header = Json::parse(header_text);
    } catch (const JsonError& e) {
        fail(path, std::string("bad header: ") + e.what());
    }
    if (!header.is_object()) fail(path, "header is not a JSON object");

    StFile file;
    std::vector<Entry> entries;
    for (const auto& [name, info] : header.as_object()) {
        if (name == kMetadataKey) {
            if (!info.is_object()) fail(path, "__metadata__ is not an object");
            for (const auto& [key, value] : info.as_object()) {
                if (!value.is_string())
                    fail(path, "__metadata__ value of '" + key + "' is not a string");
                file.metadata[key] = value.as_string();
            }
            continue;
        }
        entries.push_back(parse_entry(path, name, info));
    }

    // Data must be covered exactly: sorted by offset, no overlap, no hole, nothing left over.
    std::sort(entries.begin(), entries.end(),
              [](const Entry& a, const Entry& b) { return a.begin != b.begin ? a.begin < b.begin
                                                                            : a.end < b.end; });
    const uint64_t data_bytes = bytes.size() - 8 - header_len;
    uint64_t cursor = 0;
    for (const Entry& e : entries) {
        if (e.begin < cursor)
            fail(path, "tensor '" + e.name + "' overlaps the previous tensor's data");
        if (e.begin > cursor)
            fail(path, "a hole in the data before tensor '" + e.name + "'");
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

StFile safetensors_read(const std::string& path) { return safetensors_parse(read_file(path), path); }

std::string safetensors_serialize(const StFile& file) {
    std::string header = "{";
    bool first = true;
    if (!file.metadata.empty()) {
        Json meta = Json::object();
        for (const auto& [k, v] : file.metadata) meta.set(k, Json(v));
        header += Json(kMetadataKey).dump() + ":" + meta.dump();
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
        header += Json(t.name).dump() + ":{\"dtype\":\"" + st_dtype_name(t.dtype) +
                  "\",\"shape\":" + shape_json(t.shape) + ",\"data_offsets\":[" +
                  std::to_string(offset) + "," + std::to_string(offset + bytes) + "]}";
        offset += bytes;
    }
    header += "}";
    while (header.size() % 8) header += ' ';

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
