// Overlapping prediction windows (--hop) with their timestamps, and embeddings (gnet embed): the
// 512-d features per window and per track, their shapes, their determinism, the .npy / .csv /
// .json outputs. A small randomly initialised checkpoint (the values are not meaningful). About
// 10 s on the 2-core VM.
#include <doctest/doctest.h>
#include <sndfile.h>

#include <filesystem>

#include "audio/npy.h"
#include "audio/synth.h"
#include "kernels/error.h"
#include "nn/checkpoint.h"
#include "nn/json.h"
#include "nn/resnet18.h"
#include "tests/helpers.h"
#include "train/csv.h"
#include "train/predict.h"

using namespace gnet;
using gnet::test::run_gnet;
using gnet::test::TempDir;
namespace fs = std::filesystem;

namespace {

void write_wav(const std::string& path, const std::vector<float>& y, int rate) {
    fs::create_directories(fs::path(path).parent_path());
    SF_INFO info{};
    info.samplerate = rate;
    info.channels = 1;
    info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
    SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
    REQUIRE(f != nullptr);
    sf_writef_float(f, y.data(), sf_count_t(y.size()));
    sf_close(f);
}

std::string make_checkpoint(const TempDir& dir) {
    ResNet18Config cfg;
    cfg.num_genres = 2;
    cfg.max_batch = 1;
    ResNet18 model(cfg, Device::CPU);
    model.init(5);
    CheckpointMeta meta;
    meta.genres = {"pulse", "drone"};
    const std::string path = dir.file("m.safetensors");
    write_checkpoint(path, model, meta);
    return path;
}

std::string q(const std::string& s) {
    return "'" + s + "'";
}

std::vector<TrackPrediction> tag(const std::string& model, const std::vector<std::string>& files,
                                 double hop, bool embeddings) {
    PredictOptions o;
    o.batch = 4;
    o.jobs = 1;
    o.hop_s = hop;
    o.embeddings = embeddings;
    Tagger tagger(read_checkpoint(model), Device::CPU, o);
    std::vector<TrackPrediction> out;
    tagger.tag_files(
        files, [&](const TrackPrediction& t) { out.push_back(t); },
        [](const std::string& f, const std::string& why) { FAIL(f << ": " << why); });
    return out;
}

}  // namespace

TEST_CASE("predict --hop: overlapping windows, each with its timestamps; embeddings") {
    TempDir dir;
    const std::string model = make_checkpoint(dir);
    const std::string a = dir.file("a.wav");
    write_wav(a, synth_track({"pulse"}, 25.0, 22050, 1), 22050);

    // hop 10 (the default): windows at 0 and 10, and the 5 s tail zero-padded.
    std::vector<TrackPrediction> plain = tag(model, {a}, 0, false);
    REQUIRE(plain.size() == 1);
    REQUIRE(plain[0].segments.size() == 3);
    CHECK(plain[0].segments[2].start_s == doctest::Approx(20.0));
    CHECK(plain[0].segments[2].end_s == doctest::Approx(25.0));
    CHECK(plain[0].embedding.empty());

    // hop 5: windows at 0, 5, 10, 15 whole, and one at 20 that is half audio.
    std::vector<TrackPrediction> r = tag(model, {a}, 5.0, true);
    REQUIRE(r.size() == 1);
    const TrackPrediction& t = r[0];
    CHECK(t.hop_s == doctest::Approx(5.0));
    REQUIRE(t.chunks == 5);
    REQUIRE(t.segments.size() == 5);
    const double starts[5] = {0, 5, 10, 15, 20}, ends[5] = {10, 15, 20, 25, 25};
    for (size_t k = 0; k < 5; ++k) {
        CHECK(t.segments[k].start_s == doctest::Approx(starts[k]));
        CHECK(t.segments[k].end_s == doctest::Approx(ends[k]));
        REQUIRE(t.segments[k].embedding.size() == 512);
    }
    // Windows at 0, 10 and 20 are the hop-10 windows: the same scores.
    for (size_t k : {0u, 2u, 4u})
        for (size_t g = 0; g < 2; ++g)
            CHECK(t.segments[k].genres[g].probability ==
                  doctest::Approx(plain[0].segments[k / 2].genres[g].probability).epsilon(1e-5));
    // The track's embedding is the mean of its windows'.
    REQUIRE(t.embedding.size() == 512);
    for (size_t i = 0; i < 512; i += 17) {
        double mean = 0;
        for (const SegmentPrediction& s : t.segments)
            mean += s.embedding[i] / 5.0;
        CHECK(t.embedding[i] == doctest::Approx(mean).epsilon(1e-5));
    }
    // Deterministic: the same file twice gives the same numbers.
    std::vector<TrackPrediction> again = tag(model, {a}, 5.0, true);
    CHECK(again[0].embedding == t.embedding);
    CHECK(again[0].segments[3].embedding == t.segments[3].embedding);

    PredictOptions bad;
    bad.hop_s = 12;
    CHECK_THROWS_WITH_AS(Tagger(read_checkpoint(model), Device::CPU, bad),
                         doctest::Contains("--hop"), UsageError);
}

