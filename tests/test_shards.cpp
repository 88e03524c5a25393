// Packed shards and the streaming loader: the format round trip (float32 exact, float16 within
// half precision), the index, a partial last shard, corrupt shards named in the error, fixed
// chunks and random windows, rank parts, the shuffle buffer's bound, a 1-million-chunk plan made
// from the manifest alone, and `gnet prepare` writing shards that give the chunk files' images.
#include <doctest/doctest.h>
#include <sndfile.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "audio/npy.h"
#include "audio/spectrogram.h"
#include "kernels/error.h"
#include "tests/helpers.h"
#include "train/dataset.h"
#include "train/loader.h"
#include "train/shards.h"
#include "train/synthetic_data.h"

using namespace gnet;
using gnet::test::TempDir;
namespace fs = std::filesystem;

namespace {

SyntheticDataOptions sharded_options(ShardDtype dtype = ShardDtype::F32) {
    SyntheticDataOptions o;
    o.train_tracks = 5;
    o.val_tracks = 2;
    o.chunks_per_track = 2;  // 10 train chunks, 4 val chunks
    o.layout = DataLayout::Shards;
    o.shard_dtype = dtype;
    o.extra_frames = 100;  // a remainder after each track's chunks
    // 3 tracks per shard: (2 * 431 + 100) frames * 512 B = 492 KB a track -> 3 shards, the last
    // one partial (1 track).
    o.shard_bytes = 3 * (2 * 431 + 100) * 128 * 4 + 128;
    if (dtype == ShardDtype::F16) o.shard_bytes = 3 * (2 * 431 + 100) * 128 * 2 + 128;
    return o;
}

std::vector<int> epoch_chunks(Loader& loader, int epoch) {
    loader.start_epoch(epoch);
    std::vector<int> out;
    while (const Batch* b = loader.next())
        out.insert(out.end(), b->chunks.begin(), b->chunks.end());
    return out;
}

void flip_byte(const std::string& path, int64_t offset) {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(offset);
    char c = 0;
    f.read(&c, 1);
    c = char(c ^ 0x40);
    f.seekp(offset);
    f.write(&c, 1);
}

}  // namespace

TEST_CASE("shards: float16 conversion rounds to nearest even and keeps specials") {
    CHECK(float_to_half(1.0f) == 0x3c00);
    CHECK(float_to_half(-2.0f) == 0xc000);
    CHECK(float_to_half(65504.f) == 0x7bff);
    CHECK(float_to_half(1e6f) == 0x7c00);                // overflow: infinity
    CHECK(float_to_half(0.1f) == 0x2e66);                // 0.0999755859375
    CHECK(float_to_half(1.0f + 1.0f / 2048) == 0x3c00);  // halfway: to even
    CHECK(float_to_half(1.0f + 3.0f / 2048) == 0x3c02);  // halfway: to even (up)
    CHECK(float_to_half(5.96046448e-08f) == 0x0001);     // smallest subnormal
    CHECK(std::isnan(half_to_float(float_to_half(NAN))));
    CHECK(half_to_float(0x0001) == 5.96046448e-08f);
    CHECK(half_to_float(0x7bff) == 65504.f);
    CHECK(std::isinf(half_to_float(0xfc00)));
    for (uint32_t h = 0; h < 0x7c00; ++h)  // every finite half survives the round trip
        REQUIRE(float_to_half(half_to_float(uint16_t(h))) == h);
}

