// JSON, .safetensors and checkpoints: round trips, a file written by PyTorch's safetensors
// package, every corrupt-file case, metadata defaults, genre counts and shape/dtype errors.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>

#include "kernels/error.h"
#include "nn/checkpoint.h"
#include "nn/json.h"
#include "nn/model_init.h"
#include "nn/resnet18.h"
#include "nn/safetensors.h"
#include "tests/check.h"
#include "tests/helpers.h"

using namespace gnet;
using gnet::test::TempDir;

namespace {

StFile small_file() {
    StFile f;
    f.tensors.push_back({"w", StDtype::F32, {2, 3}, {1.5f, -2.f, 0.f, 3.25f, 1e-20f, -7.f}, {}});
    f.tensors.push_back({"count", StDtype::I64, {}, {}, {int64_t(1) << 40}});
    f.tensors.push_back({"empty", StDtype::F32, {0, 4}, {}, {}});
    f.tensors.push_back({"idx", StDtype::I64, {3}, {}, {-1, 0, 7}});
    f.metadata["a"] = "x";
    f.metadata["gnet.note"] = "{\"k\": [1, 2]}";
    return f;
}

// A file from a header text and `data_bytes` zero bytes of data.
std::string raw_file(const std::string& header, size_t data_bytes) {
    std::string out(8, '\0');
    uint64_t n = header.size();
    std::memcpy(out.data(), &n, 8);
    out += header;
    out.append(data_bytes, '\0');
    return out;
}

std::string parse_error(const std::string& bytes) {
    try {
        safetensors_parse(bytes, "bad.safetensors");
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

std::string read_checkpoint_error(const std::string& path,
                                  const std::optional<std::string>& genres = std::nullopt) {
    try {
        read_checkpoint(path, genres);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

StTensor* find_mut(StFile& f, const std::string& name) {
    for (StTensor& t : f.tensors)
        if (t.name == name) return &t;
    return nullptr;
}

}  // namespace

TEST_CASE("JSON parses strictly and writes back the same value") {
    Json j = json_parse(
        R"( {"a": [1, -2.5e3, true, false, null], "s": "q\"\\\/\n\u00e9\ud83c\udfb5", "o": {}} )");
    CHECK(json_number(j.at("a").at(1), "a[1]") == -2500.0);
    CHECK(j.at("s").get<std::string>() == "q\"\\/\n\xc3\xa9\xf0\x9f\x8e\xb5");
    CHECK(json_dump(json_parse(json_dump(j))) == json_dump(j));
    CHECK(json_dump(Json(0.1)) == "0.1");
    CHECK(json_dump(Json(int64_t(1) << 40)) == "1099511627776");
    for (const char* bad :
         {"", "{", "[1,]", "{\"a\":1,}", "{'a':1}", "01", "1.", "-", "nan", "[1] x",
          "{\"a\":1,\"a\":2}", "\"\\x\"", "\"\\ud800\"", "tru", "\"a\nb\"", "[1e999]", "/*c*/1"})
        CHECK_THROWS_AS(json_parse(bad), JsonError);
    std::string deep(100, '[');
    CHECK_THROWS_WITH_AS(json_parse(deep), doctest::Contains("nesting"), JsonError);
    CHECK_THROWS_AS(json_key(json_parse("{}"), "missing"), JsonError);
    CHECK_THROWS_AS(json_int(json_parse("1.5"), "x"), JsonError);
    CHECK_THROWS_AS(json_int(json_parse("1e300"), "x"), JsonError);
    CHECK_THROWS_AS(json_int(json_parse("18446744073709551615"), "x"), JsonError);
    CHECK(json_int(json_parse("-7"), "x") == -7);
}

TEST_CASE("JSON limits: node count, size, and duplicate keys found in linear time (issue 18.9)") {
    // 200k distinct keys: a linear-scan duplicate check took minutes at this size.
    std::string many = "{";
    for (int i = 0; i < 200000; ++i)
        many += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":0";
    many += "}";
    CHECK(json_parse(many).size() == 200000);
    std::string dup = many.substr(0, many.size() - 1) + ",\"k123456\":1}";
    CHECK_THROWS_WITH_AS(json_parse(dup), doctest::Contains("duplicate key \"k123456\""),
                         JsonError);
    // Duplicates are per object: the same key in two objects is fine.
    CHECK(json_parse(R"({"a":{"x":1},"b":{"x":2}})").size() == 2);
    JsonLimits small;
    small.max_nodes = 1000;
    std::string big_array = "[" + std::string(2000 * 2 - 1, ',') + "]";
    for (size_t i = 1; i < big_array.size() - 1; i += 2)
        big_array[i] = '0';
    CHECK_THROWS_WITH_AS(json_parse(big_array, small), doctest::Contains("more than 1000"),
                         JsonError);
    small.max_bytes = 10;
    CHECK_THROWS_WITH_AS(json_parse("[1,2,3,4,5,6]", small), doctest::Contains("limit"), JsonError);
}

TEST_CASE("JSON output: invalid UTF-8 escaped as \\xNN, floats at full precision (issue 18.16)") {
    OrderedJson o = {{"file", std::string("caf\xe9 \xff.mp3")}, {"p", double(0.123456789f)}};
    std::string text = json_dump(o);
    CHECK(text == R"({"file":"caf\\xE9 \\xFF.mp3","p":0.12345679104328156})");
    Json back = json_parse(text);  // valid JSON again
    CHECK(back.at("file").get<std::string>() == "caf\\xE9 \\xFF.mp3");
    CHECK(float(back.at("p").get<double>()) == 0.123456789f);
    CHECK(utf8_or_escaped("ok \xc3\xa9 \xed\xa0\x80 \xc0\xaf") ==
          "ok \xc3\xa9 \\xED\\xA0\\x80 \\xC0\\xAF");
}

TEST_CASE("safetensors round trip keeps names, order, dtypes, shapes, values and metadata") {
    TempDir dir;
    StFile f = small_file();
    safetensors_write(dir.file("a.safetensors"), f);
    std::string raw = gnet::test::read_text(dir.file("a.safetensors"));
    uint64_t n = 0;
    std::memcpy(&n, raw.data(), 8);
    CHECK(n % 8 == 0);  // data starts 8-byte aligned
    CHECK(raw[8] == '{');

    StFile g = safetensors_read(dir.file("a.safetensors"));
    REQUIRE(g.tensors.size() == f.tensors.size());
    for (size_t i = 0; i < f.tensors.size(); ++i) {
        CHECK(g.tensors[i].name == f.tensors[i].name);
        CHECK(g.tensors[i].dtype == f.tensors[i].dtype);
        CHECK(g.tensors[i].shape == f.tensors[i].shape);
        CHECK(g.tensors[i].f32 == f.tensors[i].f32);
        CHECK(g.tensors[i].i64 == f.tensors[i].i64);
    }
    CHECK(g.metadata == f.metadata);
    CHECK(g.find("count")->shape.empty());
    CHECK(g.find("nope") == nullptr);
    // Serialising what was read gives the same bytes.
    CHECK(safetensors_serialize(g) == raw);
}

TEST_CASE("safetensors reads a file written by PyTorch's safetensors package") {
    std::string path = gnet::test::fixtures_dir() + "/torch_small.safetensors";
    StFile f = safetensors_read(path);
    CHECK(f.metadata.at("writer") == "torch");
    CHECK(f.metadata.at("gnet.genres") == "[\"rock\",\"jazz\",\"metal\"]");
    const StTensor* w = f.find("layer.weight");
    REQUIRE(w);
    CHECK(w->dtype == StDtype::F32);
    CHECK(w->shape == std::vector<int64_t>{2, 3, 2, 2});
    for (size_t i = 0; i < w->f32.size(); ++i)
        CHECK(w->f32[i] == float(i) * 0.5f - 3.0f);
    const StTensor* nbt = f.find("bn.num_batches_tracked");
    REQUIRE(nbt);
    CHECK(nbt->dtype == StDtype::I64);
    CHECK(nbt->shape.empty());
    CHECK(nbt->i64 == std::vector<int64_t>{12345678901});
    const StTensor* v = f.find("bn.running_var");
    REQUIRE(v);
    CHECK(v->f32 == std::vector<float>{1.f, 2.f, 4.f});
}

TEST_CASE("safetensors: every corrupt file is an Error naming the file, never a crash") {
    const std::string ok = R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
    CHECK(parse_error(raw_file(ok, 8)).empty());

    // Header length.
    CHECK(parse_error(std::string("\x05\0\0", 3)).find("8-byte") != std::string::npos);
    std::string too_long = raw_file(ok, 8);
    uint64_t big = 1000;
    std::memcpy(too_long.data(), &big, 8);
    CHECK(parse_error(too_long).find("runs past the end") != std::string::npos);
    big = uint64_t(1) << 62;
    std::memcpy(too_long.data(), &big, 8);
    CHECK(parse_error(too_long).find("larger than") != std::string::npos);

    // Bad JSON / not an object / bad entries.
    CHECK(parse_error(raw_file(R"({"t":{"dtype":"F32",)", 8)).find("bad header") !=
          std::string::npos);
    CHECK(parse_error(raw_file("[1, 2]  ", 0)).find("'{'") != std::string::npos);
    CHECK(parse_error(raw_file(R"({"t":{"dtype":"F32","shape":[2]}})", 8)).find("'t'") !=
          std::string::npos);
    CHECK(parse_error(raw_file(R"({"t":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}})", 4))
              .find("unsupported dtype 'BF16'") != std::string::npos);
    CHECK(parse_error(raw_file(R"({"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8))
              .find("invalid shape") != std::string::npos);
    CHECK(parse_error(raw_file(R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8))
              .find("need 12") != std::string::npos);
    CHECK(parse_error(raw_file(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8))
              .find("increasing") != std::string::npos);
    CHECK(parse_error(raw_file(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", 8))
              .find("[begin, end]") != std::string::npos);
    CHECK(
        parse_error(raw_file(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})", 8))
            .find("unexpected header field") != std::string::npos);
    CHECK(
        parse_error(
            raw_file(
                R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"t":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                16))
            .find("duplicate key") != std::string::npos);
    CHECK(parse_error(raw_file(R"({"__metadata__":{"a":1}})", 0)).find("not a string") !=
          std::string::npos);

    // Offsets: overlap, hole, past the end (truncated file), bytes left over.
    CHECK(
        parse_error(
            raw_file(
                R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                12))
            .find("overlaps") != std::string::npos);
    CHECK(parse_error(raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8))
              .find("hole") != std::string::npos);
    CHECK(parse_error(raw_file(ok, 5)).find("runs past the end of the data") != std::string::npos);
    CHECK(parse_error(raw_file(ok, 12)).find("after the last tensor") != std::string::npos);

    // Every truncation of a valid file is an Error.
    std::string good = safetensors_serialize(small_file());
    for (size_t cut = 0; cut < good.size(); cut += 3) {
        std::string e = parse_error(good.substr(0, cut));
        CHECK_MESSAGE(e.find("bad.safetensors") != std::string::npos, "cut at " << cut);
    }
    // Random byte flips and truncated headers: an Error or a valid parse, never another exception.
    uint64_t state = 12345;
    int errors = 0;
    for (int trial = 0; trial < 3000; ++trial) {
        std::string m = good;
        for (int f = 0; f < 1 + trial % 3; ++f) {
            state = state * 6364136223846793005ull + 1442695040888963407ull;
            size_t pos = size_t(state >> 33) % std::min<size_t>(m.size(), 8 + 200);
            m[pos] = char((state >> 13) & 0xff);
        }
        try {
            safetensors_parse(m, "fuzz.safetensors");
        } catch (const Error& e) {
            ++errors;
            CHECK(std::string(e.what()).find("fuzz.safetensors") != std::string::npos);
        }
    }
    CHECK(errors > 2000);
    // Reading a missing file names it.
    CHECK_THROWS_WITH(safetensors_read("/nonexistent/x.safetensors"),
                      doctest::Contains("/nonexistent/x.safetensors"));
}

TEST_CASE("checkpoint metadata: written values come back; missing keys take the defaults") {
    CheckpointMeta m;
    m.genres = {"rock", "jazz", "folk \"acoustic\""};
    m.audio.top_db = 70;
    m.audio.chunk_seconds = 5;
    m.thresholds = {0.3f, 0.5f, 0.75f};
    m.train = "{\"epochs\": 3}";
    auto md = checkpoint_metadata(m);
    CHECK(md.at("gnet.thresholds") == "[0.3,0.5,0.75]");
    CheckpointMeta r = parse_checkpoint_metadata(md, 3, "x.safetensors", std::nullopt);
    CHECK(r.genres == m.genres);
    CHECK(r.audio == m.audio);
    CHECK(r.thresholds == m.thresholds);
    CHECK(r.train == m.train);

    CheckpointMeta d = parse_checkpoint_metadata({}, 4, "x.safetensors", std::nullopt);
    CHECK(d.genres == std::vector<std::string>{"genre_0", "genre_1", "genre_2", "genre_3"});
    CHECK(d.audio == AudioMeta{});
    CHECK(d.audio.sample_rate == 22050);
    CHECK(d.audio.n_fft == 2048);
    CHECK(d.audio.hop_length == 512);
    CHECK(d.audio.n_mels == 128);
    CHECK(d.thresholds == std::vector<float>(4, 0.5f));
    CHECK(d.train.empty());

    TempDir dir;
    gnet::test::write_text(dir.file("genres.txt"), "rock\n\n  jazz \r\nmetal\n");
    CheckpointMeta f = parse_checkpoint_metadata({}, 3, "x.safetensors", dir.file("genres.txt"));
    CHECK(f.genres == std::vector<std::string>{"rock", "jazz", "metal"});
    CHECK_THROWS_WITH(parse_checkpoint_metadata({}, 4, "x.safetensors", dir.file("genres.txt")),
                      doctest::Contains("lists 3 genres"));
    gnet::test::write_text(dir.file("dup.txt"), "rock\njazz\nrock\n");
    CHECK_THROWS_WITH(read_genres_file(dir.file("dup.txt")), doctest::Contains("dup.txt:3"));

    // Bad metadata values.
    auto err = [](std::map<std::string, std::string> md, int rows) {
        try {
            parse_checkpoint_metadata(md, rows, "m.safetensors", std::nullopt);
        } catch (const Error& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    CHECK(err({{"gnet.genres", "[\"a\",\"b\"]"}}, 3).find("lists 2 genres but fc.weight has 3") !=
          std::string::npos);
    CHECK(err({{"gnet.genres", "[\"a\",\"a\"]"}}, 2).find("duplicate") != std::string::npos);
    CHECK(err({{"gnet.genres", "[\"a\","}}, 2).find("m.safetensors: metadata 'gnet.genres'") !=
          std::string::npos);
    CHECK(err({{"gnet.thresholds", "[0.5]"}}, 2).find("1 values for 2 genres") !=
          std::string::npos);
    CHECK(err({{"gnet.thresholds", "[0.5, 1.5]"}}, 2).find("[0, 1]") != std::string::npos);
    CHECK(err({{"gnet.audio", "{\"n_fft\": -1}"}}, 2).find("n_fft") != std::string::npos);
    CHECK(err({{"gnet.audio", "{\"n_fft\": \"big\"}"}}, 2).find("gnet.audio") != std::string::npos);
    CHECK(err({{"gnet.audio", "[]"}}, 2).find("not a JSON object") != std::string::npos);
    // Bounds on every field that sizes the model or predict's buffers (issue 18.10).
    CHECK(err({{"gnet.audio", "{\"chunk_seconds\": 60}"}}, 2).find("chunk_seconds 60 is outside") !=
          std::string::npos);
    CHECK(err({{"gnet.audio", "{\"sample_rate\": 8000000}"}}, 2).find("sample_rate 8000000") !=
          std::string::npos);
    CHECK(err({{"gnet.audio", "{\"n_mels\": 100000}"}}, 2).find("n_mels") != std::string::npos);
    CHECK(err({{"gnet.audio", "{\"hop_length\": 1}"}}, 2).find("hop_length") != std::string::npos);
    CHECK(err({{"gnet.audio", "{\"n_mels\": 512, \"chunk_seconds\": 30}"}}, 2).find("values") !=
          std::string::npos);
    CHECK(err({{"gnet.audio", "{\"sample_rate\": 22050.5}"}}, 2).find("integer") !=
          std::string::npos);
    CHECK(err({{"gnet.genres", "[\"a\\nb\", \"c\"]"}}, 2).find("control character") !=
          std::string::npos);
}

TEST_CASE("checkpoint: non-finite weights are refused at load (issue 18.2)") {
    TempDir dir;
    StFile state = resnet18_pattern_state(3);
    for (StTensor& t : state.tensors)
        if (t.name == "layer2.0.conv1.weight") t.f32[17] = std::nanf("");
    safetensors_write(dir.file("nan.safetensors"), state);
    CHECK(read_checkpoint_error(dir.file("nan.safetensors"))
              .find("tensor 'layer2.0.conv1.weight' holds a non-finite value (NaN) at index 17") !=
          std::string::npos);
}

TEST_CASE(
    "checkpoint: a state_dict without metadata, wrong genre counts, wrong shapes and dtypes") {
    TempDir dir;
    const std::string path = dir.file("m.safetensors");
    StFile state = resnet18_pattern_state(3);
    safetensors_write(path, state);

    Checkpoint ck = read_checkpoint(path);
    CHECK(ck.num_genres() == 3);
    CHECK(ck.meta.genres == std::vector<std::string>{"genre_0", "genre_1", "genre_2"});
    CHECK(ck.meta.thresholds == std::vector<float>(3, 0.5f));
    CHECK(ck.state.tensors.size() == resnet18_state_layout(3).size());

    // Genre names from metadata that disagree with fc.weight.
    StFile named = resnet18_pattern_state(3);
    named.metadata["gnet.genres"] = "[\"a\",\"b\",\"c\",\"d\"]";
    safetensors_write(path, named);
    CHECK(read_checkpoint_error(path).find("lists 4 genres but fc.weight has 3 rows") !=
          std::string::npos);
    // Genre names from a genres file when the metadata has none.
    safetensors_write(path, state);
    gnet::test::write_text(dir.file("three.txt"), "rock\njazz\nmetal\n");
    CHECK(read_checkpoint(path, dir.file("three.txt")).meta.genres ==
          std::vector<std::string>{"rock", "jazz", "metal"});
    // A genres file that disagrees.
    gnet::test::write_text(dir.file("genres.txt"), "a\nb\n");
    CHECK(read_checkpoint_error(path, dir.file("genres.txt")).find("2 genres") !=
          std::string::npos);
    // fc.bias rows that disagree with fc.weight rows.
    StFile bad = resnet18_pattern_state(3);
    StTensor* fb = find_mut(bad, "fc.bias");
    fb->shape = {4};
    fb->f32.assign(4, 0.f);
    safetensors_write(path, bad);
    std::string e = read_checkpoint_error(path);
    CHECK(e.find("m.safetensors") != std::string::npos);
    CHECK(e.find("'fc.bias' has shape [4], expected [3]") != std::string::npos);
    // A wrong shape in the middle names the tensor.
    bad = resnet18_pattern_state(3);
    StTensor* w = find_mut(bad, "layer3.0.downsample.0.weight");
    w->shape = {256, 128, 3, 3};
    w->f32.assign(256 * 128 * 9, 0.f);
    safetensors_write(path, bad);
    e = read_checkpoint_error(path);
    CHECK(e.find("'layer3.0.downsample.0.weight' has shape [256, 128, 3, 3], expected [256, 128, "
                 "1, 1]") != std::string::npos);
    // num_batches_tracked as F32.
    bad = resnet18_pattern_state(3);
    StTensor* nbt = find_mut(bad, "layer2.1.bn2.num_batches_tracked");
    nbt->dtype = StDtype::F32;
    nbt->i64.clear();
    nbt->f32 = {1.f};
    safetensors_write(path, bad);
    CHECK(read_checkpoint_error(path).find(
              "'layer2.1.bn2.num_batches_tracked' has dtype F32, expected I64") !=
          std::string::npos);
    // A missing tensor and an extra one.
    bad = resnet18_pattern_state(3);
    bad.tensors.erase(bad.tensors.begin() + 3);
    safetensors_write(path, bad);
    CHECK(read_checkpoint_error(path).find("'bn1.running_mean' is missing") != std::string::npos);
    bad = resnet18_pattern_state(3);
    bad.tensors.push_back({"fc.extra", StDtype::F32, {1}, {0.f}, {}});
    safetensors_write(path, bad);
    CHECK(read_checkpoint_error(path).find("unexpected tensor 'fc.extra'") != std::string::npos);
    // Not a ResNet18 at all.
    safetensors_write(path, small_file());
    CHECK(read_checkpoint_error(path).find("'fc.weight' is missing") != std::string::npos);
}

TEST_CASE("checkpoint: a model written and read back is the same model; optimizer state too") {
    TempDir dir;
    ResNet18Config cfg;
    cfg.num_genres = 4;
    cfg.max_batch = 1;
    cfg.height = 32;
    cfg.width = 32;
    ResNet18 a(cfg, Device::CPU);
    a.init(7);
    CheckpointMeta meta;
    meta.genres = {"rock", "pop", "jazz", "folk"};
    meta.train = "{\"seed\":7}";
    write_checkpoint(dir.file("m.safetensors"), a, meta);
    write_optimizer_state(dir.file("opt.safetensors"), a);

    Checkpoint ck = read_checkpoint(dir.file("m.safetensors"));
    CHECK(ck.meta.genres == meta.genres);
    CHECK(ck.meta.thresholds == std::vector<float>(4, 0.5f));
    CHECK(ck.meta.train == meta.train);
    ResNet18 b(cfg, Device::CPU);
    load_checkpoint(ck, b);
    StFile sa = a.state_dict(), sb = b.state_dict();
    REQUIRE(sa.tensors.size() == sb.tensors.size());
    for (size_t i = 0; i < sa.tensors.size(); ++i) {
        CHECK(sa.tensors[i].f32 == sb.tensors[i].f32);
        CHECK(sa.tensors[i].i64 == sb.tensors[i].i64);
    }
    read_optimizer_state(dir.file("opt.safetensors"), b);
    CHECK(b.adam_steps() == 0);

    cfg.num_genres = 5;
    ResNet18 c(cfg, Device::CPU);
    CHECK_THROWS_WITH(load_checkpoint(ck, c), doctest::Contains("built for 5"));
    CHECK_THROWS_WITH(write_checkpoint(dir.file("x.safetensors"), c, meta),
                      doctest::Contains("4 genre names for a model with 5"));
    CHECK_THROWS_WITH(read_optimizer_state(dir.file("opt.safetensors"), c),
                      doctest::Contains("exp_avg.fc.weight"));
}
