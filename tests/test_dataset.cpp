// Prepared data folder and Loader: validation errors name manifest.csv:LINE or the .npy file;
// batches cover every chunk once per epoch; the order is a function of (seed, epoch).
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "audio/npy.h"
#include "kernels/error.h"
#include "tests/helpers.h"
#include "train/dataset.h"
#include "train/loader.h"
#include "train/synthetic_data.h"

using namespace gnet;
using gnet::test::TempDir;

namespace {

SyntheticDataOptions small_options() {
    SyntheticDataOptions o;
    o.train_tracks = 5;
    o.val_tracks = 2;
    o.chunks_per_track = 2;  // 10 train chunks, 4 val chunks
    return o;
}

// Replaces line `line` (1-based) of the manifest by `text`.
void replace_manifest_line(const std::string& dir, int line, const std::string& text) {
    std::string m = test::read_text(dir + "/manifest.csv");
    size_t pos = 0;
    for (int i = 1; i < line; ++i)
        pos = m.find('\n', pos) + 1;
    size_t end = m.find('\n', pos);
    test::write_text(dir + "/manifest.csv", m.substr(0, pos) + text + m.substr(end));
}

std::vector<std::vector<int>> epoch_batches(Loader& loader, int epoch) {
    loader.start_epoch(epoch);
    std::vector<std::vector<int>> out;
    while (const Batch* b = loader.next())
        out.push_back(b->chunks);
    return out;
}

}  // namespace

TEST_CASE("dataset: a synthetic prepared folder loads with quoted tracks, splits and labels") {
    TempDir tmp;
    write_synthetic_prepared(tmp.path(), small_options());
    PreparedData d = load_prepared(tmp.path());
    CHECK(d.genres == std::vector<std::string>{"rock", "jazz", "pop"});
    CHECK(d.num_chunks() == 14);
    CHECK(d.tracks.size() == 7);
    CHECK(d.tracks[0] == "a/tråck, 0.mp3");  // CSV-quoted in the manifest
    CHECK(d.split_chunks(Split::Train).size() == 10);
    CHECK(d.split_chunks(Split::Val).size() == 4);
    CHECK(d.chunks[1].start_s == 10);
    CHECK(d.chunks[1].track == d.chunks[0].track);
    CHECK(d.targets[0] == 1.f);  // track 0 is rock

    std::vector<int> val = d.split_chunks(Split::Val);
    TrackGroups groups = group_by_track(d, val);
    CHECK(groups.count() == 2);
    CHECK(groups.chunk_track == std::vector<int>{0, 0, 1, 1});
    std::vector<float> tt = track_targets(d, val, groups);
    CHECK(tt.size() == 6);
    CHECK(std::equal(tt.begin(), tt.begin() + 3, d.targets.begin() + size_t(val[0]) * 3));

    std::vector<float> x(kChunkFloats);
    d.read_chunk(0, x.data());
    CHECK(*std::max_element(x.begin(), x.end()) > 0.7f);

    // Positive weights: negatives / positives, clamped to [1, 100]; no positive -> 1.
    PreparedData w = d;
    for (size_t c = 0; c < size_t(w.num_chunks()); ++c)
        w.targets[c * 3 + 1] = 0;  // no jazz
    std::vector<int> all(size_t(w.num_chunks()));
    for (size_t i = 0; i < all.size(); ++i)
        all[i] = int(i);
    std::vector<float> pw = positive_weights(w, all);
    CHECK(pw[1] == 1.f);
    double rock = 0;
    for (int c : all)
        rock += w.targets[size_t(c) * 3];
    CHECK(pw[0] == doctest::Approx(std::max(1.0, (14 - rock) / rock)));
}