TEST_CASE("shards: writer and reader round trip, index, partial last shard, header checks") {
    TempDir tmp;
    for (ShardDtype dtype : {ShardDtype::F32, ShardDtype::F16}) {
        const std::string dir = tmp.file(shard_dtype_name(dtype));
        fs::create_directories(dir);
        const int eb = shard_dtype_bytes(dtype);
        std::vector<std::vector<float>> spans;
        std::vector<ShardLocation> where;
        {
            // Room for 1000 frames a shard: spans of 431..900 frames, so shards roll over.
            ShardWriter w(dir, dtype, kShardHeaderBytes + 1000 * 128 * eb);
            for (int s = 0; s < 5; ++s) {
                const int64_t frames = 431 + 117 * s;
                std::vector<float> x(size_t(frames) * 128);
                for (size_t i = 0; i < x.size(); ++i)
                    x[i] = float(-100.0 + std::fmod(double(i) * 0.37 + s, 180.0));
                where.push_back(w.append(x.data(), frames));
                spans.push_back(std::move(x));
            }
            w.finish();
            // 431 + 548 frames share shard 0; 665, 782 and 899 get one each.
            CHECK(w.shard_names().size() == 4);
            CHECK(w.shard_names()[0] == "shard-00000.npy");
        }
        for (size_t s = 0; s < spans.size(); ++s) {
            const std::string path =
                dir + "/" + "shard-0000" + std::to_string(where[s].shard) + ".npy";
            ShardHeader h = read_shard_header(path);
            CHECK(h.dtype == dtype);
            const int64_t frames = int64_t(spans[s].size() / 128);
            std::vector<float> back(spans[s].size());
            read_shard_frames(path, h, where[s].frame, frames, back.data(), &where[s].crc32);
            for (size_t i = 0; i < back.size(); ++i) {
                if (dtype == ShardDtype::F32)
                    REQUIRE(back[i] == spans[s][i]);
                else  // half precision: 11 significant bits
                    REQUIRE(std::fabs(back[i] - spans[s][i]) <=
                            std::fabs(spans[s][i]) / 2048.f + 1e-6f);
            }
        }
        // numpy's view of a shard: the .npy parser reads the header we wrote (float32 only; the
        // parser knows no float16).
        if (dtype == ShardDtype::F32) {
            NpyArray a = npy_read(dir + "/shard-00000.npy");
            CHECK(a.shape == std::vector<int64_t>{431 + 548, 128});
            CHECK(std::equal(spans[0].begin(), spans[0].end(), a.f32.begin()));
        }
        // A truncated shard and a foreign file are errors naming the file.
        fs::resize_file(dir + "/shard-00001.npy", fs::file_size(dir + "/shard-00001.npy") - 7);
        CHECK_THROWS_WITH_AS(read_shard_header(dir + "/shard-00001.npy"),
                             doctest::Contains("shard-00001.npy: corrupt shard"), Error);
        gnet::test::write_text(dir + "/shard-00002.npy", "not a shard");
        CHECK_THROWS_WITH_AS(read_shard_header(dir + "/shard-00002.npy"),
                             doctest::Contains("shard-00002.npy: not a gnet shard"), Error);
    }
    // Several spans in one shard, the last shard partial.
    const std::string dir = tmp.file("packed");
    fs::create_directories(dir);
    ShardWriter w(dir, ShardDtype::F32, kShardHeaderBytes + 2 * 431 * 128 * 4);
    std::vector<float> x(431 * 128, 1.f);
    std::vector<ShardLocation> loc;
    for (int s = 0; s < 5; ++s)
        loc.push_back(w.append(x.data(), 431));
    w.finish();
    REQUIRE(w.shard_names().size() == 3);
    CHECK(loc[1].shard == 0);
    CHECK(loc[1].frame == 431);
    CHECK(loc[4].shard == 2);
    CHECK(loc[4].frame == 0);
    CHECK(read_shard_header(dir + "/shard-00002.npy").frames == 431);
    CHECK(read_shard_header(dir + "/shard-00000.npy").frames == 862);
}

