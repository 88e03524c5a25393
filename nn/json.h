// A small, strict JSON value: enough for safetensors headers, checkpoint metadata and test
// fixtures. Parsing follows RFC 8259 exactly (no comments, no trailing commas, no NaN, no
// duplicate object keys, at most 64 levels of nesting); objects keep their keys in insertion
// order. Any violation throws a JsonError saying what is wrong and at which byte offset; callers
// add the file name.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "kernels/error.h"

namespace gnet {

class JsonError : public Error {
public:
    explicit JsonError(const std::string& what) : Error(what) {}
};

class Json {
public:
    enum class Type { Null, Bool, Number, String, Array, Object };
    using Array = std::vector<Json>;
    using Object = std::vector<std::pair<std::string, Json>>;  // insertion order

    Json() = default;  // null
    Json(bool b) : type_(Type::Bool), bool_(b) {}
    Json(double d) : type_(Type::Number), number_(d) {}
    Json(int v) : type_(Type::Number), number_(double(v)) {}
    Json(int64_t v) : type_(Type::Number), number_(double(v)) {}
    Json(const char* s) : type_(Type::String), string_(s) {}
    Json(std::string s) : type_(Type::String), string_(std::move(s)) {}
    static Json array(Array items = {});
    static Json object(Object members = {});

    Type type() const { return type_; }
    bool is_null() const { return type_ == Type::Null; }
    bool is_bool() const { return type_ == Type::Bool; }
    bool is_number() const { return type_ == Type::Number; }
    bool is_string() const { return type_ == Type::String; }
    bool is_array() const { return type_ == Type::Array; }
    bool is_object() const { return type_ == Type::Object; }

    // Typed access: a JsonError naming the expected and actual type when it does not fit.
    bool as_bool() const;
    double as_number() const;
    int64_t as_int() const;  // a number that is an exact integer within +-2^53
    const std::string& as_string() const;
    const Array& as_array() const;
    Array& as_array();
    const Object& as_object() const;

    // Objects: lookup (nullptr when absent), required lookup, insertion (replaces an old value).
    const Json* find(const std::string& key) const;
    const Json& at(const std::string& key) const;
    void set(const std::string& key, Json value);
    // Arrays.
    const Json& at(size_t index) const;
    void push_back(Json value);
    size_t size() const;  // elements of an array or members of an object

    // Compact text; numbers in the shortest form that reads back to the same double.
    std::string dump() const;
    static Json parse(const std::string& text);

private:
    Type type_ = Type::Null;
    bool bool_ = false;
    double number_ = 0;
    std::string string_;
    Array array_;  // C++17 allows vectors of a type still being defined
    Object object_;
};

const char* json_type_name(Json::Type type);

}  // namespace gnet
