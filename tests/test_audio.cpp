// Decoding (libsndfile), downmixing, resampling (libsoxr), chunking; bad files; real recordings.
#include <doctest/doctest.h>
#include <sndfile.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include <sys/stat.h>

#include "audio/audio_files.h"
#include "audio/chunk.h"
#include "audio/decode.h"
#include "audio/load_audio.h"
#include "audio/resample.h"
#include "audio/spectrogram.h"
#include "kernels/error.h"
#include "tests/check.h"
#include "tests/ffmpeg_writer.h"
#include "tests/helpers.h"
#include "tests/spectrogram_clips.h"

using namespace gnet;
using gnet::test::TempDir;
using gnet::test::Tolerance;

namespace {

// 16-bit FLAC / PCM quantisation: half a step of 1/32768, plus the downmix's rounding.
constexpr Tolerance kPcm16Tol{1.0 / 32768.0, 0};
constexpr Tolerance kFloatWavTol{1e-7, 0};

// Writes interleaved float frames with libsndfile in the given format.
void write_audio(const std::string& path, const std::vector<float>& interleaved, int channels,
                 int rate, int format) {
    SF_INFO info{};
    info.channels = channels;
    info.samplerate = rate;
    info.format = format;
    SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
    REQUIRE_MESSAGE(f != nullptr, sf_strerror(nullptr));
    const sf_count_t frames = sf_count_t(interleaved.size()) / channels;
    CHECK(sf_writef_float(f, interleaved.data(), frames) == frames);
    sf_close(f);
}

// Left = a 440 Hz sine, right = a 1 kHz sine: the mono mean is their average.
std::vector<float> stereo_pair(int64_t n, int rate, std::vector<float>& mean_out) {
    auto l = gnet::test::sine(440.0, n, rate, 0.5), r = gnet::test::sine(1000.0, n, rate, 0.3);
    std::vector<float> inter(size_t(2 * n));
    mean_out.resize(size_t(n));
    for (int64_t i = 0; i < n; ++i) {
        inter[size_t(2 * i)] = l[size_t(i)];
        inter[size_t(2 * i + 1)] = r[size_t(i)];
        mean_out[size_t(i)] = (l[size_t(i)] + r[size_t(i)]) * 0.5f;
    }
    return inter;
}

// Frequency estimate from upward zero crossings over the middle of a signal.
double zero_crossing_hz(const std::vector<float>& x, int rate) {
    const size_t a = x.size() / 10, b = x.size() - x.size() / 10;
    int crossings = 0;
    for (size_t i = a + 1; i < b; ++i)
        if (x[i - 1] < 0.f && x[i] >= 0.f) ++crossings;
    return crossings * double(rate) / double(b - a);
}

}  // namespace

TEST_CASE("chunk counts: drop, pad, pad-if-short") {
    const int64_t L = 220500;
    CHECK(chunk_count(25 * 22050, L, Remainder::Drop) == 2);
    CHECK(chunk_count(25 * 22050, L, Remainder::Pad) == 3);
    CHECK(chunk_count(25 * 22050, L, Remainder::PadIfShort) == 2);
    CHECK(chunk_count(5 * 22050, L, Remainder::Drop) == 0);
    CHECK(chunk_count(5 * 22050, L, Remainder::Pad) == 1);
    CHECK(chunk_count(5 * 22050, L, Remainder::PadIfShort) == 1);
    CHECK(chunk_count(2 * L, L, Remainder::Pad) == 2);
    for (Remainder r : {Remainder::Drop, Remainder::Pad, Remainder::PadIfShort})
        CHECK(chunk_count(0, L, r) == 0);
}

TEST_CASE("make_chunks copies from the start and zero-pads the tail") {
    std::vector<float> x(25);
    for (size_t i = 0; i < x.size(); ++i)
        x[i] = float(i + 1);
    auto drop = make_chunks(x, 10, Remainder::Drop);
    REQUIRE(drop.size() == 20);
    CHECK(drop[19] == 20.f);
    auto pad = make_chunks(x, 10, Remainder::Pad);
    REQUIRE(pad.size() == 30);
    CHECK(pad[24] == 25.f);
    CHECK(std::all_of(pad.begin() + 25, pad.end(), [](float v) { return v == 0.f; }));
    auto short_one = make_chunks(std::vector<float>(3, 1.f), 10, Remainder::PadIfShort);
    REQUIRE(short_one.size() == 10);
    CHECK(short_one[2] == 1.f);
    CHECK(short_one[3] == 0.f);
}

