// Log-mel spectrograms of 10-second chunks: the images the network sees.
//
// Per chunk (220500 samples at 22050 Hz) and with the defaults of SpectrogramConfig:
//   1. frames: 431 centred frames (librosa center=True, pad_mode='constant'): frame t holds
//      samples [t*hop - n_fft/2, t*hop + n_fft/2) of the chunk, zero outside it (every chunk is
//      padded on its own; neighbouring chunks never leak in), times the periodic Hann window
//      w[n] = 0.5 - 0.5 cos(2 pi n / n_fft);
//   2. power: |rfft(frame)|^2, 1025 bins;
//   3. mel: S[m, t] = sum_k fb[m, k] * power[t, k] (Slaney filterbank, see mel_filterbank.h);
//   4. dB: 10 log10(max(S, 1e-10)), clipped below at (chunk max - top_db);
//   5. min-max to [0, 1] over the chunk; a constant chunk (e.g. silence) becomes all zeros.
// Output: float32 (n_chunks, n_mels, frames) = (n, 128, 431), row-major, `=` (overwritten).
// SpectrogramScale::Decibels stops after the dB of step 4, before the clip at max - top_db: what
// packed shards store (train/shards.h), so that a window cut anywhere in a track can be clipped
// and scaled later exactly as a chunk is (cpu::normalize_db_chunk; db_normalize_chunk is the two
// in one).
//
// CPU (CpuSpectrogram, spectrogram_cpu.cpp): FFTW r2c planned once per object and run batched over
// the 431 frames of a chunk; chunks are split over `threads` worker threads (one chunk per thread
// at a time, each thread with its own buffers; FFTW's new-array execute is thread-safe, its planner
// is not and is guarded by a lock). The mel projection walks each band's non-zero bins only. GPU
// (GpuSpectrogram, spectrogram.cu): one cuFFT R2C plan over the frames of up to max_batch chunks;
// kernels for framing + window, power + mel, dB + per-chunk min-max (one block per chunk, a shared-
// memory tree reduction: deterministic). Audio goes up once, images come down once, or both stay on
// the GPU through the device-pointer API.
#pragma once

#include <memory>
#include <vector>

#include "audio/mel_filterbank.h"
#include "audio/spectrogram_config.h"
#include "nn/device.h"

namespace gnet {

// The periodic Hann window of length n, computed in double, stored in float32.
std::vector<float> hann_window_periodic(int n);

enum class SpectrogramScale { Normalized, Decibels };

namespace cpu {

// Steps 4 and 5 on one chunk's mel powers, in place: x (n) power in, [0, 1] out (`=`).
void db_normalize_chunk(float* x, int64_t n, float top_db);
// Step 4 alone: x (n) power in, 10 log10(max(x, 1e-10)) out (`=`).
void power_to_db(float* x, int64_t n);
// Step 4's clip and step 5 on dB values, in place: [0, 1] out. power_to_db then this gives
// exactly what db_normalize_chunk gives.
void normalize_db_chunk(float* x, int64_t n, float top_db);

}  // namespace cpu

class CpuSpectrogram {
  public:
    explicit CpuSpectrogram(const SpectrogramConfig& cfg = {}, int threads = 1);
    ~CpuSpectrogram();
    CpuSpectrogram(const CpuSpectrogram&) = delete;
    CpuSpectrogram& operator=(const CpuSpectrogram&) = delete;

    // audio (n_chunks, chunk_samples) -> out (n_chunks, n_mels, frames), `=`.
    void compute(const float* audio, int64_t n_chunks, float* out,
                 SpectrogramScale scale = SpectrogramScale::Normalized) const;
    // The power spectrum of one chunk's frames, before the mel projection: (frames, n_freqs).
    std::vector<float> power_frames(const float* chunk) const;

    const SpectrogramConfig& config() const { return cfg_; }
    const MelFilterbank& filterbank() const { return fb_; }
    int threads() const { return threads_; }

  private:
    struct Work;
    void frames_fft(const float* chunk, Work& work) const;  // window + FFT of one chunk's frames
    void compute_chunk(const float* chunk, float* out, Work& work, SpectrogramScale scale) const;

    SpectrogramConfig cfg_;
    int threads_;
    MelFilterbank fb_;
    std::vector<float> window_;
    void* plan_ = nullptr;  // fftwf_plan over the frames of one chunk
};

#if GNET_HAVE_CUDA
// One stream per object: the frame and spectrum buffers are shared by every call, so calls on two
// different streams must not overlap.
class GpuSpectrogram {
  public:
    // Plans cuFFT and allocates the frame and spectrum buffers for up to `max_batch` chunks per
    // FFT call (~7 MB per chunk); larger inputs are processed in slices of max_batch chunks.
    explicit GpuSpectrogram(int max_batch, const SpectrogramConfig& cfg = {});
    ~GpuSpectrogram();
    GpuSpectrogram(const GpuSpectrogram&) = delete;
    GpuSpectrogram& operator=(const GpuSpectrogram&) = delete;

    // Device pointers: audio (n_chunks, chunk_samples) -> out (n_chunks, n_mels, frames), `=`.
    // Asynchronous on `stream`: kernels and cuFFT calls only, no host synchronisation or
    // allocation, whatever n_chunks is.
    void compute(const float* audio, int64_t n_chunks, float* out, Stream stream,
                 SpectrogramScale scale = SpectrogramScale::Normalized);
    // Host in, host out: one upload, one download, synchronous.
    std::vector<float> compute_host(const float* audio, int64_t n_chunks,
                                    SpectrogramScale scale = SpectrogramScale::Normalized);

    const SpectrogramConfig& config() const { return cfg_; }
    int max_batch() const { return max_batch_; }

  private:
    struct Impl;
    SpectrogramConfig cfg_;
    int max_batch_;
    std::unique_ptr<Impl> impl_;
};
#endif

// The one entry point that picks the device: `mono22050` holds at least n_chunks * chunk_samples
// samples (e.g. from make_chunks); chunk i is samples [i * chunk_samples, (i + 1) * chunk_samples).
// Returns (n_chunks, n_mels, frames). Device::CUDA in a CPU-only build is an Error.
std::vector<float> spectrogram_chunks(const std::vector<float>& mono22050, int64_t n_chunks,
                                      Device device, const SpectrogramConfig& cfg = {});

}  // namespace gnet
