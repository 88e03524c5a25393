// Log-mel spectrograms on the CPU: known answers, and torchaudio's numbers as external truth
// (tests/fixtures/spectrogram, made by tests/fixtures/make_spectrogram_fixtures.py).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <thread>

#include "audio/chunk.h"
#include "audio/mel_filterbank.h"
#include "audio/npy.h"
#include "audio/png.h"
#include "audio/spectrogram.h"
#include "tests/check.h"
#include "tests/helpers.h"
#include "tests/spectrogram_clips.h"

using namespace gnet;
using gnet::test::Tolerance;

namespace {

// torchaudio (float64) vs our float32 FFTW path, on the [0, 1] scale of the 80 dB range.
constexpr double kRefMeanAbs = 1e-4;
constexpr double kRefMaxAbs = 2e-3;
// The filterbank is computed in double here and by torchaudio: only float32 rounding differs.
constexpr Tolerance kFilterbankTol{1e-9, 1e-5};

std::string fixture(const std::string& name) {
    return gnet::test::fixtures_dir() + "/spectrogram/" + name;
}

std::vector<float> cpu_spectrogram(const std::vector<float>& audio, int64_t n_chunks,
                                   int threads = 1) {
    CpuSpectrogram spec({}, threads);
    std::vector<float> out(size_t(n_chunks * spec.config().chunk_values()));
    spec.compute(audio.data(), n_chunks, out.data());
    return out;
}

}  // namespace

TEST_CASE("SpectrogramConfig defaults: 220500 samples give exactly 431 frames of 128 bands") {
    SpectrogramConfig cfg;
    CHECK(cfg.chunk_samples() == 220500);
    CHECK(cfg.frames() == 431);
    CHECK(cfg.n_freqs() == 1025);
    CHECK(cfg.chunk_values() == 128 * 431);
    auto out = cpu_spectrogram(std::vector<float>(220500, 0.f), 1);
    CHECK(out.size() == size_t(128 * 431));
    SpectrogramConfig bad;
    bad.fmax = 20000;
    CHECK_THROWS_WITH(bad.validate(), doctest::Contains("Nyquist"));
}

TEST_CASE("periodic Hann window") {
    auto w = hann_window_periodic(2048);
    CHECK(w[0] == 0.f);
    CHECK(w[1024] == 1.f);
    CHECK(w[512] == doctest::Approx(0.5).epsilon(1e-7));
    CHECK(w[2047] == doctest::Approx(w[1]).epsilon(1e-6));  // periodic: w[N - n] == w[n]
}

TEST_CASE("Slaney mel filterbank matches torchaudio (norm='slaney', mel_scale='slaney')") {
    CHECK(hz_to_mel_slaney(1000.0) == doctest::Approx(15.0));
    CHECK(mel_to_hz_slaney(hz_to_mel_slaney(5000.0)) == doctest::Approx(5000.0));
    CHECK(hz_to_mel_slaney(200.0) == doctest::Approx(3.0));
    MelFilterbank fb = mel_filterbank(SpectrogramConfig{});
    REQUIRE(fb.n_mels == 128);
    REQUIRE(fb.n_freqs == 1025);
    auto ref = npy_read_f32(fixture("mel_filterbank.npy"), {128, 1025});
    GNET_CHECK_CLOSE(fb.weights, ref, kFilterbankTol);
    // The band ranges hold every non-zero weight and nothing outside them is non-zero.
    for (int m = 0; m < fb.n_mels; ++m) {
        CHECK(fb.begin[m] < fb.end[m]);
        for (int k = 0; k < fb.n_freqs; ++k) {
            const bool inside = k >= fb.begin[m] && k < fb.end[m];
            if (!inside) CHECK(fb.weights[size_t(m) * 1025 + k] == 0.f);
        }
    }
}

TEST_CASE("CPU spectrogram matches torchaudio on a chirp, a sine mix and decaying noise") {
    const char* names[] = {"chirp", "sines", "noise"};
    auto ref = npy_read_f32(fixture("expected.npy"), {3, 128, 431});
    const size_t per = 128 * 431;
    std::vector<float> audio;
    for (const char* name : names) {
        auto clip = gnet::test::fixture_clip(name);
        audio.insert(audio.end(), clip.begin(), clip.end());
    }
    auto got = cpu_spectrogram(audio, 3);
    REQUIRE(got.size() == ref.size());
    for (int c = 0; c < 3; ++c) {
        double sum = 0, worst = 0;
        for (size_t i = 0; i < per; ++i) {
            const double d = std::fabs(double(got[c * per + i]) - double(ref[c * per + i]));
            sum += d;
            worst = std::max(worst, d);
        }
        const double mean = sum / double(per);
        INFO(names[c], ": mean abs ", mean, ", max abs ", worst);
        CHECK(mean <= kRefMeanAbs);
        CHECK(worst <= kRefMaxAbs);
        CHECK(gnet::test::all_finite(got));
    }
}

