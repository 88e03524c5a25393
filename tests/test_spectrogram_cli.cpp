// gnet spectrogram: exit codes, the .npy's shape, the PNG, notes and one-line errors.
#include <doctest/doctest.h>
#include <sndfile.h>

#include <algorithm>

#include "audio/npy.h"
#include "audio/png.h"
#include "nn/device.h"
#include "tests/helpers.h"
#include "tests/spectrogram_clips.h"

using gnet::test::run_gnet;
using gnet::test::TempDir;

namespace {

void write_wav(const std::string& path, const std::vector<float>& mono, int rate) {
    SF_INFO info{};
    info.channels = 1;
    info.samplerate = rate;
    info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
    SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
    REQUIRE(f != nullptr);
    sf_writef_float(f, mono.data(), sf_count_t(mono.size()));
    sf_close(f);
}

std::string q(const std::string& s) {
    return "'" + s + "'";
}

uint32_t be32(const std::string& b, size_t at) {
    return (uint32_t(uint8_t(b[at])) << 24) | (uint32_t(uint8_t(b[at + 1])) << 16) |
           (uint32_t(uint8_t(b[at + 2])) << 8) | uint32_t(uint8_t(b[at + 3]));
}

}  // namespace

TEST_CASE("gnet spectrogram writes [n_chunks, 128, 431] and a PNG") {
    TempDir dir;
    const std::string wav = dir.file("song.wav");
    write_wav(wav, gnet::test::fixture_clip("chirp", 25 * 22050), 22050);

    auto r = run_gnet("spectrogram " + q(wav) + " -o " + q(dir.file("a.npy")) + " --png " +
                      q(dir.file("a.png")) + " --device cpu");
    INFO(r.out, r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.err.empty());
    CHECK(r.out.find("2 chunks") != std::string::npos);
    auto a = gnet::npy_read(dir.file("a.npy"));
    CHECK(a.shape == std::vector<int64_t>{2, 128, 431});
    CHECK(*std::max_element(a.f32.begin(), a.f32.end()) == 1.f);
    CHECK(*std::min_element(a.f32.begin(), a.f32.end()) == 0.f);

    const std::string png = gnet::test::read_text(dir.file("a.png"));
    REQUIRE(png.size() > 33);
    CHECK(png.substr(1, 3) == "PNG");
    CHECK(png.substr(12, 4) == "IHDR");
    // Two chunks side by side at one pixel per frame, two pixel rows per mel band, plus axes,
    // title and colour bar around them.
    CHECK(be32(png, 16) > 2 * 431);
    CHECK(be32(png, 16) < 2 * 431 + 300);
    CHECK(be32(png, 20) > 2 * 128);
    CHECK(be32(png, 20) < 2 * 128 + 120);

    auto p = run_gnet("spectrogram " + q(wav) + " -o " + q(dir.file("b.npy")) +
                      " --remainder pad --device cpu");
    REQUIRE(p.exit_code == 0);
    CHECK(gnet::npy_read(dir.file("b.npy")).shape == std::vector<int64_t>{3, 128, 431});
}

TEST_CASE("gnet spectrogram: a short track becomes one padded chunk, with a note") {
    TempDir dir;
    const std::string wav = dir.file("short.wav");
    write_wav(wav, gnet::test::sine(440.0, 4 * 44100, 44100), 44100);
    auto r = run_gnet("spectrogram " + q(wav) + " -o " + q(dir.file("s.npy")) + " --device cpu");
    INFO(r.out, r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.err.find("zero-padded") != std::string::npos);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK(gnet::npy_read(dir.file("s.npy")).shape == std::vector<int64_t>{1, 128, 431});

    auto d = run_gnet("spectrogram " + q(wav) + " -o " + q(dir.file("d.npy")) +
                      " --remainder drop --device cpu");
    CHECK(d.exit_code == 1);
    CHECK(d.err.find("shorter than one") != std::string::npos);
    CHECK(!gnet::test::path_exists(dir.file("d.npy")));
}

TEST_CASE(
    "gnet spectrogram: bad input exits 1 with one line naming the file; usage errors exit 2") {
    TempDir dir;
    const std::string txt = dir.file("fake.wav");
    gnet::test::write_text(txt, "not audio\n");
    auto r = run_gnet("spectrogram " + q(txt) + " -o " + q(dir.file("x.npy")) + " --device cpu");
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("fake.wav") != std::string::npos);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK(!gnet::test::path_exists(dir.file("x.npy")));

    CHECK(run_gnet("spectrogram " + q(txt)).exit_code == 2);  // no -o
    CHECK(run_gnet("spectrogram " + q(txt) + " -o x.npy --remainder sometimes").exit_code == 2);
    auto h = run_gnet("spectrogram --help");
    CHECK(h.exit_code == 0);
    CHECK(h.out.find("Examples") != std::string::npos);
}

TEST_CASE(
    "gnet spectrogram --device auto: CUDA when usable, else the CPU with one line saying so") {
    TempDir dir;
    const std::string wav = dir.file("a.wav");
    write_wav(wav, gnet::test::sine(1000.0, 220500, 22050), 22050);
    auto r = run_gnet("spectrogram " + q(wav) + " -o " + q(dir.file("a.npy")));
    INFO(r.out, r.err);
    REQUIRE(r.exit_code == 0);
    if (gnet::probe_gpus().usable) {
        CHECK(r.out.find("on cuda") != std::string::npos);
        CHECK(r.err.empty());
    } else {
        CHECK(r.out.find("on cpu") != std::string::npos);
        CHECK(r.err.find("running on the CPU") != std::string::npos);
        CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
        CHECK(run_gnet("spectrogram " + q(wav) + " -o " + q(dir.file("b.npy")) + " --device cuda")
                  .exit_code == 1);
    }
}

TEST_CASE("spectrogram PNG: a 30-minute file gives a picture of readable size (issue 17)") {
    TempDir dir;
    const int64_t n = 180;  // 30 minutes of 10 s chunks
    std::vector<float> spec(size_t(n) * 128 * 431);
    for (size_t i = 0; i < spec.size(); ++i)
        spec[i] = float((i * 2654435761u) % 1000) / 1000.f;
    gnet::SpectrogramPngOptions opt;
    opt.title = "thirty_minutes.flac";
    const gnet::PictureSize size =
        gnet::write_spectrogram_png(dir.file("long.png"), spec.data(), n, 128, 431, opt);
    CHECK(size.width < 2200);
    CHECK(size.height < 4000);
    const std::string png = gnet::test::read_text(dir.file("long.png"));
    CHECK(be32(png, 16) == uint32_t(size.width));
    CHECK(be32(png, 20) == uint32_t(size.height));
}
