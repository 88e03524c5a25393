#include "nn/json.h"

#include <cmath>
#include <cstdio>
#include <unordered_set>
#include <vector>

namespace gnet {

namespace {

// nlohmann's messages start with "[json.exception.parse_error.101] "; users need the rest.
std::string without_prefix(const char* what) {
    std::string s = what;
    if (s.rfind("[json.exception.", 0) == 0) {
        size_t end = s.find("] ");
        if (end != std::string::npos) s = s.substr(end + 2);
    }
    return s;
}

const char* type_name(const Json& j) {
    switch (j.type()) {
        case Json::value_t::null:
            return "null";
        case Json::value_t::boolean:
            return "a boolean";
        case Json::value_t::number_integer:
        case Json::value_t::number_unsigned:
            return "an integer";
        case Json::value_t::number_float:
            return "a number";
        case Json::value_t::string:
            return "a string";
        case Json::value_t::array:
            return "an array";
        case Json::value_t::object:
            return "an object";
        default:
            return "an unsupported value";
    }
}

// Length of the valid UTF-8 sequence starting at s[i], or 0 when it is not one (overlong forms,
// surrogates and code points above U+10FFFF are invalid, as RFC 3629 says).
size_t utf8_sequence(const std::string& s, size_t i) {
    const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char c = b(i);
    if (c < 0x80) return 1;
    size_t n;
    unsigned cp;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (i + n > s.size()) return 0;
    for (size_t k = 1; k < n; ++k) {
        if ((b(i + k) & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (b(i + k) & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

template <class J>
void escape_strings(J& j) {
    if (j.is_string()) {
        j = utf8_or_escaped(j.template get_ref<const std::string&>());
    } else if (j.is_array()) {
        for (auto& v : j)
            escape_strings(v);
    } else if (j.is_object()) {
        J fixed = J::object();
        for (auto it = j.begin(); it != j.end(); ++it) {
            J v = it.value();
            escape_strings(v);
            fixed[utf8_or_escaped(it.key())] = std::move(v);
        }
        j = std::move(fixed);
    }
}

template <class J>
std::string dump_any(const J& j, int indent) {
    try {
        return j.dump(indent);
    } catch (const nlohmann::json::type_error& e) {
        if (e.id != 316) throw JsonError("JSON: " + without_prefix(e.what()));
    }
    J copy = j;  // only on the rare invalid-UTF-8 path
    escape_strings(copy);
    return copy.dump(indent);
}

}  // namespace

Json json_parse(const std::string& text, const JsonLimits& limits) {
    if (text.size() > limits.max_bytes)
        throw JsonError("JSON: text of " + std::to_string(text.size()) + " bytes is over the " +
                        std::to_string(limits.max_bytes) + "-byte limit");
    size_t nodes = 0;
    std::vector<std::unordered_set<std::string>> open_objects;
    auto on_event = [&](int depth, nlohmann::json::parse_event_t event, Json& parsed) {
        using E = nlohmann::json::parse_event_t;
        if (event == E::object_end) {
            open_objects.pop_back();
            return true;
        }
        if (event == E::array_end) return true;
        if (++nodes > limits.max_nodes)
            throw JsonError("JSON: more than " + std::to_string(limits.max_nodes) +
                            " values and keys");
        if (depth > limits.max_depth)
            throw JsonError("JSON: nesting deeper than " + std::to_string(limits.max_depth));
        if (event == E::object_start) {
            open_objects.emplace_back();
        } else if (event == E::key) {
            const std::string& key = parsed.get_ref<const std::string&>();
            if (!open_objects.back().insert(key).second)
                throw JsonError("JSON: duplicate key \"" + utf8_or_escaped(key) + "\"");
        }
        return true;
    };
    try {
        return Json::parse(text, on_event, /*allow_exceptions=*/true, /*ignore_comments=*/false);
    } catch (const nlohmann::json::parse_error& e) {
        throw JsonError("JSON: " + without_prefix(e.what()));
    } catch (const nlohmann::json::exception& e) {
        throw JsonError("JSON: " + without_prefix(e.what()));
    }
}

int64_t json_int(const Json& j, const std::string& what) {
    if (j.is_number_integer() && !j.is_number_unsigned()) return j.get<int64_t>();
    if (j.is_number_unsigned()) {
        const uint64_t v = j.get<uint64_t>();
        if (v <= uint64_t(INT64_MAX)) return int64_t(v);
        throw JsonError("JSON: " + what + " is " + std::to_string(v) + ", too large");
    }
    throw JsonError("JSON: " + what + " must be an integer, found " + type_name(j) +
                    (j.is_number_float() ? " (" + j.dump() + ")" : std::string()));
}

double json_number(const Json& j, const std::string& what) {
    if (!j.is_number())
        throw JsonError("JSON: " + what + " must be a number, found " + type_name(j));
    return j.get<double>();
}

const std::string& json_string(const Json& j, const std::string& what) {
    if (!j.is_string())
        throw JsonError("JSON: " + what + " must be a string, found " + type_name(j));
    return j.get_ref<const std::string&>();
}

const Json& json_key(const Json& obj, const std::string& key) {
    if (!obj.is_object())
        throw JsonError("JSON: expected an object holding '" + key + "', found " + type_name(obj));
    auto it = obj.find(key);
    if (it == obj.end()) throw JsonError("JSON: '" + key + "' is missing");
    return *it;
}

std::string utf8_or_escaped(const std::string& s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
        size_t n = utf8_sequence(s, i);
        if (n == 0) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02X", static_cast<unsigned char>(s[i]));
            out += buf;
            ++i;
        } else {
            out.append(s, i, n);
            i += n;
        }
    }
    return out;
}

std::string json_dump(const Json& j, int indent) {
    return dump_any(j, indent);
}

std::string json_dump(const OrderedJson& j, int indent) {
    return dump_any(j, indent);
}

}  // namespace gnet
