#include "nn/json.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace gnet {

namespace {

constexpr int kMaxDepth = 64;
constexpr double kMaxExactInt = 9007199254740992.0;  // 2^53

[[noreturn]] void type_error(const char* want, Json::Type got) {
    throw JsonError(std::string("JSON: expected ") + want + ", found " + json_type_name(got));
}

class Parser {
public:
    explicit Parser(const std::string& s) : s_(s) {}

    Json parse_document() {
        Json v = value(0);
        skip_ws();
        if (i_ != s_.size()) fail("unexpected text after the JSON value");
        return v;
    }

private:
    [[noreturn]] void fail(const std::string& why) const {
        throw JsonError("JSON: " + why + " at byte " + std::to_string(i_));
    }
    bool at_end() const { return i_ >= s_.size(); }
    char peek() const { return at_end() ? '\0' : s_[i_]; }
    void skip_ws() {
        while (!at_end() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
            ++i_;
    }
    void expect_word(const char* word) {
        for (const char* c = word; *c; ++c, ++i_)
            if (peek() != *c) fail(std::string("invalid literal (expected '") + word + "')");
    }

    Json value(int depth) {
        if (depth > kMaxDepth) fail("nesting deeper than " + std::to_string(kMaxDepth));
        skip_ws();
        char c = peek();
        if (at_end()) fail("unexpected end of text");
        if (c == '{') return object(depth);
        if (c == '[') return array(depth);
        if (c == '"') return Json(string());
        if (c == 't') return expect_word("true"), Json(true);
        if (c == 'f') return expect_word("false"), Json(false);
        if (c == 'n') return expect_word("null"), Json();
        if (c == '-' || (c >= '0' && c <= '9')) return Json(number());
        fail(std::string("unexpected character '") + c + "'");
    }

    Json object(int depth) {
        ++i_;  // '{'
        Json obj = Json::object();
        skip_ws();
        if (peek() == '}') {
            ++i_;
            return obj;
        }
        while (true) {
            skip_ws();
            if (peek() != '"') fail("expected a string key");
            std::string key = string();
            if (obj.find(key)) fail("duplicate key \"" + key + "\"");
            skip_ws();
            if (peek() != ':') fail("expected ':'");
            ++i_;
            obj.set(key, value(depth + 1));
            skip_ws();
            if (peek() == ',') {
                ++i_;
                continue;
            }
            if (peek() == '}') {
                ++i_;
                return obj;
            }
            fail("expected ',' or '}'");
        }
    }

    Json array(int depth) {
        ++i_;  // '['
        Json arr = Json::array();
        skip_ws();
        if (peek() == ']') {
            ++i_;
            return arr;
        }
        while (true) {
            arr.push_back(value(depth + 1));
            skip_ws();
            if (peek() == ',') {
                ++i_;
                continue;
            }
            if (peek() == ']') {
                ++i_;
                return arr;
            }
            fail("expected ',' or ']'");
        }
    }

    unsigned hex4() {
        unsigned v = 0;
        for (int k = 0; k < 4; ++k, ++i_) {
            char c = peek();
            v <<= 4;
            if (c >= '0' && c <= '9') v |= unsigned(c - '0');
            else if (c >= 'a' && c <= 'f') v |= unsigned(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F') v |= unsigned(c - 'A' + 10);
            else fail("bad \\u escape");
        }
        return v;
    }

    static void put_utf8(std::string& out, unsigned cp) {
        if (cp < 0x80) {
            out += char(cp);
        } else if (cp < 0x800) {
            out += char(0xC0 | (cp >> 6));
            out += char(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out += char(0xE0 | (cp >> 12));
            out += char(0x80 | ((cp >> 6) & 0x3F));
            out += char(0x80 | (cp & 0x3F));
        } else {
            out += char(0xF0 | (cp >> 18));
            out += char(0x80 | ((cp >> 12) & 0x3F));
            out += char(0x80 | ((cp >> 6) & 0x3F));
            out += char(0x80 | (cp & 0x3F));
        }
    }

    std::string string() {
        ++i_;  // '"'
        std::string out;
        while (true) {
            if (at_end()) fail("unterminated string");
            unsigned char c = static_cast<unsigned char>(s_[i_]);
            if (c == '"') {
                ++i_;
                return out;
            }
            if (c < 0x20) fail("control character in string");
            if (c != '\\') {
                out += char(c);
                ++i_;
                continue;
            }
            ++i_;
            char e = peek();
            ++i_;
            switch (e) {
                case '"': out += '"'; break;
                case '\\': out += '\\'; break;
                case '/': out += '/'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': {
                    unsigned cp = hex4();
                    if (cp >= 0xD800 && cp < 0xDC00) {
                        if (peek() != '\\' || i_ + 1 >= s_.size() || s_[i_ + 1] != 'u')
                            fail("unpaired surrogate in \\u escape");
                        i_ += 2;
                        unsigned lo = hex4();
                        if (lo < 0xDC00 || lo >= 0xE000) fail("bad low surrogate in \\u escape");
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    } else if (cp >= 0xDC00 && cp < 0xE000) {
                        fail("unpaired surrogate in \\u escape");
                    }
                    put_utf8(out, cp);
                    break;
                }
                default: --i_; fail("bad escape in string");
            }
        }
    }

    double number() {
        size_t start = i_;
        if (peek() == '-') ++i_;
        if (peek() == '0') {
            ++i_;
        } else if (peek() >= '1' && peek() <= '9') {
            while (peek() >= '0' && peek() <= '9') ++i_;
        } else {
            fail("bad number");
        }
        if (peek() == '.') {
            ++i_;
            if (!(peek() >= '0' && peek() <= '9')) fail("bad number: digits expected after '.'");
            while (peek() >= '0' && peek() <= '9') ++i_;
        }
        if (peek() == 'e' || peek() == 'E') {
            ++i_;
            if (peek() == '+' || peek() == '-') ++i_;
            if (!(peek() >= '0' && peek() <= '9')) fail("bad number: digits expected in exponent");
            while (peek() >= '0' && peek() <= '9') ++i_;
        }
        std::string text = s_.substr(start, i_ - start);
        double v = std::strtod(text.c_str(), nullptr);
        if (!std::isfinite(v)) fail("number out of range");
        return v;
    }

    const std::string& s_;
    size_t i_ = 0;
};

void dump_string(const std::string& s, std::string& out) {
    out += '"';
    for (unsigned char c : s) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            default:
                if (c < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", c);
                    out += buf;
                } else {
                    out += char(c);
                }
        }
    }
    out += '"';
}

void dump_number(double v, std::string& out) {
    if (!std::isfinite(v)) throw JsonError("JSON: cannot write a non-finite number");
    char buf[40];
    if (v == std::floor(v) && std::fabs(v) < kMaxExactInt) {
        std::snprintf(buf, sizeof buf, "%.0f", v);
        out += buf;
        return;
    }
    for (int prec = 1; prec <= 17; ++prec) {
        std::snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (std::strtod(buf, nullptr) == v) break;
    }
    out += buf;
}

void dump_value(const Json& v, std::string& out) {
    switch (v.type()) {
        case Json::Type::Null: out += "null"; break;
        case Json::Type::Bool: out += v.as_bool() ? "true" : "false"; break;
        case Json::Type::Number: dump_number(v.as_number(), out); break;
        case Json::Type::String: dump_string(v.as_string(), out); break;
        case Json::Type::Array: {
            out += '[';
            bool first = true;
            for (const Json& item : v.as_array()) {
                if (!first) out += ',';
                first = false;
                dump_value(item, out);
            }
            out += ']';
            break;
        }
        case Json::Type::Object: {
            out += '{';
            bool first = true;
            for (const auto& [key, item] : v.as_object()) {
                if (!first) out += ',';
                first = false;
                dump_string(key, out);
                out += ':';
                dump_value(item, out);
            }
            out += '}';
            break;
        }
    }
}

}  // namespace

