// .npy read/write: round trips (float32, int64, versions 1.0 and 2.0) and every malformed case.
#include <doctest/doctest.h>

#include <cstring>

#include "audio/npy.h"
#include "kernels/error.h"
#include "tests/check.h"
#include "tests/helpers.h"

using namespace gnet;
using gnet::test::TempDir;

namespace {

// A hand-built file: version byte, header dict, then `data_bytes` of payload.
std::string make_npy(int version, const std::string& dict, size_t data_bytes) {
    std::string out("\x93NUMPY", 6);
    out += char(version);
    out += char(0);
    size_t prefix = version == 1 ? 10 : 12;
    std::string h = dict;
    while ((prefix + h.size() + 1) % 64)
        h += ' ';
    h += '\n';
    for (size_t i = 0; i < (version == 1 ? 2u : 4u); ++i)
        out += char((h.size() >> (8 * i)) & 0xff);
    out += h;
    out.append(data_bytes, '\0');
    return out;
}

std::string error_of(const std::string& path) {
    try {
        npy_read(path);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("npy float32 round trip keeps shape and values") {
    TempDir dir;
    std::vector<float> v(2 * 3 * 5);
    for (size_t i = 0; i < v.size(); ++i)
        v[i] = float(i) * 0.25f - 3.0f;
    npy_write(dir.file("a.npy"), v.data(), {2, 3, 5});
    NpyArray a = npy_read(dir.file("a.npy"));
    CHECK(a.dtype == NpyDtype::F32);
    CHECK(a.shape == std::vector<int64_t>{2, 3, 5});
    GNET_CHECK_CLOSE(a.f32, v, (gnet::test::Tolerance{0, 0}));
    // The header is 64-byte aligned as numpy writes it.
    std::string raw = gnet::test::read_text(dir.file("a.npy"));
    CHECK((raw.size() - v.size() * 4) % 64 == 0);
}

TEST_CASE("npy int64 round trip, scalar-like and empty shapes") {
    TempDir dir;
    std::vector<int64_t> v = {-5, 0, 7, int64_t(1) << 40};
    npy_write(dir.file("i.npy"), v.data(), {4});
    NpyArray a = npy_read(dir.file("i.npy"));
    CHECK(a.dtype == NpyDtype::I64);
    CHECK(a.shape == std::vector<int64_t>{4});
    CHECK(a.i64 == v);

    float one = 1.5f;
    npy_write(dir.file("s.npy"), &one, {});
    NpyArray s = npy_read(dir.file("s.npy"));
    CHECK(s.shape.empty());
    REQUIRE(s.f32.size() == 1);
    CHECK(s.f32[0] == 1.5f);

    npy_write(dir.file("e.npy"), static_cast<const float*>(nullptr), {0, 3});
    NpyArray e = npy_read(dir.file("e.npy"));
    CHECK(e.shape == std::vector<int64_t>{0, 3});
    CHECK(e.f32.empty());
}

TEST_CASE("npy header text matches numpy's spelling") {
    std::string h = npy_header(NpyDtype::F32, {128, 431});
    CHECK(h.find("{'descr': '<f4', 'fortran_order': False, 'shape': (128, 431), }") !=
          std::string::npos);
    CHECK(npy_header(NpyDtype::I64, {7}).find("'shape': (7,)") != std::string::npos);
    CHECK(h.size() % 64 == 0);
    CHECK(h.back() == '\n');
}

TEST_CASE("npy version 2.0 files are read") {
    TempDir dir;
    std::string f = make_npy(2, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 8);
    float vals[2] = {3.0f, -1.0f};
    std::memcpy(&f[f.size() - 8], vals, 8);
    gnet::test::write_text(dir.file("v2.npy"), f);
    NpyArray a = npy_read(dir.file("v2.npy"));
    REQUIRE(a.f32.size() == 2);
    CHECK(a.f32[1] == -1.0f);
}

TEST_CASE("npy: every malformed file is an error naming the file") {
    TempDir dir;
    struct Case {
        const char* name;
        std::string bytes;
        const char* expect;
    };
    const std::string good = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    std::vector<Case> cases = {
        {"empty.npy", "", "too short"},
        {"magic.npy", std::string("\x93NUMPX\x01\x00", 8) + std::string(100, ' '), "bad magic"},
        {"version.npy", make_npy(9, good, 24), "version"},
        {"truncated_header.npy", make_npy(1, good, 24).substr(0, 30), "truncated header"},
        {"truncated_data.npy", make_npy(1, good, 20), "truncated data"},
        {"trailing.npy", make_npy(1, good, 28), "trailing"},
        {"bigendian.npy",
         make_npy(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", 24),
         "big-endian"},
        {"fortran.npy",
         make_npy(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 24), "Fortran"},
        {"dtype.npy",
         make_npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", 48), "dtype"},
        {"nodict.npy", make_npy(1, "not a dict", 0), "malformed"},
        {"badshape.npy",
         make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }", 24), "shape"},
        {"missingkey.npy", make_npy(1, "{'descr': '<f4', 'shape': (2, 3), }", 24), "lacks"},
        {"unterminated.npy", make_npy(1, "{'descr: <f4", 0), "unterminated"},
    };
    for (const Case& c : cases) {
        CAPTURE(c.name);
        std::string path = dir.file(c.name);
        gnet::test::write_text(path, c.bytes);
        std::string err = error_of(path);
        CHECK(err.find(path) != std::string::npos);
        CHECK(err.find(c.expect) != std::string::npos);
    }
    CHECK(error_of(dir.file("does_not_exist.npy")).find("cannot open") != std::string::npos);
}

TEST_CASE("npy_read_f32 checks the expected shape") {
    TempDir dir;
    std::vector<float> v(6, 1.0f);
    npy_write(dir.file("a.npy"), v.data(), {2, 3});
    CHECK(npy_read_f32(dir.file("a.npy"), {2, 3}).size() == 6);
    CHECK_THROWS_WITH_AS(npy_read_f32(dir.file("a.npy"), {3, 2}),
                         doctest::Contains("where (3, 2) was expected"), Error);
}

TEST_CASE("npy writes are atomic: a failed write leaves the old file") {
    TempDir dir;
    std::vector<float> v(4, 2.0f);
    npy_write(dir.file("a.npy"), v.data(), {4});
    CHECK_THROWS_AS(npy_write(dir.file("no_such_dir/a.npy"), v.data(), {4}), Error);
    CHECK(npy_read(dir.file("a.npy")).f32 == v);
}

TEST_CASE("npy: shapes that overflow or exceed the file are refused before allocating (18.8)") {
    gnet::test::TempDir dir;
    auto tiny = [&](const std::string& name, const std::vector<int64_t>& shape) {
        std::string bytes = gnet::npy_header(gnet::NpyDtype::F32, shape);
        bytes.append(128 - bytes.size() % 128, '\0');
        gnet::test::write_text(dir.file(name), bytes);
        return dir.file(name);
    };
    const std::string big = tiny("big.npy", {128, 431, 72000});
    CHECK_THROWS_WITH_AS(gnet::npy_read_f32(big, {128, 431}),
                         doctest::Contains("big.npy: shape (128, 431, 72000) where (128, 431)"),
                         gnet::Error);
    CHECK_THROWS_WITH_AS(gnet::npy_read(big), doctest::Contains("truncated data"), gnet::Error);
    CHECK_THROWS_WITH_AS(gnet::npy_read(tiny("huge.npy", {int64_t(1) << 40})),
                         doctest::Contains("huge.npy: not a valid .npy file: truncated data"),
                         gnet::Error);
    CHECK_THROWS_WITH_AS(gnet::npy_read(tiny("wrap.npy", {int64_t(1) << 40, int64_t(1) << 40, 16})),
                         doctest::Contains("too large"), gnet::Error);
    const std::string bytes = gnet::test::read_text(big);
    CHECK_THROWS_WITH_AS(gnet::npy_parse(bytes.substr(0, 11), "x.npy"), doctest::Contains("x.npy"),
                         gnet::Error);
}
