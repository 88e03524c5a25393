// The numbers that turn 22050 Hz mono audio into [n_mels, frames] log-mel images (SPEC.md,
// "Audio front end"; the defaults are librosa's). Shared by decoding, chunking, the mel filterbank,
// the CPU and GPU spectrograms and the checkpoint metadata. Plain C++, no CUDA headers.
#pragma once

#include <cstdint>

namespace gnet {

struct SpectrogramConfig {
    int sample_rate = 22050;  // Hz, after resampling
    int n_fft = 2048;         // FFT size = window length (periodic Hann)
    int hop = 512;            // samples between frame starts
    int n_mels = 128;         // Slaney mel bands with Slaney area normalisation
    double fmin = 0.0;        // Hz, lowest mel edge
    double fmax = 11025.0;    // Hz, highest mel edge
    double top_db = 80.0;     // dB kept below each chunk's maximum
    int chunk_seconds = 10;   // non-overlapping chunks of this length

    int n_freqs() const { return n_fft / 2 + 1; }  // one-sided FFT bins
    int64_t chunk_samples() const { return int64_t(sample_rate) * chunk_seconds; }  // 220500
    // Centred framing (librosa center=True): n_fft/2 zeros on each side, so 1 + len/hop frames.
    int frames() const { return int(1 + chunk_samples() / hop); }        // 431
    int64_t chunk_values() const { return int64_t(n_mels) * frames(); }  // one chunk's output

    // Throws gnet::Error when a field is out of range (non-positive sizes, odd n_fft, fmax above
    // Nyquist, fmin >= fmax, top_db <= 0, a chunk shorter than one FFT).
    void validate() const;
};

}  // namespace gnet