const char* json_type_name(Json::Type type) {
    switch (type) {
        case Json::Type::Null: return "null";
        case Json::Type::Bool: return "a boolean";
        case Json::Type::Number: return "a number";
        case Json::Type::String: return "a string";
        case Json::Type::Array: return "an array";
        case Json::Type::Object: return "an object";
    }
    return "?";
}

Json Json::array(Array items) {
    Json j;
    j.type_ = Type::Array;
    j.array_ = std::move(items);
    return j;
}

Json Json::object(Object members) {
    Json j;
    j.type_ = Type::Object;
    for (auto& [k, v] : members) j.set(k, std::move(v));
    return j;
}

bool Json::as_bool() const {
    if (!is_bool()) type_error("a boolean", type_);
    return bool_;
}

double Json::as_number() const {
    if (!is_number()) type_error("a number", type_);
    return number_;
}

int64_t Json::as_int() const {
    double v = as_number();
    if (v != std::floor(v) || std::fabs(v) > kMaxExactInt)
        throw JsonError("JSON: expected an integer, found " + dump());
    return int64_t(v);
}

const std::string& Json::as_string() const {
    if (!is_string()) type_error("a string", type_);
    return string_;
}

const Json::Array& Json::as_array() const {
    if (!is_array()) type_error("an array", type_);
    return array_;
}

Json::Array& Json::as_array() {
    if (!is_array()) type_error("an array", type_);
    return array_;
}

const Json::Object& Json::as_object() const {
    if (!is_object()) type_error("an object", type_);
    return object_;
}

const Json* Json::find(const std::string& key) const {
    for (const auto& [k, v] : as_object())
        if (k == key) return &v;
    return nullptr;
}

const Json& Json::at(const std::string& key) const {
    const Json* v = find(key);
    if (!v) throw JsonError("JSON: missing key \"" + key + "\"");
    return *v;
}

void Json::set(const std::string& key, Json value) {
    if (!is_object()) type_error("an object", type_);
    for (auto& [k, v] : object_)
        if (k == key) {
            v = std::move(value);
            return;
        }
    object_.emplace_back(key, std::move(value));
}

const Json& Json::at(size_t index) const {
    const Array& a = as_array();
    if (index >= a.size())
        throw JsonError("JSON: index " + std::to_string(index) + " past the end of an array of " +
                        std::to_string(a.size()));
    return a[index];
}

void Json::push_back(Json value) { as_array().push_back(std::move(value)); }

size_t Json::size() const {
    if (is_array()) return array_.size();
    if (is_object()) return object_.size();
    type_error("an array or an object", type_);
}

std::string Json::dump() const {
    std::string out;
    dump_value(*this, out);
    return out;
}

Json Json::parse(const std::string& text) { return Parser(text).parse_document(); }

}  // namespace gnet
