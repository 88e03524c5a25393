#include "audio/mel_filterbank.h"

#include <algorithm>
#include <cmath>

namespace gnet {

namespace {
constexpr double kLinearHzPerMel = 200.0 / 3.0;  // below 1 kHz the Slaney scale is linear
constexpr double kLogStartHz = 1000.0;
constexpr double kLogStartMel = kLogStartHz / kLinearHzPerMel;  // 15
const double kLogStep = std::log(6.4) / 27.0;                   // mel step of the log part
}  // namespace

double hz_to_mel_slaney(double hz) {
    if (hz < kLogStartHz) return hz / kLinearHzPerMel;
    return kLogStartMel + std::log(hz / kLogStartHz) / kLogStep;
}

double mel_to_hz_slaney(double mel) {
    if (mel < kLogStartMel) return mel * kLinearHzPerMel;
    return kLogStartHz * std::exp(kLogStep * (mel - kLogStartMel));
}

MelFilterbank mel_filterbank(const SpectrogramConfig& cfg) {
    cfg.validate();
    MelFilterbank fb;
    fb.n_mels = cfg.n_mels;
    fb.n_freqs = cfg.n_freqs();
    fb.weights.assign(size_t(fb.n_mels) * size_t(fb.n_freqs), 0.f);
    fb.begin.assign(size_t(fb.n_mels), 0);
    fb.end.assign(size_t(fb.n_mels), 0);

    // n_mels + 2 band edges, equally spaced on the mel scale (numpy.linspace: start + i * step,
    // the last one exactly the stop value).
    const int n_edges = cfg.n_mels + 2;
    const double mel_lo = hz_to_mel_slaney(cfg.fmin), mel_hi = hz_to_mel_slaney(cfg.fmax);
    const double step = (mel_hi - mel_lo) / double(n_edges - 1);
    std::vector<double> edge_hz(static_cast<size_t>(n_edges));
    for (int i = 0; i < n_edges; ++i)
        edge_hz[size_t(i)] = mel_to_hz_slaney(i == n_edges - 1 ? mel_hi : mel_lo + i * step);

    const double bin_hz = double(cfg.sample_rate) / double(cfg.n_fft);
    for (int m = 0; m < cfg.n_mels; ++m) {
        const double lo = edge_hz[size_t(m)], mid = edge_hz[size_t(m) + 1],
                     hi = edge_hz[size_t(m) + 2];
        const double area_norm = 2.0 / (hi - lo);
        int first = fb.n_freqs, last = -1;
        for (int k = 0; k < fb.n_freqs; ++k) {
            const double f = k * bin_hz;
            const double rising = (f - lo) / (mid - lo);
            const double falling = (hi - f) / (hi - mid);
            const double w = std::max(0.0, std::min(rising, falling)) * area_norm;
            const float wf = float(w);
            fb.weights[size_t(m) * size_t(fb.n_freqs) + size_t(k)] = wf;
            if (wf != 0.f) {
                first = std::min(first, k);
                last = k;
            }
        }
        fb.begin[size_t(m)] = last < 0 ? 0 : first;
        fb.end[size_t(m)] = last < 0 ? 0 : last + 1;
    }
    return fb;
}

}  // namespace gnet
