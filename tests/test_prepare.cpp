// gnet prepare end to end: on a generated collection (every machine) and on ../shared/data.
#include <doctest/doctest.h>
#include <sndfile.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include "audio/npy.h"
#include "tests/helpers.h"
#include "train/csv.h"
#include "train/dataset.h"

using namespace gnet;
using gnet::test::run_gnet;
using gnet::test::TempDir;
using gnet::test::write_text;
namespace fs = std::filesystem;

namespace {

// A sine-plus-clicks WAV of `seconds` at `rate` Hz with `channels` channels.
void write_wav(const std::string& path, double seconds, double freq, int rate = 22050,
               int channels = 1) {
    fs::create_directories(fs::path(path).parent_path());
    SF_INFO info{};
    info.samplerate = rate;
    info.channels = channels;
    info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
    SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
    REQUIRE(f != nullptr);
    int64_t n = int64_t(seconds * rate);
    std::vector<float> buf(size_t(n * channels));
    for (int64_t i = 0; i < n; ++i)
        for (int c = 0; c < channels; ++c)
            buf[size_t(i * channels + c)] =
                0.4f * float(std::sin(2 * M_PI * freq * double(i) / rate)) +
                ((i % (rate / 4)) < 40 ? 0.3f : 0.0f);
    sf_writef_float(f, buf.data(), n);
    sf_close(f);
}

std::string q(const std::string& s) {
    return "'" + s + "'";
}

struct Manifest {
    std::vector<std::string> header;
    std::vector<std::vector<std::string>> rows;
};

Manifest read_manifest(const std::string& data_dir) {
    auto recs = csv_read_file(data_dir + "/manifest.csv");
    Manifest m;
    REQUIRE(!recs.empty());
    m.header = recs[0].fields;
    for (size_t i = 1; i < recs.size(); ++i)
        m.rows.push_back(recs[i].fields);
    return m;
}

// Checks the invariants of a prepared folder (either layout); returns chunks per split.
std::map<std::string, int> check_prepared(const std::string& data, size_t n_genres) {
    Manifest m = read_manifest(data);
    const bool sharded = !m.header.empty() && m.header[0] == "shard";
    const size_t K = sharded ? 5 : 4, f_split = sharded ? 2 : 1;
    REQUIRE(m.header.size() == K + n_genres);
    CHECK(m.header[K - 1] == "start_s");
    std::map<std::string, std::string> split_of_track;
    std::map<std::string, int> per_split;
    std::set<std::string> files;
    for (const auto& row : m.rows) {
        REQUIRE(row.size() == m.header.size());
        const std::string& split = row[f_split];
        CHECK((split == "train" || split == "val"));
        if (!sharded) CHECK(row[0].rfind(split + "/", 0) == 0);
        auto [it, fresh] = split_of_track.emplace(row[f_split + 1], split);
        CHECK(it->second == split);  // a track never sits in both splits
        per_split[split] += 1;
        files.insert(row[0]);
    }
    // Every chunk reads back as a [0, 1] image (load_prepared checks the rest of the manifest).
    PreparedData d = load_prepared(data);
    std::vector<float> x(kChunkFloats);
    for (int c = 0; c < d.num_chunks(); ++c) {
        d.read_chunk(c, x.data());
        CHECK(*std::min_element(x.begin(), x.end()) >= 0.0f);
        CHECK(*std::max_element(x.begin(), x.end()) <= 1.0f);
    }
    if (sharded) {
        CHECK(fs::exists(data + "/shards/index.csv"));
        CHECK_FALSE(fs::exists(data + "/train"));
        for (const auto& e : fs::directory_iterator(data + "/shards"))
            if (e.path().extension() == ".npy")
                CHECK(files.count("shards/" + e.path().filename().string()) == 1);
    } else {
        for (const std::string& f : files) {
            NpyArray a = npy_read(data + "/" + f);
            CHECK(a.shape == std::vector<int64_t>{128, 431});
        }
        // Every .npy on disk is in the manifest and vice versa.
        size_t on_disk = 0;
        for (const char* split : {"train", "val"})
            for (const auto& e : fs::directory_iterator(data + "/" + split)) {
                ++on_disk;
                CHECK(files.count(std::string(split) + "/" + e.path().filename().string()) == 1);
            }
        CHECK(on_disk == files.size());
    }
    CHECK(fs::exists(data + "/genres.txt"));
    CHECK(fs::exists(data + "/prepare.json"));
    CHECK_FALSE(fs::exists(data + "/.partial"));
    return per_split;
}

}  // namespace