TEST_CASE("shards: a sharded folder loads; chunks and windows read back; errors name the files") {
    TempDir tmp;
    SyntheticDataOptions o = sharded_options();
    write_synthetic_prepared(tmp.path(), o);
    PreparedData d = load_prepared(tmp.path());
    CHECK(d.layout == DataLayout::Shards);
    CHECK(d.num_chunks() == 14);
    CHECK(d.spans.size() == 7);
    CHECK(d.shard_files.size() == 3);  // 3 + 3 + 1 tracks: the last shard partial
    CHECK(d.shard_headers[2].frames == 2 * 431 + 100);
    CHECK(d.chunks[1].frame == 431);
    CHECK(d.chunks[1].span == d.chunks[0].span);
    CHECK(d.spans[size_t(d.chunks[1].span)].frames == 962);

    // A chunk is its block, clipped and scaled; the chunk-files layout of the same images agrees.
    TempDir plain_dir;
    SyntheticDataOptions po = o;
    po.layout = DataLayout::ChunkFiles;
    write_synthetic_prepared(plain_dir.path(), po);
    PreparedData p = load_prepared(plain_dir.path());
    std::vector<float> a(kChunkFloats), b(kChunkFloats);
    for (int c = 0; c < d.num_chunks(); ++c) {
        d.read_chunk(c, a.data());
        p.read_chunk(c, b.data());
        cpu::normalize_db_chunk(b.data(), kChunkFloats, 80.f);  // the image min-max scaled
        for (size_t i = 0; i < a.size(); ++i)
            REQUIRE(a[i] == doctest::Approx(b[i]).epsilon(1e-5));
    }

    // Fixed windows: each chunk once per epoch, the same images as read_chunk.
    std::vector<int> train = d.split_chunks(Split::Train);
    LoaderOptions lo;
    lo.batch = 3;
    lo.seed = 9;
    Loader fixed(d, train, lo);
    fixed.start_epoch(0);
    std::vector<int> seen;
    while (const Batch* batch = fixed.next())
        for (int i = 0; i < batch->n; ++i) {
            const int c = batch->chunks[size_t(i)];
            seen.push_back(c);
            d.read_chunk(c, a.data());
            CHECK(std::equal(a.begin(), a.end(), batch->x + size_t(i) * kChunkFloats));
            CHECK(batch->start_s[size_t(i)] == d.chunks[size_t(c)].start_s);
        }
    CHECK(seen == fixed.epoch_order(0));
    std::vector<int> sorted = seen;
    std::sort(sorted.begin(), sorted.end());
    CHECK(sorted == train);
    CHECK(epoch_chunks(fixed, 1) != seen);
    CHECK(epoch_chunks(fixed, 0) == seen);

    // Random windows: inside the chunk's span, a function of (seed, epoch, chunk).
    std::set<int64_t> starts;
    for (int c : train)
        for (int e = 0; e < 20; ++e) {
            const int64_t f = window_start(d, c, WindowMode::Random, 9, e);
            const SpanEntry& s = d.spans[size_t(d.chunks[size_t(c)].span)];
            REQUIRE(f >= s.frame);
            REQUIRE(f + kFrames <= s.frame + s.frames);
            CHECK(f == window_start(d, c, WindowMode::Random, 9, e));
            starts.insert(f);
        }
    CHECK(starts.size() > 100);  // they move
    lo.windows = WindowMode::Random;
    Loader random(d, train, lo);
    random.start_epoch(3);
    const Batch* rb = random.next();
    REQUIRE(rb != nullptr);
    const int c0 = rb->chunks[0];
    const int64_t f0 = window_start(d, c0, WindowMode::Random, 9, 3);
    const SpanEntry& s0 = d.spans[size_t(d.chunks[size_t(c0)].span)];
    std::vector<float> frames;
    d.read_span(d.chunks[size_t(c0)].span, frames);
    window_from_frames(frames.data(), f0 - s0.frame, a.data(), 80.f, "test");
    CHECK(std::equal(a.begin(), a.end(), rb->x));
    CHECK(rb->start_s[0] == doctest::Approx(d.chunks[size_t(c0)].start_s +
                                            double(f0 - d.chunks[size_t(c0)].frame) * 512 / 22050));

    // The reading threads never change an epoch: 1, 2 and 3 readers (each span's run of
    // positions read by one of them) give the same batches, windows and augmentation included.
    auto epoch_images = [&](int workers, WindowMode w) {
        LoaderOptions wo = lo;
        wo.workers = workers;
        wo.windows = w;
        wo.spec_augment = true;
        Loader l(d, train, wo);
        l.start_epoch(2);
        std::pair<std::vector<int>, std::vector<float>> out;
        while (const Batch* b = l.next()) {
            out.first.insert(out.first.end(), b->chunks.begin(), b->chunks.end());
            out.second.insert(out.second.end(), b->x, b->x + size_t(b->n) * kChunkFloats);
        }
        return out;
    };
    for (const WindowMode w : {WindowMode::Fixed, WindowMode::Random}) {
        const auto one = epoch_images(1, w);
        CHECK(one.first.size() == train.size());
        CHECK(epoch_images(2, w) == one);
        CHECK(epoch_images(3, w) == one);
    }

    // The default, auto, is random windows on shards and the fixed chunks on chunk files; the
    // loader takes only a resolved mode.
    CHECK(resolve_window_mode(WindowMode::Auto, d) == WindowMode::Random);
    CHECK(resolve_window_mode(WindowMode::Auto, p) == WindowMode::Fixed);
    CHECK(resolve_window_mode(WindowMode::Fixed, d) == WindowMode::Fixed);
    CHECK(resolve_window_mode(WindowMode::Random, p) == WindowMode::Random);
    CHECK(parse_window_mode("auto") == WindowMode::Auto);
    CHECK(std::string(window_mode_name(WindowMode::Auto)) == "auto");
    LoaderOptions unresolved = lo;
    unresolved.windows = WindowMode::Auto;
    CHECK_THROWS(Loader(d, train, unresolved));

    // Chunk files cannot serve random windows.
    LoaderOptions bad = lo;
    CHECK_THROWS_WITH_AS(Loader(p, p.split_chunks(Split::Train), bad),
                         doctest::Contains("random windows need a data set prepared as shards"),
                         UsageError);

    // A flipped byte: the CRC names the shard and frames, raised by next() for that batch only.
    const std::string shard1 = d.shard_path(1);
    flip_byte(shard1, kShardHeaderBytes + 5000);
    LoaderOptions plain;
    plain.batch = 2;
    plain.shuffle = false;
    Loader l(d, train, plain);
    l.start_epoch(0);
    int errors = 0, batches = 0;
    for (;;) {
        try {
            const Batch* batch = l.next();
            if (!batch) break;
            ++batches;
        } catch (const Error& e) {
            ++errors;
            CHECK(std::string(e.what()).find("shard-00001.npy: frames 0..962: CRC-32") !=
                  std::string::npos);
        }
    }
    CHECK(errors == 1);  // the first track of shard 1 is in one batch of 2 chunks
    CHECK(batches == 4);

    // A truncated shard fails at load, naming it.
    fs::resize_file(d.shard_path(2), fs::file_size(d.shard_path(2)) - 512);
    CHECK_THROWS_WITH_AS(load_prepared(tmp.path()),
                         doctest::Contains("shard-00002.npy: corrupt shard"), Error);
}