TEST_CASE("gnet embed: .npy arrays with a .csv index, and JSON; predict --hop --segments") {
    TempDir dir;
    const std::string model = make_checkpoint(dir);
    write_wav(dir.file("music/a.wav"), synth_track({"pulse"}, 21.0, 22050, 1), 22050);
    write_wav(dir.file("music/b.wav"), synth_track({"drone"}, 12.0, 22050, 2), 22050);

    auto r = run_gnet("embed " + q(dir.file("music")) + " -m " + q(model) + " -o " +
                      q(dir.file("emb.npy")) + " --device cpu");
    INFO(r.out, r.err);
    REQUIRE(r.exit_code == 0);
    std::vector<float> tracks = npy_read_f32(dir.file("emb.npy"), {2, 512});
    std::vector<float> segs = npy_read_f32(dir.file("emb.segments.npy"), {3, 512});  // 2 + 1
    std::vector<CsvRecord> index = csv_read_file(dir.file("emb.csv"));
    REQUIRE(index.size() == 6);  // header, 2 tracks, 3 segments
    CHECK(index[0].fields == std::vector<std::string>{"kind", "row", "file", "start_s", "end_s"});
    CHECK(index[1].fields[0] == "track");
    CHECK(index[2].fields[0] == "segment");
    CHECK(index[3].fields[3].rfind("10", 0) == 0);
    for (size_t i = 0; i < 512; i += 31)
        CHECK(tracks[i] == doctest::Approx((segs[i] + segs[512 + i]) / 2).epsilon(1e-5));

    auto j = run_gnet("embed " + q(dir.file("music/b.wav")) + " -m " + q(model) + " -o " +
                      q(dir.file("b.json")) + " --device cpu --hop 2");
    REQUIRE(j.exit_code == 0);
    Json doc = json_parse(test::read_text(dir.file("b.json")));
    REQUIRE(doc.size() == 1);
    CHECK(doc[0].at("embedding").size() == 512);
    CHECK(doc[0].at("hop_s").get<double>() == doctest::Approx(2.0));
    // 12 s: whole windows at 0 and 2, then one at 4 whose 8 s of audio are more than half of it.
    REQUIRE(doc[0].at("segments").size() == 3);
    CHECK(doc[0].at("segments")[1].at("start_s").get<double>() == doctest::Approx(2.0));
    CHECK(doc[0].at("segments")[2].at("start_s").get<double>() == doctest::Approx(4.0));
    CHECK(doc[0].at("segments")[2].at("end_s").get<double>() == doctest::Approx(12.0));
    // The features of b.wav's first window are the same whatever the hop and the output.
    for (size_t i = 0; i < 512; i += 63)
        CHECK(doc[0].at("segments")[0].at("embedding")[i].get<double>() ==
              doctest::Approx(segs[2 * 512 + i]).epsilon(1e-5));

    auto bad = run_gnet("embed " + q(dir.file("music")) + " -m " + q(model) + " -o " +
                        q(dir.file("emb.txt")) + " --device cpu");
    CHECK(bad.exit_code == 2);
    CHECK(bad.err.find(".npy") != std::string::npos);

    auto p = run_gnet("predict " + q(dir.file("music/a.wav")) + " -m " + q(model) +
                      " --device cpu --hop 5 --segments --format csv");
    INFO(p.err);
    REQUIRE(p.exit_code == 0);
    // 21 s at hop 5: windows at 0, 5, 10 whole, and 15 (6 s of audio) padded.
    CHECK(p.out.find(",segment,15.00,21.00,") != std::string::npos);
    CHECK(p.out.find(",segment,5.00,15.00,") != std::string::npos);
}