TEST_CASE("dataset: malformed manifests are errors naming manifest.csv:LINE") {
    TempDir tmp;
    write_synthetic_prepared(tmp.path(), small_options());
    const std::string m = test::read_text(tmp.file("manifest.csv"));
    auto expect_error = [&](int line, const std::string& text, const std::string& what) {
        test::write_text(tmp.file("manifest.csv"), m);
        replace_manifest_line(tmp.path(), line, text);
        const std::string expected = "manifest.csv:" + std::to_string(line) + ": " + what;
        CHECK_THROWS_WITH_AS(load_prepared(tmp.path()), doctest::Contains(expected.c_str()), Error);
    };
    expect_error(1, "file,split,track,start_s,rock,pop,jazz", "header does not match");
    expect_error(3, "train/000001.npy,test,x,0,1,0,0", "unknown split 'test'");
    expect_error(3, "train/000001.npy,train,x,0,1,2,0", "genre 'jazz' has '2'");
    expect_error(3, "train/000001.npy,train,x,zero,1,0,0", "start_s 'zero'");
    expect_error(3, "train/000001.npy,train,x,0,1,0", "6 fields where the header has 7");
    expect_error(3, "train/000000.npy,train,x,0,1,0,0", "file 'train/000000.npy' listed twice");
    expect_error(3, "train/000001.npy,val,\"a/tråck, 0.mp3\",10,1,0,0",
                 "track 'a/tråck, 0.mp3' is in both splits");
    expect_error(3, "train/000001.npy,train,\"a/tråck, 0.mp3\",10,0,1,1", "labels differ");
    test::write_text(tmp.file("manifest.csv"), m);
    test::write_text(tmp.file("genres.txt"), "rock\njazz\nrock\n");
    CHECK_THROWS_WITH_AS(load_prepared(tmp.path()), doctest::Contains("genres.txt:3"), Error);
    std::filesystem::remove(tmp.file("genres.txt"));
    CHECK_THROWS_WITH_AS(load_prepared(tmp.path()), doctest::Contains("genres.txt"), Error);
}

TEST_CASE("loader: every chunk once per epoch; order depends on seed and epoch only") {
    TempDir tmp;
    write_synthetic_prepared(tmp.path(), small_options());
    PreparedData d = load_prepared(tmp.path());
    std::vector<int> train = d.split_chunks(Split::Train);
    LoaderOptions o;
    o.batch = 3;
    o.seed = 42;
    o.workers = 2;
    Loader a(d, train, o);
    CHECK(a.batches_per_epoch() == 4);
    auto e0 = epoch_batches(a, 0);
    REQUIRE(e0.size() == 4);
    CHECK(e0.back().size() == 1);  // 10 = 3 + 3 + 3 + 1
    std::vector<int> seen;
    for (auto& b : e0)
        seen.insert(seen.end(), b.begin(), b.end());
    std::vector<int> sorted = seen;
    std::sort(sorted.begin(), sorted.end());
    CHECK(sorted == train);
    CHECK(seen == a.epoch_order(0));

    auto e1 = epoch_batches(a, 1);
    CHECK(e1 != e0);
    Loader b(d, train, o);  // same seed, other loader, one worker: same batches
    o.workers = 1;
    Loader c(d, train, o);
    CHECK(epoch_batches(b, 1) == e1);
    CHECK(epoch_batches(c, 0) == e0);
    CHECK(epoch_batches(a, 0) == e0);  // restarting an epoch repeats it
    o.seed = 43;
    Loader other(d, train, o);
    CHECK(epoch_batches(other, 0) != e0);

    // Batch contents are the chunks' spectrograms and labels; stopping mid-epoch is fine.
    o.shuffle = false;
    o.prefetch = 3;
    Loader plain(d, train, o);
    plain.start_epoch(0);
    const Batch* first = plain.next();
    REQUIRE(first != nullptr);
    CHECK(first->chunks == std::vector<int>{train[0], train[1], train[2]});
    std::vector<float> x(kChunkFloats);
    d.read_chunk(train[1], x.data());
    CHECK(std::equal(x.begin(), x.end(), first->x + kChunkFloats));
    CHECK(std::equal(first->y, first->y + 9, d.targets.begin() + size_t(train[0]) * 3));
    plain.start_epoch(1);  // abandons epoch 0 with batches in flight
    CHECK(plain.next()->index == 0);
}