TEST_CASE("a 1 kHz sine peaks in the mel band containing 1 kHz") {
    CpuSpectrogram spec;
    auto out = cpu_spectrogram(gnet::test::sine(1000.0, 220500), 1);
    const MelFilterbank& fb = spec.filterbank();
    std::vector<double> band_energy(128, 0.0);
    for (int m = 0; m < 128; ++m)
        for (int t = 0; t < 431; ++t)
            band_energy[m] += out[size_t(m) * 431 + t];
    const int peak =
        int(std::max_element(band_energy.begin(), band_energy.end()) - band_energy.begin());
    // 1 kHz lies between FFT bins 92 and 93 (10.77 Hz per bin): the band weighting them most.
    int expect = 0;
    for (int m = 1; m < 128; ++m) {
        auto at = [&](int mm) {
            return fb.weights[size_t(mm) * 1025 + 92] + fb.weights[size_t(mm) * 1025 + 93];
        };
        if (at(m) > at(expect)) expect = m;
    }
    CHECK(peak == expect);
    // Band m spans mel edges m .. m + 2 of 130 equally spaced edges from mel(0) = 0 to mel(11025).
    auto edge_hz = [](int i) { return mel_to_hz_slaney(i * hz_to_mel_slaney(11025.0) / 129.0); };
    CHECK(edge_hz(peak) < 1000.0);
    CHECK(edge_hz(peak + 2) > 1000.0);
    // Mid-chunk, the loudest value of every frame is in that band.
    for (int t = 10; t < 420; t += 37) {
        int best = 0;
        for (int m = 1; m < 128; ++m)
            if (out[size_t(m) * 431 + t] > out[size_t(best) * 431 + t]) best = m;
        CHECK(best == peak);
    }
}

TEST_CASE("a sine on an FFT bin peaks in that bin of the power spectrum") {
    CpuSpectrogram spec;
    const int bin = 200;
    auto power = spec.power_frames(gnet::test::sine(bin * 22050.0 / 2048.0, 220500).data());
    REQUIRE(power.size() == size_t(431) * 1025);
    const float* frame = power.data() + size_t(215) * 1025;
    CHECK(std::max_element(frame, frame + 1025) - frame == bin);
    // Amplitude 0.5 under a Hann window (sum 1024): |X[bin]| = 0.5 * 1024 / 2 = 256.
    CHECK(std::sqrt(frame[bin]) == doctest::Approx(256.0).epsilon(1e-4));
}

TEST_CASE("silence gives an all-zero chunk") {
    auto out = cpu_spectrogram(std::vector<float>(2 * 220500, 0.f), 2);
    CHECK(std::all_of(out.begin(), out.end(), [](float v) { return v == 0.f; }));
}

TEST_CASE("dB floor: nothing below max - 80 dB, then min-max to [0, 1]") {
    // Powers 1, 1e-3, 1e-12, 0 -> 0, -30, -120, -100 dB -> floor at -80 -> 1, 0.625, 0, 0.
    std::vector<float> x = {1.f, 1e-3f, 1e-12f, 0.f};
    cpu::db_normalize_chunk(x.data(), 4, 80.f);
    CHECK(x[0] == 1.f);
    CHECK(x[1] == doctest::Approx(0.625).epsilon(1e-6));
    CHECK(x[2] == 0.f);
    CHECK(x[3] == 0.f);
    // A range under 80 dB is stretched to [0, 1]: 1 and 1e-2 (20 dB apart) -> 1, 0.
    std::vector<float> y = {1e-2f, 1.f, 1e-1f};
    cpu::db_normalize_chunk(y.data(), 3, 80.f);
    CHECK(y[0] == 0.f);
    CHECK(y[1] == 1.f);
    CHECK(y[2] == doctest::Approx(0.5).epsilon(1e-6));
    // A constant chunk becomes all zeros.
    std::vector<float> z(10, 3.f);
    cpu::db_normalize_chunk(z.data(), 10, 80.f);
    CHECK(std::all_of(z.begin(), z.end(), [](float v) { return v == 0.f; }));

    // On a real spectrogram: the sine mix's silent second half sits exactly on the floor (0),
    // every value is in [0, 1] and both ends are reached.
    auto out = cpu_spectrogram(gnet::test::fixture_clip("sines"), 1);
    CHECK(*std::min_element(out.begin(), out.end()) == 0.f);
    CHECK(*std::max_element(out.begin(), out.end()) == 1.f);
    for (int m = 0; m < 128; ++m)
        for (int t = 220; t < 431; ++t)
            CHECK(out[size_t(m) * 431 + t] == 0.f);
}