TEST_CASE("a 25 s file gives 2 chunks (drop) or 3 (pad) through load_audio") {
    TempDir dir;
    const std::string path = dir.file("long.flac");
    write_audio(path, gnet::test::sine(440.0, 25 * 22050), 1, 22050,
                SF_FORMAT_FLAC | SF_FORMAT_PCM_16);
    LoadedAudio a = load_audio(path);
    CHECK(a.samples.size() == size_t(25 * 22050));
    CHECK(a.duration_seconds == doctest::Approx(25.0));
    CHECK(make_chunks(a.samples, 220500, Remainder::Drop).size() == 2 * 220500);
    CHECK(make_chunks(a.samples, 220500, Remainder::Pad).size() == 3 * 220500);
}

TEST_CASE("WAV, FLAC and OGG/Vorbis written with libsndfile decode back; stereo -> mean") {
    TempDir dir;
    const int rate = 22050;
    const int64_t n = rate * 2;
    std::vector<float> mean;
    auto inter = stereo_pair(n, rate, mean);

    SUBCASE("float WAV is exact") {
        const std::string p = dir.file("s.wav");
        write_audio(p, inter, 2, rate, SF_FORMAT_WAV | SF_FORMAT_FLOAT);
        DecodedAudio d = decode_audio(p);
        CHECK(d.channels == 2);
        CHECK(d.sample_rate == rate);
        GNET_CHECK_CLOSE(d.mono, mean, kFloatWavTol);
    }
    SUBCASE("16-bit FLAC within one quantisation step") {
        const std::string p = dir.file("s.flac");
        write_audio(p, inter, 2, rate, SF_FORMAT_FLAC | SF_FORMAT_PCM_16);
        DecodedAudio d = decode_audio(p);
        CHECK(d.channels == 2);
        GNET_CHECK_CLOSE(d.mono, mean, kPcm16Tol);
    }
    SUBCASE("AIFF and AU (16-bit PCM)") {
        for (auto [name, fmt] : {std::pair{"s.aiff", SF_FORMAT_AIFF | SF_FORMAT_PCM_16},
                                 std::pair{"s.au", SF_FORMAT_AU | SF_FORMAT_PCM_16}}) {
            const std::string p = dir.file(name);
            write_audio(p, inter, 2, rate, fmt);
            GNET_CHECK_CLOSE(decode_audio(p).mono, mean, kPcm16Tol);
        }
    }
    SUBCASE("OGG/Vorbis (lossy): length and the sine's pitch survive") {
        const std::string p = dir.file("m.ogg");
        auto mono = gnet::test::sine(1000.0, n, rate, 0.5);
        write_audio(p, mono, 1, rate, SF_FORMAT_OGG | SF_FORMAT_VORBIS);
        DecodedAudio d = decode_audio(p);
        CHECK(d.channels == 1);
        CHECK(d.frames() == n);
        CHECK(zero_crossing_hz(d.mono, rate) == doctest::Approx(1000.0).epsilon(0.01));
    }
}

TEST_CASE("MP3 (44.1 kHz stereo) and Opus (48 kHz) written with libsndfile load at 22050 Hz") {
    TempDir dir;
    struct Case {
        const char* name;
        int format;
        int rate;
    };
    for (const Case& c : {Case{"t.mp3", SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III, 44100},
                          Case{"t.opus", SF_FORMAT_OGG | SF_FORMAT_OPUS, 48000}}) {
        INFO(c.name);
        const int64_t n = int64_t(c.rate) * 3;
        auto tone = gnet::test::sine(880.0, n, c.rate, 0.4);
        std::vector<float> inter(size_t(2 * n));
        for (int64_t i = 0; i < n; ++i)
            inter[size_t(2 * i)] = inter[size_t(2 * i + 1)] = tone[size_t(i)];
        const std::string p = dir.file(c.name);
        write_audio(p, inter, 2, c.rate, c.format);
        LoadedAudio a = load_audio(p);
        CHECK(a.source_rate == c.rate);
        CHECK(a.source_channels == 2);
        CHECK(a.duration_seconds == doctest::Approx(3.0).epsilon(0.05));  // codec padding/delay
        CHECK(zero_crossing_hz(a.samples, 22050) == doctest::Approx(880.0).epsilon(0.01));
    }
}