TEST_CASE("shards: malformed index and manifest rows name index.csv:LINE / manifest.csv:LINE") {
    TempDir tmp;
    write_synthetic_prepared(tmp.path(), sharded_options());
    const std::string index = gnet::test::read_text(tmp.file("shards/index.csv"));
    const std::string manifest = gnet::test::read_text(tmp.file("manifest.csv"));
    auto with_line = [](std::string text, int line, const std::string& repl) {
        size_t pos = 0;
        for (int i = 1; i < line; ++i)
            pos = text.find('\n', pos) + 1;
        return text.substr(0, pos) + repl + text.substr(text.find('\n', pos));
    };
    auto expect = [&](const std::string& file, const std::string& text, const std::string& what) {
        gnet::test::write_text(tmp.file("shards/index.csv"), index);
        gnet::test::write_text(tmp.file("manifest.csv"), manifest);
        gnet::test::write_text(tmp.file(file), text);
        CHECK_THROWS_WITH_AS(load_prepared(tmp.path()), doctest::Contains(what.c_str()), Error);
    };
    expect("shards/index.csv", with_line(index, 2, "shards/shard-00000.npy,0,962,xyz,t"),
           "index.csv:2: crc32 'xyz'");
    expect("shards/index.csv", with_line(index, 3, "shards/shard-00000.npy,10,962,00000000,t"),
           "index.csv:3: span overlaps");
    expect("shards/index.csv", with_line(index, 2, "shards/shard-00000.npy,0,99999,00000000,t"),
           "index.csv:2: span ends at frame 99999");
    expect("manifest.csv", with_line(manifest, 2, "shards/shard-00000.npy,700,train,x,0,1,0,0"),
           "manifest.csv:2: frames 700..1131 of 'shards/shard-00000.npy' lie in no span");
    expect("manifest.csv", with_line(manifest, 3, "shards/shard-00000.npy,0,train,x,0,1,0,0"),
           "manifest.csv:3: frame 0 of 'shards/shard-00000.npy' listed twice");
    expect("manifest.csv", with_line(manifest, 2, "shards/nope.npy,0,train,x,0,1,0,0"),
           "manifest.csv:2: shard 'shards/nope.npy' is not in shards/index.csv");
}