TEST_CASE("chunks are independent and threads do not change the result") {
    std::vector<float> audio = gnet::test::fixture_clip("noise");
    auto chirp = gnet::test::fixture_clip("chirp");
    audio.insert(audio.end(), chirp.begin(), chirp.end());
    audio.insert(audio.end(), audio.begin(), audio.begin() + 220500);  // noise again
    auto one = cpu_spectrogram(audio, 3, 1);
    auto two = cpu_spectrogram(audio, 3, 2);
    CHECK(one == two);
    const size_t per = 128 * 431;
    CHECK(std::equal(one.begin(), one.begin() + per, one.begin() + 2 * per));  // chunk 0 == chunk 2
    auto alone = cpu_spectrogram(chirp, 1);
    CHECK(std::equal(alone.begin(), alone.end(), one.begin() + per));
}

TEST_CASE("spectrogram_chunks on the CPU: shape, input checks") {
    auto audio = make_chunks(gnet::test::sine(440.0, 25 * 22050), 220500, Remainder::Pad);
    REQUIRE(audio.size() == 3 * 220500);
    auto out = spectrogram_chunks(audio, 3, Device::CPU);
    CHECK(out.size() == size_t(3) * 128 * 431);
    CHECK(gnet::test::all_finite(out));
    CHECK(spectrogram_chunks(audio, 0, Device::CPU).empty());
    CHECK_THROWS_WITH(spectrogram_chunks(audio, 4, Device::CPU), doctest::Contains("samples"));
#if !GNET_HAVE_CUDA
    CHECK_THROWS_WITH(spectrogram_chunks(audio, 1, Device::CUDA),
                      doctest::Contains("without CUDA"));
#endif
}

TEST_CASE("CPU spectrogram with other settings keeps shape and range") {
    SpectrogramConfig cfg;
    cfg.n_fft = 4096;
    cfg.hop = 1000;
    cfg.n_mels = 96;
    cfg.chunk_seconds = 2;
    cfg.sample_rate = 16000;
    cfg.fmin = 30;
    cfg.fmax = 8000;
    CHECK(cfg.frames() == 1 + 32000 / 1000);
    CpuSpectrogram spec(cfg);
    auto audio = gnet::test::fixture_clip("chirp", cfg.chunk_samples(), cfg.sample_rate);
    std::vector<float> out(size_t(cfg.chunk_values()));
    spec.compute(audio.data(), 1, out.data());
    CHECK(*std::min_element(out.begin(), out.end()) == 0.f);
    CHECK(*std::max_element(out.begin(), out.end()) == 1.f);
    const MelFilterbank& fb = spec.filterbank();
    CHECK(fb.begin[0] > 0);  // fmin 30 Hz: bin 0 (DC) is in no band
    CHECK(fb.end[95] <= 2049);
}

TEST_CASE("viridis colour map: ends, clamping, rising brightness") {
    CHECK(viridis(0.f) == std::array<uint8_t, 3>{0x44, 0x01, 0x54});
    CHECK(viridis(1.f) == std::array<uint8_t, 3>{0xfd, 0xe7, 0x25});
    CHECK(viridis(-3.f) == viridis(0.f));
    CHECK(viridis(7.f) == viridis(1.f));
    CHECK(viridis(std::nanf("")) == viridis(0.f));
    auto luma = [](std::array<uint8_t, 3> c) {
        return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
    };
    for (int i = 0; i < 100; ++i)
        CHECK(luma(viridis((i + 1) / 100.f)) >= luma(viridis(i / 100.f)));
}

TEST_CASE("CpuSpectrogram objects can be created and used from several threads at once") {
    const auto audio = gnet::test::fixture_clip("chirp");
    const auto expect = cpu_spectrogram(audio, 1);
    std::vector<std::vector<float>> got(4);
    std::vector<std::thread> pool;
    for (int i = 0; i < 4; ++i)
        pool.emplace_back([&, i] {
            for (int rep = 0; rep < 3; ++rep)
                got[size_t(i)] = cpu_spectrogram(audio, 1);  // plans + destroys
        });
    for (auto& th : pool)
        th.join();
    for (const auto& g : got)
        CHECK(g == expect);
}
