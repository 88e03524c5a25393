// Labels from CSV tables and genre folders, and the track-level split.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <set>

#include "kernels/error.h"
#include "tests/helpers.h"
#include "train/labels.h"
#include "train/split.h"

using namespace gnet;
using gnet::test::TempDir;
using gnet::test::write_text;
namespace fs = std::filesystem;

namespace {

void touch_audio(const TempDir& dir, const std::string& rel) {
    fs::create_directories(fs::path(dir.file(rel)).parent_path());
    write_text(dir.file(rel), "not decoded by these tests");
}

std::string error_of(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("labels from a CSV table: multi-hot rows, quoting, warnings with line numbers") {
    TempDir dir;
    touch_audio(dir, "rock/a b.mp3");
    touch_audio(dir, "pop/ünï,code.flac");
    touch_audio(dir, "unlisted.wav");
    write_text(dir.file("labels.csv"),
               "track,rock,pop,jazz\n"
               "rock/a b.mp3,1,1,0\n"
               "\"pop/ünï,code.flac\",0,1,0\n"
               "missing.mp3,1,0,0\n");
    LabelSet s = labels_from_csv(dir.file("labels.csv"), dir.path());
    CHECK(s.genres == std::vector<std::string>{"rock", "pop", "jazz"});
    REQUIRE(s.tracks.size() == 2);
    CHECK(s.tracks[0].path == "pop/ünï,code.flac");
    CHECK(s.tracks[0].line == 3);
    CHECK(s.tracks[1].labels == std::vector<uint8_t>{1, 1, 0});
    std::string all;
    for (const auto& w : s.warnings)
        all += w + "\n";
    CHECK(all.find("labels.csv:4: missing.mp3: no such file") != std::string::npos);
    CHECK(all.find("unlisted.wav: no row") != std::string::npos);
    CHECK(all.find("genre 'jazz' has no positive") != std::string::npos);
    CHECK(genre_counts(s) == std::vector<int64_t>{1, 2, 0});
}

TEST_CASE("labels CSV errors name the file and line") {
    TempDir dir;
    touch_audio(dir, "a.mp3");
    touch_audio(dir, "b.mp3");
    struct Case {
        std::string csv, expect;
    };
    std::vector<Case> cases = {
        {"", "empty labels file"},
        {"file,rock\na.mp3,1\n", "labels.csv:1: the first column must be 'track'"},
        {"track\na.mp3\n", "labels.csv:1: no genre columns"},
        {"track,rock,rock\n", "labels.csv:1: genre 'rock' appears twice"},
        {"track,rock,\n", "labels.csv:1: genre column 3 has no name"},
        {"track,rock,pop\na.mp3,1\n", "labels.csv:2: 2 cells where the header has 3"},
        {"track,rock\na.mp3,yes\n", "labels.csv:2: cell 'yes' for genre 'rock' is not 0 or 1"},
        {"track,rock\na.mp3,1\nb.mp3,0\n./a.mp3,0\n",
         "labels.csv:4: track 'a.mp3' already listed on line 2"},
        {"track,rock\n\"a.mp3,1\n", "labels.csv:2: malformed CSV"},
    };
    for (const Case& c : cases) {
        CAPTURE(c.csv);
        write_text(dir.file("labels.csv"), c.csv);
        std::string err = error_of([&] { labels_from_csv(dir.file("labels.csv"), dir.path()); });
        CHECK(err.find(c.expect) != std::string::npos);
    }
}

TEST_CASE("labels from genre folders") {
    TempDir dir;
    touch_audio(dir, "rock/x.mp3");
    touch_audio(dir, "rock/live/y.flac");
    touch_audio(dir, "jazz/z.wav");
    touch_audio(dir, "loose.ogg");
    write_text(dir.file("rock/notes.txt"), "not audio");
    LabelSet s = labels_from_folders(dir.path());
    CHECK(s.genres == std::vector<std::string>{"jazz", "rock"});
    REQUIRE(s.tracks.size() == 3);
    CHECK(s.tracks[0].path == "jazz/z.wav");
    CHECK(s.tracks[0].labels == std::vector<uint8_t>{1, 0});
    CHECK(s.tracks[1].path == "rock/live/y.flac");
    CHECK(s.tracks[1].labels == std::vector<uint8_t>{0, 1});
    REQUIRE(s.warnings.size() == 1);
    CHECK(s.warnings[0].find("loose.ogg: not inside a genre folder") != std::string::npos);

    TempDir empty;
    CHECK(error_of([&] { labels_from_folders(empty.path()); }).find("no audio files") !=
          std::string::npos);
    CHECK(error_of([&] { labels_from_folders(empty.file("nope")); }).find("not a folder") !=
          std::string::npos);
}

TEST_CASE("split: seeded, by track, fraction respected, every genre with >= 2 tracks in val") {
    // 10 genres x 10 tracks, single label (like gtzan-mini), plus a rare multi-label genre.
    std::vector<std::vector<uint8_t>> labels;
    for (int g = 0; g < 10; ++g)
        for (int t = 0; t < 10; ++t) {
            std::vector<uint8_t> l(11, 0);
            l[size_t(g)] = 1;
            if (g == 3 && t < 2) l[10] = 1;  // genre 10: exactly two tracks
            labels.push_back(l);
        }
    std::vector<bool> a = split_tracks(labels, 0.2, 7);
    CHECK(a == split_tracks(labels, 0.2, 7));
    CHECK(a != split_tracks(labels, 0.2, 8));
    CHECK(std::count(a.begin(), a.end(), true) == 20);
    for (size_t g = 0; g < 11; ++g) {
        int val = 0, train = 0;
        for (size_t t = 0; t < labels.size(); ++t)
            if (labels[t][g]) (a[t] ? val : train) += 1;
        CAPTURE(g);
        CHECK(val >= 1);
        CHECK(train >= 1);
        if (g < 10) CHECK(val == 2);  // stratified: the genre's share
    }
    std::vector<bool> none = split_tracks(labels, 0.0, 1);
    CHECK(std::count(none.begin(), none.end(), true) == 0);
    CHECK_THROWS_AS(split_tracks(labels, 1.0, 1), Error);
}

TEST_CASE("split keeps a genre with a single track in training") {
    std::vector<std::vector<uint8_t>> labels = {{1, 0}, {1, 0}, {1, 1}, {1, 0}};
    for (uint64_t seed = 0; seed < 20; ++seed) {
        std::vector<bool> s = split_tracks(labels, 0.5, seed);
        CHECK_FALSE(s[2]);
    }
}

TEST_CASE("seeded_permutation is a permutation and depends on the seed") {
    auto p = seeded_permutation(50, 3);
    std::set<size_t> u(p.begin(), p.end());
    CHECK(u.size() == 50);
    CHECK(*u.rbegin() == 49);
    CHECK(p == seeded_permutation(50, 3));
    CHECK(p != seeded_permutation(50, 4));
}