TEST_CASE("loader: rank parts cover the epoch; the shuffle buffer keeps its bound") {
    TempDir tmp;
    write_synthetic_prepared(tmp.path(), sharded_options());
    PreparedData d = load_prepared(tmp.path());
    std::vector<int> train = d.split_chunks(Split::Train);  // 10 chunks
    LoaderOptions lo;
    lo.batch = 2;
    lo.seed = 4;
    lo.shuffle_buffer = 3;
    std::multiset<int> all;
    for (int r = 0; r < 3; ++r) {
        lo.rank = r;
        lo.ranks = 3;
        Loader l(d, train, lo);
        CHECK(l.size() == 4);  // ceil(10 / 3); the last part wraps round
        CHECK(l.batches_per_epoch() == 2);
        std::vector<int> got = epoch_chunks(l, 2);
        CHECK(got.size() == 4);
        all.insert(got.begin(), got.end());
    }
    CHECK(all.size() == 12);
    for (int c : train)
        CHECK(all.count(c) >= 1);  // every chunk, two of them twice (padding)

    // shuffle_buffer_order: a permutation; output e was read at most buffer - 1 after it.
    for (int K : {1, 4, 64}) {
        std::vector<int> order = shuffle_buffer_order(1000, K, 77);
        std::vector<int> sorted = order;
        std::sort(sorted.begin(), sorted.end());
        for (int i = 0; i < 1000; ++i)
            REQUIRE(sorted[size_t(i)] == i);
        for (int e = 0; e < 1000 - K; ++e)
            REQUIRE(order[size_t(e)] <= e + K - 1);
        if (K == 1) CHECK(order == sorted);
    }
    CHECK(shuffle_buffer_order(1000, 64, 77) != shuffle_buffer_order(1000, 64, 78));
}

TEST_CASE("loader: a 1-million-chunk epoch is planned from the manifest alone") {
    // 100,000 tracks of 10 chunks in 1,000 shards that do not exist on disk: planning an epoch
    // must not open one.
    PreparedData d;
    d.dir = "/nonexistent";
    d.layout = DataLayout::Shards;
    d.genres = {"a", "b"};
    const int shards = 1000, tracks = 100000, per_track = 10;
    for (int s = 0; s < shards; ++s) {
        d.shard_files.push_back("shards/shard-" + std::to_string(s) + ".npy");
        d.shard_headers.push_back({ShardDtype::F16, int64_t(tracks / shards) * per_track * 431});
    }
    d.spans.reserve(size_t(tracks));
    d.chunks.reserve(size_t(tracks) * per_track);
    for (int t = 0; t < tracks; ++t) {
        SpanEntry s;
        s.shard = t % shards;
        s.frame = int64_t(t / shards) * per_track * 431;
        s.frames = per_track * 431;
        s.track = t;
        d.spans.push_back(s);
        for (int c = 0; c < per_track; ++c) {
            ChunkEntry e;
            e.track = t;
            e.span = t;
            e.frame = s.frame + c * 431;
            e.start_s = 10 * c;
            d.chunks.push_back(std::move(e));
        }
    }
    d.targets.assign(d.chunks.size() * 2, 0.f);
    std::vector<int> all(d.chunks.size());
    for (size_t i = 0; i < all.size(); ++i)
        all[i] = int(i);
    LoaderOptions lo;
    lo.ranks = 2;
    lo.seed = 1;
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<int> r0 = epoch_stream(d, all, lo, 5);
    lo.rank = 1;
    Loader l1(d, all, lo);
    std::vector<int> r1 = l1.epoch_order(5);
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    MESSAGE("planned 2 x 500,000 chunks in " << secs << " s");
    REQUIRE(r0.size() == 500000);
    REQUIRE(r1.size() == 500000);
    std::vector<char> hit(all.size(), 0);
    for (int c : r0)
        hit[size_t(c)]++;
    for (int c : r1)
        hit[size_t(c)]++;
    CHECK(std::count(hit.begin(), hit.end(), 1) == 1000000);
    // Rank 0's read order visits shards one after another: each shard's chunks are contiguous.
    int switches = 0;
    for (size_t i = 1; i < r0.size(); ++i)
        switches += d.spans[size_t(d.chunks[size_t(r0[i])].span)].shard !=
                    d.spans[size_t(d.chunks[size_t(r0[i - 1])].span)].shard;
    CHECK(switches <= 500);
    CHECK(secs < 20);
}