TEST_CASE("44.1 kHz stereo -> 22050 Hz mono keeps a sine's frequency") {
    TempDir dir;
    const std::string p = dir.file("hi.wav");
    const int64_t n = 44100 * 3;
    auto l = gnet::test::sine(1000.0, n, 44100, 0.4);
    std::vector<float> inter(size_t(2 * n));
    for (int64_t i = 0; i < n; ++i)
        inter[size_t(2 * i)] = inter[size_t(2 * i + 1)] = l[size_t(i)];
    write_audio(p, inter, 2, 44100, SF_FORMAT_WAV | SF_FORMAT_FLOAT);
    LoadedAudio a = load_audio(p);
    CHECK(a.source_rate == 44100);
    CHECK(a.source_channels == 2);
    CHECK(a.sample_rate == 22050);
    CHECK(a.duration_seconds == doctest::Approx(3.0));
    CHECK(a.samples.size() == size_t(3 * 22050));
    CHECK(zero_crossing_hz(a.samples, 22050) == doctest::Approx(1000.0).epsilon(0.005));
    // HQ resampling keeps the amplitude of an in-band sine (away from the filter's edges).
    float peak = 0.f;
    for (size_t i = 22050; i < 2 * 22050; ++i)
        peak = std::max(peak, std::fabs(a.samples[i]));
    CHECK(peak == doctest::Approx(0.4).epsilon(0.01));
}

TEST_CASE("resample: same rate is the identity, lengths follow the ratio, bad rates throw") {
    auto x = gnet::test::sine(300.0, 1000, 22050);
    CHECK(resample(x, 22050, 22050) == x);
    CHECK(resample(x, 44100, 22050).size() == 500);
    CHECK(resample(x, 16000, 22050).size() == size_t(std::llround(1000 * 22050.0 / 16000.0)));
    CHECK(resample({}, 44100, 22050).empty());
    CHECK_THROWS_AS(resample(x, 0, 22050), Error);
}

