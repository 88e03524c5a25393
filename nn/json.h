// JSON through nlohmann-json (Debian's nlohmann-json3-dev), plus what gnet adds around it:
//
// - json_parse(): a strict, bounded parse for text that comes from files (safetensors headers,
//   checkpoint metadata, run state). RFC 8259 as nlohmann reads it (no comments, no trailing
//   commas, no NaN, no lone surrogates, no number that overflows a double), and on top of that at
//   most `max_depth` levels of nesting, `max_nodes` values and keys, `max_bytes` of text, and no
//   duplicate key in an object (checked with a hash set per open object, so a header of 80k keys
//   parses in linear time). Every violation is a JsonError saying what is wrong and where (byte
//   offset); callers add the file name.
// - Typed access that refuses rather than converts: json_int() takes only an integer, never
//   truncating 1.5 or 1e300; json_number(), json_string(), json_key() name the key and the type
//   found.
// - json_dump(): numbers in the shortest form that reads back to the same double (nlohmann's
//   grisu2: full precision, no rounding to 4 decimals), and strings that are not valid UTF-8 (file
//   names on Linux are bytes) written with each invalid byte as the text \xNN instead of failing
//   or producing invalid JSON.
//
// Json (std::map objects, keys sorted) is what parsing gives; OrderedJson keeps insertion order
// and is what gnet writes for people to read (config.json, prepare.json, predict output).
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string>

#include "kernels/error.h"

namespace gnet {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

class JsonError : public Error {
  public:
    explicit JsonError(const std::string& what) : Error(what) {}
};

struct JsonLimits {
    size_t max_bytes = size_t(100) << 20;  // text length
    int max_depth = 64;                    // nested arrays/objects
    size_t max_nodes = size_t(1) << 20;    // values + object keys
};

Json json_parse(const std::string& text, const JsonLimits& limits = {});

// Typed access; `what` names the value in the error ("data_offsets[0]", "'epoch'").
int64_t json_int(const Json& j, const std::string& what);
double json_number(const Json& j, const std::string& what);
const std::string& json_string(const Json& j, const std::string& what);
// obj[key], an error naming the key when obj is not an object or lacks it.
const Json& json_key(const Json& obj, const std::string& key);

// `s` with every byte that is not part of valid UTF-8 replaced by the four characters \xNN.
std::string utf8_or_escaped(const std::string& s);

// Compact (indent < 0) or indented text; see above for numbers and invalid UTF-8.
std::string json_dump(const Json& j, int indent = -1);
std::string json_dump(const OrderedJson& j, int indent = -1);

}  // namespace gnet