namespace {

void write_tone(const std::string& path, double seconds, double freq) {
    fs::create_directories(fs::path(path).parent_path());
    SF_INFO info{};
    info.samplerate = 22050;
    info.channels = 1;
    info.format = SF_FORMAT_WAV | SF_FORMAT_FLOAT;
    SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
    REQUIRE(f != nullptr);
    std::vector<float> buf(size_t(seconds * 22050));
    for (size_t i = 0; i < buf.size(); ++i)
        buf[i] = 0.3f * float(std::sin(2 * M_PI * freq * double(i) / 22050 * (1 + i * 1e-6))) +
                 ((i % 5000) < 30 ? 0.2f : 0.f);
    sf_writef_float(f, buf.data(), sf_count_t(buf.size()));
    sf_close(f);
}

std::string q(const std::string& s) {
    return "'" + s + "'";
}

}  // namespace

TEST_CASE("prepare --layout shards gives the chunk files' images; float16 within 1e-3") {
    TempDir tmp;
    const std::string music = tmp.file("music");
    for (int t = 0; t < 3; ++t) {
        write_tone(music + "/low/t" + std::to_string(t) + ".wav", 21.5, 200 + 30 * t);
        write_tone(music + "/high/t" + std::to_string(t) + ".wav", 10.7, 2000 + 300 * t);
    }
    auto prep = [&](const std::string& out, const std::string& extra) {
        auto r = gnet::test::run_gnet("prepare " + q(music) + " --out " + q(tmp.file(out)) +
                                      " --device cpu --val-fraction 0.34 " + extra);
        INFO(r.out, r.err);
        REQUIRE(r.exit_code == 0);
        return r;
    };
    auto r32 = prep("s32", "");
    CHECK(r32.out.find("shards/") != std::string::npos);
    prep("s16", "--shard-dtype float16 --shard-mb 1");
    prep("chunks", "--layout chunks");
    PreparedData s32 = load_prepared(tmp.file("s32")), s16 = load_prepared(tmp.file("s16")),
                 ch = load_prepared(tmp.file("chunks"));
    REQUIRE(s32.layout == DataLayout::Shards);
    REQUIRE(ch.layout == DataLayout::ChunkFiles);
    CHECK(s16.shard_headers[0].dtype == ShardDtype::F16);
    CHECK(s16.shard_files.size() == 2);  // 1.04 MB of float16 spans in shards of 1 MiB
    REQUIRE(s32.num_chunks() == 9);      // 3 x 2 + 3 x 1
    REQUIRE(ch.num_chunks() == 9);
    // Spans: a 21.5 s track = 2 blocks + the frames of its 1.5 s remainder.
    for (const SpanEntry& s : s32.spans) {
        const bool long_track = s32.tracks[size_t(s.track)].rfind("low/", 0) == 0;
        const int64_t rem = long_track ? 33075 - 0 : int64_t(10.7 * 22050) - 220500;
        const int64_t expect = (long_track ? 862 : 431) + (rem + 511) / 512;
        CHECK(s.frames == expect);
    }
    std::vector<float> a(kChunkFloats), b(kChunkFloats), h(kChunkFloats);
    std::map<std::pair<std::string, int>, int> in_chunks;
    for (int c = 0; c < ch.num_chunks(); ++c)
        in_chunks[{ch.tracks[size_t(ch.chunks[size_t(c)].track)], ch.chunks[size_t(c)].start_s}] =
            c;
    double worst16 = 0;
    for (int c = 0; c < s32.num_chunks(); ++c) {
        const ChunkEntry& e = s32.chunks[size_t(c)];
        const int other = in_chunks.at({s32.tracks[size_t(e.track)], e.start_s});
        s32.read_chunk(c, a.data());
        ch.read_chunk(other, b.data());
        REQUIRE(a == b);  // float32 shards: bit for bit the chunk file
        s16.read_chunk(c, h.data());
        for (size_t i = 0; i < a.size(); ++i)
            worst16 = std::max(worst16, double(std::fabs(h[i] - a[i])));
    }
    MESSAGE("float16 shards: largest difference from float32 " << worst16);
    CHECK(worst16 < 1e-3);
    CHECK(fs::file_size(tmp.file("s16/shards/shard-00000.npy")) <
          fs::file_size(tmp.file("s32/shards/shard-00000.npy")));
}
