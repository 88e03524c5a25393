#include "audio/synth.h"

#include <sndfile.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>

#include "kernels/error.h"
#include "nn/atomic_file.h"

namespace fs = std::filesystem;

namespace gnet {

namespace {

constexpr double kTwoPi = 6.283185307179586;

double uniform(std::mt19937_64& rng) {
    return double(rng() >> 11) * (1.0 / 9007199254740992.0);
}

void add_pulse(std::vector<float>& y, int sr, std::mt19937_64& rng) {
    const double beat = 60.0 / (118.0 + 6.0 * uniform(rng));
    const int64_t n = int64_t(y.size());
    for (double t0 = 0; t0 * sr < double(n); t0 += beat) {
        // Kick: a sine sweeping 120 -> 45 Hz with an exponential decay.
        int64_t s0 = int64_t(t0 * sr);
        double phase = 0;
        for (int64_t i = 0; i < int64_t(0.35 * sr) && s0 + i < n; ++i) {
            double t = double(i) / sr;
            double f = 45.0 + 75.0 * std::exp(-t * 18.0);
            phase += kTwoPi * f / sr;
            y[size_t(s0 + i)] += float(0.8 * std::exp(-t * 7.0) * std::sin(phase));
        }
        // Hi-hat on the off-beat: short white-noise burst.
        int64_t h0 = int64_t((t0 + beat / 2) * sr);
        for (int64_t i = 0; i < int64_t(0.04 * sr) && h0 + i < n; ++i) {
            double t = double(i) / sr;
            y[size_t(h0 + i)] += float(0.25 * std::exp(-t * 90.0) * (2 * uniform(rng) - 1));
        }
    }
}

void add_drone(std::vector<float>& y, int sr, std::mt19937_64& rng) {
    const double roots[] = {110.0, 130.81, 146.83, 164.81, 98.0};
    const int64_t n = int64_t(y.size());
    const int64_t chord_len = int64_t(4.0 * sr);
    for (int64_t c0 = 0; c0 < n; c0 += chord_len) {
        double root = roots[rng() % 5];
        double notes[3] = {root, root * 1.25, root * 1.5};
        for (double f0 : notes) {
            for (int h = 1; h <= 6; ++h) {
                double f = f0 * h * (1.0 + 0.002 * (uniform(rng) - 0.5));
                double amp = 0.09 / h;
                double ph = kTwoPi * uniform(rng);
                for (int64_t i = 0; i < chord_len && c0 + i < n; ++i) {
                    double t = double(i) / sr;
                    double env =
                        std::min(1.0, t / 0.8) * std::min(1.0, (double(chord_len - i) / sr) / 0.8);
                    y[size_t(c0 + i)] += float(amp * env * std::sin(kTwoPi * f * t + ph));
                }
            }
        }
    }
}

void add_chime(std::vector<float>& y, int sr, std::mt19937_64& rng) {
    const int64_t n = int64_t(y.size());
    const double ratios[] = {1.0, 2.76, 5.40, 8.93};
    for (double t0 = 0.2 * uniform(rng); t0 * sr < double(n); t0 += 0.6 + 1.2 * uniform(rng)) {
        double f0 = 1200.0 + 1800.0 * uniform(rng);
        int64_t s0 = int64_t(t0 * sr);
        for (double r : ratios) {
            double f = f0 * r;
            if (f > 0.45 * sr) continue;
            for (int64_t i = 0; i < int64_t(1.5 * sr) && s0 + i < n; ++i) {
                double t = double(i) / sr;
                y[size_t(s0 + i)] +=
                    float(0.3 / r * std::exp(-t * (2.5 + r)) * std::sin(kTwoPi * f * t));
            }
        }
    }
}

void add_bass(std::vector<float>& y, int sr, std::mt19937_64& rng) {
    const double notes[] = {41.2, 55.0, 61.74, 73.42, 82.41};
    const double step = 60.0 / 100.0 / 2.0;  // eighth notes at 100 BPM
    const int64_t n = int64_t(y.size());
    for (double t0 = 0; t0 * sr < double(n); t0 += step) {
        double f = notes[rng() % 5];
        int64_t s0 = int64_t(t0 * sr);
        for (int64_t i = 0; i < int64_t(step * sr) && s0 + i < n; ++i) {
            double t = double(i) / sr;
            double sq = 0;
            for (int h = 1; h <= 9; h += 2)
                sq += std::sin(kTwoPi * f * h * t) / h;
            y[size_t(s0 + i)] += float(0.35 * std::exp(-t * 6.0) * sq);
        }
    }
    for (float& v : y)
        v += float(0.01 * (2 * uniform(rng) - 1));
}

void write_wav(const std::string& path, const std::vector<float>& y, int sr) {
    SF_INFO info{};
    info.samplerate = sr;
    info.channels = 1;
    info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
    std::string tmp = path + ".tmp.wav";
    SNDFILE* f = sf_open(tmp.c_str(), SFM_WRITE, &info);
    if (!f) throw Error(path + ": cannot write WAV: " + sf_strerror(nullptr));
    sf_count_t written = sf_writef_float(f, y.data(), sf_count_t(y.size()));
    sf_close(f);
    if (written != sf_count_t(y.size())) throw Error(path + ": short write");
    fs::rename(tmp, path);
}

}  // namespace

const std::vector<std::string>& synth_genres() {
    static const std::vector<std::string> g = {"pulse", "drone", "chime", "bass"};
    return g;
}

std::vector<float> synth_track(const std::vector<std::string>& genres, double seconds,
                               int sample_rate, uint64_t seed) {
    GNET_CHECK(seconds > 0 && sample_rate > 0, "synth_track needs a positive length and rate");
    std::vector<float> y(size_t(seconds * sample_rate), 0.0f);
    std::mt19937_64 rng(seed);
    for (const std::string& g : genres) {
        if (g == "pulse")
            add_pulse(y, sample_rate, rng);
        else if (g == "drone")
            add_drone(y, sample_rate, rng);
        else if (g == "chime")
            add_chime(y, sample_rate, rng);
        else if (g == "bass")
            add_bass(y, sample_rate, rng);
        else
            throw Error("synth_track: unknown genre '" + g + "'");
    }
    float peak = 0;
    for (float v : y)
        peak = std::max(peak, std::fabs(v));
    if (peak > 0.95f)
        for (float& v : y)
            v *= 0.95f / peak;
    return y;
}

int write_demo_set(const DemoSetOptions& opt) {
    const auto& genres = synth_genres();
    std::error_code ec;
    fs::create_directories(opt.out_dir, ec);
    if (ec) throw Error(opt.out_dir + ": cannot create folder: " + ec.message());
    std::string csv = "track";
    for (const auto& g : genres)
        csv += "," + g;
    csv += "\n";
    int count = 0;
    uint64_t seed = opt.seed * 1000003ull + 17;
    auto emit = [&](const std::vector<size_t>& gs, int k) {
        std::string name;
        std::vector<std::string> names;
        for (size_t g : gs) {
            name += (name.empty() ? "" : "+") + genres[g];
            names.push_back(genres[g]);
        }
        name += "_" + std::to_string(k) + ".wav";
        write_wav((fs::path(opt.out_dir) / name).string(),
                  synth_track(names, opt.seconds, opt.sample_rate, seed++), opt.sample_rate);
        csv += name;
        for (size_t g = 0; g < genres.size(); ++g)
            csv += std::find(gs.begin(), gs.end(), g) != gs.end() ? ",1" : ",0";
        csv += "\n";
        ++count;
    };
    for (size_t g = 0; g < genres.size(); ++g)
        for (int k = 0; k < opt.tracks_per_genre; ++k)
            emit({g}, k);
    const std::vector<std::vector<size_t>> pairs = {{0, 3}, {1, 2}, {0, 2}, {1, 3}};
    for (int k = 0; k < opt.two_label_tracks; ++k)
        emit(pairs[size_t(k) % pairs.size()], k);
    write_file_atomic((fs::path(opt.out_dir) / "labels.csv").string(), csv);
    return count;
}

}  // namespace gnet
