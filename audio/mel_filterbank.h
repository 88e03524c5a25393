// The Slaney mel filterbank, exactly as librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax,
// htk=False, norm='slaney') builds it (and torchaudio's melscale_fbanks with norm='slaney',
// mel_scale='slaney'):
//   mel(f) = 3 f / 200 below 1 kHz, 15 + ln(f / 1000) / (ln 6.4 / 27) above (and the inverse);
//   n_mels + 2 edges equally spaced in mel between mel(fmin) and mel(fmax);
//   band m is the triangle rising from edge m to edge m+1 and falling to edge m+2, evaluated at the
//   FFT bin frequencies k * sample_rate / n_fft, scaled by 2 / (edge[m+2] - edge[m]) (equal area).
// Computed in double, stored in float32. Built once per spectrogram object and used by the CPU and
// the GPU paths alike, so both project with the very same weights.
#pragma once

#include <vector>

#include "audio/spectrogram_config.h"

namespace gnet {

double hz_to_mel_slaney(double hz);
double mel_to_hz_slaney(double mel);

struct MelFilterbank {
    int n_mels = 0;
    int n_freqs = 0;
    std::vector<float> weights;  // (n_mels, n_freqs), row-major
    // Each band's non-zero weights lie in bins [begin[m], end[m]); begin == end for an empty band.
    std::vector<int> begin;  // (n_mels)
    std::vector<int> end;    // (n_mels)
};

MelFilterbank mel_filterbank(const SpectrogramConfig& cfg);

}  // namespace gnet