TEST_CASE("bad files: a clear gnet::Error naming the file, never a crash") {
    TempDir dir;
    SUBCASE("a text file named .wav") {
        const std::string p = dir.file("notes.wav");
        gnet::test::write_text(p, "this is not audio, just some text\n");
        CHECK_THROWS_WITH_AS(decode_audio(p), doctest::Contains("notes.wav"), Error);
    }
    SUBCASE("a zero-byte file") {
        const std::string p = dir.file("empty.flac");
        gnet::test::write_text(p, "");
        CHECK_THROWS_WITH_AS(decode_audio(p), doctest::Contains("empty.flac"), Error);
    }
    SUBCASE("a missing file") {
        CHECK_THROWS_WITH_AS(load_audio(dir.file("nope.mp3")), doctest::Contains("nope.mp3"),
                             Error);
    }
    SUBCASE("a WAV with no samples") {
        const std::string p = dir.file("silent.wav");
        write_audio(p, {}, 1, 22050, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
        CHECK_THROWS_WITH_AS(decode_audio(p), doctest::Contains("no audio samples"), Error);
    }
    SUBCASE("a float WAV holding a NaN") {
        const std::string p = dir.file("nan.wav");
        auto x = gnet::test::sine(440.0, 1000, 22050);
        x[500] = std::nanf("");
        write_audio(p, x, 1, 22050, SF_FORMAT_WAV | SF_FORMAT_FLOAT);
        CHECK_THROWS_WITH_AS(decode_audio(p), doctest::Contains("nan.wav"), Error);
        CHECK_THROWS_WITH_AS(decode_audio(p), doctest::Contains("sample 500"), Error);
    }
    SUBCASE("a truncated FLAC") {
        const std::string full = dir.file("full.flac"), cut = dir.file("cut.flac");
        write_audio(full, gnet::test::fixture_clip("noise", 5 * 22050), 1, 22050,
                    SF_FORMAT_FLAC | SF_FORMAT_PCM_16);
        const std::string bytes = gnet::test::read_text(full);
        gnet::test::write_text(cut, bytes.substr(0, bytes.size() / 2));
        try {
            decode_audio(cut);
            FAIL("a truncated FLAC decoded without error");
        } catch (const Error& e) {
            MESSAGE(std::string(e.what()));
            CHECK(std::string(e.what()).find("cut.flac") != std::string::npos);
        }
    }
}

TEST_CASE("real recordings from ../shared/data: FLAC 22050 mono and MP3 44.1 kHz stereo") {
    const std::string root = gnet::test::shared_data_dir();
    const std::vector<std::string> files = {root + "/gtzan-mini/blues/blues.00000.flac",
                                            root + "/gtzan-mini/jazz/jazz.00003.flac",
                                            root + "/emotify-dev/rock/13.mp3"};
    if (!gnet::test::path_exists(files[0]) || !gnet::test::path_exists(files[2])) {
        MESSAGE("skipped: " << root << " (shared data) is absent");
        return;
    }
    CpuSpectrogram spec;
    for (const std::string& f : files) {
        if (!gnet::test::path_exists(f)) continue;
        INFO(f);
        LoadedAudio a = load_audio(f);
        const bool mp3 = f.size() > 4 && f.substr(f.size() - 4) == ".mp3";
        CHECK(a.source_rate == (mp3 ? 44100 : 22050));
        CHECK(a.source_channels == (mp3 ? 2 : 1));
        CHECK(a.duration_seconds > 10.0);
        CHECK(a.samples.size() == size_t(std::llround(a.duration_seconds * 22050)));
        CHECK(gnet::test::all_finite(a.samples));
        const float peak =
            std::fabs(*std::max_element(a.samples.begin(), a.samples.end(), [](float x, float y) {
                return std::fabs(x) < std::fabs(y);
            }));
        CHECK(peak > 0.01f);
        CHECK(peak < 1.5f);
        auto chunks = make_chunks(a.samples, 220500, Remainder::Drop);
        const int64_t n = int64_t(chunks.size() / 220500);
        CHECK(n >= 1);
        std::vector<float> out(size_t(n) * 128 * 431);
        spec.compute(chunks.data(), n, out.data());
        CHECK(gnet::test::all_finite(out));
        CHECK(*std::max_element(out.begin(), out.end()) == 1.f);
        CHECK(*std::min_element(out.begin(), out.end()) == 0.f);
    }
}

TEST_CASE("FFmpeg decodes what libsndfile cannot: M4A/AAC, ALAC, WMA, MP4, Matroska (issue 17)") {
    TempDir dir;
    struct Case {
        const char* name;
        const char* format;
        const char* codec;
        int rate;
        double length_tol;  // encoder delay, and the writer pads its last frame with silence
    };
    for (const Case& c :
         {Case{"a.m4a", "ipod", "aac", 44100, 0.05}, Case{"alac.m4a", "ipod", "alac", 48000, 0.03},
          Case{"a.wma", "asf", "wmav2", 44100, 0.1}, Case{"a.mp4", "mp4", "aac", 32000, 0.05},
          Case{"a.mka", "matroska", "flac", 16000, 0.03}}) {
        INFO(std::string(c.name));
        const int64_t n = int64_t(c.rate) * 3;
        auto tone = gnet::test::sine(660.0, n, c.rate, 0.4);
        std::vector<float> inter(size_t(2 * n));
        for (int64_t i = 0; i < n; ++i)
            inter[size_t(2 * i)] = inter[size_t(2 * i + 1)] = tone[size_t(i)];
        const std::string p = dir.file(c.name);
        gnet::test::write_with_ffmpeg(p, c.format, c.codec, inter, 2, c.rate);
        AudioDecoder dec(p);
        CHECK(dec.info().format.find("FFmpeg") == 0);
        LoadedAudio a = load_audio(p);
        CHECK(a.source_rate == c.rate);
        CHECK(a.source_channels == 2);
        CHECK(a.duration_seconds == doctest::Approx(3.0).epsilon(c.length_tol));
        CHECK(zero_crossing_hz(a.samples, 22050) == doctest::Approx(660.0).epsilon(0.01));
    }
    CHECK(is_audio_file("x/a.M4A"));
    CHECK(is_audio_file("a.wma"));
    CHECK_FALSE(is_audio_file("cover.jpg"));
}

TEST_CASE("hostile audio files: one clear error naming the file, no crash, no hang (issue 18)") {
    TempDir dir;
    auto expect_error = [](const std::string& p, const std::string& part) {
        try {
            load_audio(p);
            FAIL("no error for " << p);
        } catch (const Error& e) {
            const std::string msg = e.what();
            INFO(msg);
            CHECK(msg.find(p) != std::string::npos);
            CHECK(msg.find(part) != std::string::npos);
            CHECK(msg.find('\n') == std::string::npos);
        }
    };
    SUBCASE("a text file named .mp3 (issue 17): the real reason") {
        gnet::test::write_text(dir.file("notes.mp3"), "just some text, not audio at all\n");
        expect_error(dir.file("notes.mp3"), "holds text, not audio");
    }
    SUBCASE("random bytes named .m4a") {
        std::string junk(4096, '\0');
        for (size_t i = 0; i < junk.size(); ++i)
            junk[i] = char((i * 2654435761u) >> 13);
        gnet::test::write_text(dir.file("junk.m4a"), junk);
        expect_error(dir.file("junk.m4a"), "cannot decode");
    }
    SUBCASE("a FIFO is refused before open() could block (18.3)") {
        const std::string p = dir.file("fifo.wav");
        REQUIRE(::mkfifo(p.c_str(), 0600) == 0);
        expect_error(p, "not a regular file");
    }
    SUBCASE("a folder") {
        expect_error(dir.path(), "folder");
    }
    SUBCASE("tiny WAVs: 1 sample at 48 kHz, 2 at 96 kHz (18.1) decode without a crash") {
        write_audio(dir.file("one.wav"), {0.5f}, 1, 48000, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
        write_audio(dir.file("two.wav"), {0.5f, -0.5f}, 1, 96000, SF_FORMAT_WAV | SF_FORMAT_FLOAT);
        CHECK(load_audio(dir.file("one.wav")).samples.size() <= 1);
        CHECK(load_audio(dir.file("two.wav")).samples.size() <= 1);
        CHECK(resample({0.5f}, 48000, 22050).empty());
    }
    SUBCASE("sample rates outside 1 kHz - 768 kHz (18.1, 18.11)") {
        write_audio(dir.file("1hz.wav"), std::vector<float>(100, 0.1f), 1, 1,
                    SF_FORMAT_WAV | SF_FORMAT_PCM_16);
        expect_error(dir.file("1hz.wav"), "sample rate 1 Hz is outside");
        write_audio(dir.file("ghz.wav"), std::vector<float>(4, 0.1f), 1, 1460000000,
                    SF_FORMAT_WAV | SF_FORMAT_FLOAT);
        expect_error(dir.file("ghz.wav"), "is outside");
    }
    SUBCASE("float samples far outside [-1, 1] (18.7)") {
        auto x = gnet::test::sine(440.0, 2000, 22050);
        x[1234] = 1e30f;
        write_audio(dir.file("huge.wav"), x, 1, 22050, SF_FORMAT_WAV | SF_FORMAT_FLOAT);
        expect_error(dir.file("huge.wav"), "sample 1234 is 1e+30, far outside [-1, 1]");
        x[1234] = 1.5f;  // a hot but honest float mix is fine
        write_audio(dir.file("hot.wav"), x, 1, 22050, SF_FORMAT_WAV | SF_FORMAT_FLOAT);
        CHECK(load_audio(dir.file("hot.wav")).samples.size() == 2000);
    }
}

TEST_CASE("a truncated MP3 is reported, not decoded as a short track (issue 17)") {
    const std::string src = gnet::test::shared_data_dir() + "/emotify-dev/rock/13.mp3";
    if (!gnet::test::path_exists(src)) {
        MESSAGE("skipped: " << src << " (shared data) is absent");
        return;
    }
    TempDir dir;
    const std::string bytes = gnet::test::read_text(src);
    gnet::test::write_text(dir.file("cut.mp3"), bytes.substr(0, 20000));  // ~1.2 s of 60 s
    CHECK_THROWS_WITH_AS(load_audio(dir.file("cut.mp3")), doctest::Contains("truncated"), Error);
    CHECK(load_audio(src).duration_seconds == doctest::Approx(60.0).epsilon(0.01));
}

TEST_CASE("Resampler in blocks gives the one-shot result") {
    auto x = gnet::test::sine(440.0, 100000, 44100, 0.5);
    std::vector<float> whole = resample(x, 44100, 22050), blocks;
    Resampler r(44100, 22050);
    for (size_t at = 0; at < x.size(); at += 7777)
        r.process(x.data() + at, std::min<size_t>(7777, x.size() - at), blocks);
    r.finish(blocks);
    REQUIRE(blocks.size() == whole.size());
    CHECK(blocks.size() == 50000);
    GNET_CHECK_CLOSE(blocks, whole, (Tolerance{1e-6, 0}));
}