TEST_CASE("loader: shuffled_order is a seeded permutation; SpecAugment masks are seeded") {
    std::vector<int> p = shuffled_order(100, 7, 3);
    std::vector<int> s = p;
    std::sort(s.begin(), s.end());
    for (int i = 0; i < 100; ++i)
        CHECK(s[size_t(i)] == i);
    CHECK(p == shuffled_order(100, 7, 3));
    CHECK(p != shuffled_order(100, 7, 4));
    CHECK(shuffled_order(0, 1, 0).empty());
    // A fixed value pins the generator (mt19937_64 + our own Fisher-Yates): same on every
    // libstdc++.
    CHECK(shuffled_order(5, 0, 0) == shuffled_order(5, 0, 0));

    std::vector<float> x(kChunkFloats, 1.f), y(kChunkFloats, 1.f), z(kChunkFloats, 1.f);
    SpecAugmentOptions o;
    spec_augment(x.data(), o, 99);
    spec_augment(y.data(), o, 99);
    spec_augment(z.data(), o, 100);
    CHECK(x == y);
    CHECK(x != z);
    size_t zeros = size_t(std::count(x.begin(), x.end(), 0.f));
    CHECK(zeros > 0);
    CHECK(zeros <= size_t(2 * 16 * kFrames + 2 * 40 * kMelBands));
}

TEST_CASE("loader: a missing or wrong-shape npy is an error naming the file, raised by next()") {
    TempDir tmp;
    write_synthetic_prepared(tmp.path(), small_options());
    PreparedData d = load_prepared(tmp.path());
    std::vector<int> train = d.split_chunks(Split::Train);
    std::filesystem::remove(d.chunk_path(train[4]));
    std::vector<float> bad(64 * 431, 0.f);
    npy_write(d.chunk_path(train[9]), bad.data(), {64, 431});
    LoaderOptions o;
    o.batch = 4;
    o.shuffle = false;
    Loader l(d, train, o);
    l.start_epoch(0);
    CHECK(l.next() != nullptr);
    CHECK_THROWS_WITH_AS(l.next(), doctest::Contains(d.chunks[size_t(train[4])].file.c_str()),
                         Error);
    CHECK_THROWS_WITH_AS(l.next(), doctest::Contains("train/000009.npy"), Error);
    CHECK(l.next() == nullptr);
    CHECK_THROWS_WITH_AS(d.read_chunk(train[9], bad.data()), doctest::Contains("shape"), Error);
}

TEST_CASE("loader: SpecAugment in batches is a function of (seed, epoch), not of the workers") {
    TempDir tmp;
    write_synthetic_prepared(tmp.path(), small_options());
    PreparedData d = load_prepared(tmp.path());
    std::vector<int> train = d.split_chunks(Split::Train);
    auto epoch_x = [&](int workers, bool augment, int epoch) {
        LoaderOptions o;
        o.batch = 4;
        o.seed = 5;
        o.workers = workers;
        o.spec_augment = augment;
        Loader l(d, train, o);
        l.start_epoch(epoch);
        std::vector<float> all;
        while (const Batch* b = l.next())
            all.insert(all.end(), b->x, b->x + size_t(b->n) * kChunkFloats);
        return all;
    };
    std::vector<float> a1 = epoch_x(1, true, 2), a3 = epoch_x(3, true, 2),
                       plain = epoch_x(2, false, 2);
    CHECK(a1 == a3);
    CHECK(a1 != plain);
    CHECK(std::count(a1.begin(), a1.end(), 0.f) > std::count(plain.begin(), plain.end(), 0.f));
}