TEST_CASE("prepare a generated folder-per-genre collection, with bad files skipped") {
    TempDir dir;
    const std::string music = dir.file("my music"), data = dir.file("data ü");
    for (int t = 0; t < 4; ++t) {
        write_wav(music + "/low tones/t" + std::to_string(t) + ".wav", 12.0, 220.0 + 10 * t);
        write_wav(music + "/high/ünï " + std::to_string(t) + ".wav", 21.0, 3000.0 + 50 * t, 44100,
                  2);
    }
    write_wav(music + "/high/short.wav", 4.0, 1000.0);                 // shorter than a chunk
    write_text(music + "/low tones/broken.wav", "this is not audio");  // corrupt

    auto r = run_gnet("prepare " + q(music) + " --out " + q(data) + " --device cpu --seed 1");
    INFO(r.out, r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.err.find("broken.wav") != std::string::npos);
    CHECK(r.err.find("short.wav") != std::string::npos);
    CHECK(r.err.find("shorter than one 10 s chunk") != std::string::npos);
    CHECK(r.out.find("skipped 2") != std::string::npos);
    CHECK(r.out.find("low tones") != std::string::npos);
    CHECK(gnet::test::read_text(data + "/genres.txt") == "high\nlow tones\n");
    auto per_split = check_prepared(data, 2);
    // 4 x 1 chunk (12 s) + 4 x 2 chunks (21 s) = 12 chunks; 20% of 8 tracks = 2 val tracks.
    CHECK(per_split["train"] + per_split["val"] == 12);
    CHECK(per_split["val"] >= 2);

    // A second run into the same folder refuses; --force rebuilds the same result.
    auto again = run_gnet("prepare " + q(music) + " --out " + q(data) + " --device cpu --seed 1");
    CHECK(again.exit_code == 1);
    CHECK(again.err.find("--force") != std::string::npos);
    std::string manifest = gnet::test::read_text(data + "/manifest.csv");
    auto forced =
        run_gnet("prepare " + q(music) + " --out " + q(data) + " --device cpu --seed 1 --force");
    CHECK(forced.exit_code == 0);
    CHECK(gnet::test::read_text(data + "/manifest.csv") == manifest);
}

TEST_CASE("prepare with a labels table; errors and an unusable collection") {
    TempDir dir;
    const std::string music = dir.file("m"), data = dir.file("d");
    write_wav(music + "/a.wav", 10.5, 440);
    write_wav(music + "/b.wav", 10.5, 880);
    write_wav(music + "/c.wav", 10.5, 660);
    write_text(dir.file("labels.csv"), "track,x,y\na.wav,1,1\nb.wav,1,0\nc.wav,0,1\n");
    auto r = run_gnet("prepare " + q(music) + " --labels " + q(dir.file("labels.csv")) + " --out " +
                      q(data) + " --device cpu --val-fraction 0.34");
    INFO(r.out, r.err);
    REQUIRE(r.exit_code == 0);
    auto per_split = check_prepared(data, 2);
    CHECK(per_split["train"] + per_split["val"] == 3);

    write_text(dir.file("bad.csv"), "track,x,y\na.wav,1,2\n");
    auto bad = run_gnet("prepare " + q(music) + " --labels " + q(dir.file("bad.csv")) + " --out " +
                        q(dir.file("d2")) + " --device cpu");
    CHECK(bad.exit_code == 1);
    CHECK(bad.err.find("bad.csv:2") != std::string::npos);

    TempDir junk;
    write_text(junk.file("g/x.wav"), "");
    fs::create_directories(junk.file("g"));
    write_text(junk.file("g/x.wav"), "garbage");
    auto none =
        run_gnet("prepare " + q(junk.path()) + " --out " + q(junk.file("out")) + " --device cpu");
    CHECK(none.exit_code == 1);
    CHECK(none.err.find("none of the 1 labelled tracks") != std::string::npos);
}

TEST_CASE("prepare ../shared/data/gtzan-mini (folder layout, FLAC)") {
    const std::string src = gnet::test::shared_data_dir() + "/gtzan-mini";
    if (!gnet::test::path_exists(src)) {
        MESSAGE("skipped: " << src << " is absent");
        return;
    }
    TempDir dir;
    auto r = run_gnet("prepare " + q(src) + " --out " + q(dir.file("data")) + " --device cpu");
    INFO(r.out, r.err);
    REQUIRE(r.exit_code == 0);
    auto per_split = check_prepared(dir.file("data"), 10);
    CHECK(per_split["train"] == 80);  // each clip gives one chunk; 2 val tracks per genre
    CHECK(per_split["val"] == 20);
}

TEST_CASE("prepare ../shared/data/emotify-dev (CSV labels, multi-label MP3 at 44.1 kHz)") {
    const std::string src = gnet::test::shared_data_dir() + "/emotify-dev";
    if (!gnet::test::path_exists(src)) {
        MESSAGE("skipped: " << src << " is absent");
        return;
    }
    TempDir dir;
    auto r = run_gnet("prepare " + q(src) + " --labels " + q(src + "/genres.csv") + " --out " +
                      q(dir.file("data")) + " --device cpu");
    INFO(r.out, r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.err.find("'new_age' has no positive") != std::string::npos);
    auto per_split = check_prepared(dir.file("data"), 10);
    CHECK(per_split["train"] + per_split["val"] > 500);  // ~100 tracks x ~6 chunks
    CHECK(per_split["val"] > 80);
}
