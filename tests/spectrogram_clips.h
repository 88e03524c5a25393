// The deterministic clips of tests/fixtures/make_spectrogram_fixtures.py, evaluated in double and
// rounded to float32 exactly as the script does, so the fixture's audio never needs to be stored.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace gnet::test {

inline std::vector<float> fixture_clip(const std::string& name, int64_t n_samples = 220500,
                                       double sample_rate = 22050.0) {
    const double pi = std::acos(-1.0);
    std::vector<float> x(static_cast<size_t>(n_samples));
    uint32_t s = 12345;
    for (int64_t n = 0; n < n_samples; ++n) {
        const double t = double(n) / sample_rate;
        double v = 0;
        if (name == "chirp") {
            v = 0.5 * std::sin(2 * pi * (100.0 * t + (8000.0 - 100.0) * t * t / 20.0));
        } else if (name == "sines") {
            v = t >= 5.0 ? 0.0
                         : 0.4 * std::sin(2 * pi * 440.0 * t) +
                               0.2 * std::sin(2 * pi * 1000.0 * t + 0.3) +
                               0.05 * std::sin(2 * pi * 3500.0 * t);
        } else if (name == "noise") {
            s = 1664525u * s + 1013904223u;  // mod 2^32 by unsigned wrap-around
            const double u = double(s >> 8) / double(1u << 24);
            v = (u - 0.5) * 0.6 * std::exp(-0.3 * t);
        }
        x[size_t(n)] = float(v);
    }
    return x;
}

// A sine of `hz` at `amplitude`, `n_samples` long.
inline std::vector<float> sine(double hz, int64_t n_samples, double sample_rate = 22050.0,
                               double amplitude = 0.5) {
    const double pi = std::acos(-1.0);
    std::vector<float> x(static_cast<size_t>(n_samples));
    for (int64_t n = 0; n < n_samples; ++n)
        x[size_t(n)] = float(amplitude * std::sin(2 * pi * hz * n / sample_rate));
    return x;
}

}  // namespace gnet::test
