// CPU twin of the spectrogram: the specification the GPU path is tested against.
#include <fftw3.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "audio/spectrogram.h"
#include "kernels/error.h"

namespace gnet {

namespace {

// FFTW's planner (and plan destruction) touch global state and are not thread-safe; execution is.
std::mutex& fftw_planner_mutex() {
    static std::mutex m;
    return m;
}

struct FftwFree {
    void operator()(void* p) const { fftwf_free(p); }
};
template <class T>
using FftwPtr = std::unique_ptr<T[], FftwFree>;

template <class T>
FftwPtr<T> fftw_alloc(size_t n) {
    T* p = static_cast<T*>(fftwf_malloc(n * sizeof(T)));
    if (!p)
        throw Error("out of memory allocating " + std::to_string(n * sizeof(T)) +
                    " bytes for FFTW");
    return FftwPtr<T>(p);
}

}  // namespace

namespace cpu {

void power_to_db(float* x, int64_t n) {
    for (int64_t i = 0; i < n; ++i)
        x[i] = 10.0f * std::log10(std::max(x[i], 1e-10f));
}

void db_normalize_chunk(float* x, int64_t n, float top_db) {
    power_to_db(x, n);
    normalize_db_chunk(x, n, top_db);
}

void normalize_db_chunk(float* x, int64_t n, float top_db) {
    if (n <= 0) return;
    float hi = -INFINITY, lo = INFINITY;
    for (int64_t i = 0; i < n; ++i) {
        hi = std::max(hi, x[i]);
        lo = std::min(lo, x[i]);
    }
    lo = std::max(lo, hi - top_db);  // the floor: nothing below max - top_db
    const float range = hi - lo;
    for (int64_t i = 0; i < n; ++i)
        x[i] = range > 0.f ? (std::max(x[i], lo) - lo) / range : 0.f;
}

}  // namespace cpu

// One thread's scratch: windowed frames in, complex spectra out (FFTW-aligned, like the plan's).
struct CpuSpectrogram::Work {
    FftwPtr<float> frames;           // (frames, n_fft)
    FftwPtr<fftwf_complex> spectra;  // (frames, n_freqs)
    explicit Work(const SpectrogramConfig& cfg)
        : frames(fftw_alloc<float>(size_t(cfg.frames()) * size_t(cfg.n_fft))),
          spectra(fftw_alloc<fftwf_complex>(size_t(cfg.frames()) * size_t(cfg.n_freqs()))) {}
};

CpuSpectrogram::CpuSpectrogram(const SpectrogramConfig& cfg, int threads)
    : cfg_(cfg),
      threads_(threads),
      fb_(mel_filterbank(cfg)),
      window_(hann_window_periodic(cfg.n_fft)) {
    GNET_CHECK(threads >= 1,
               "CPU spectrogram needs at least one thread, got " + std::to_string(threads));
    Work scratch(cfg_);
    int n = cfg_.n_fft;
    std::lock_guard<std::mutex> lock(fftw_planner_mutex());
    // FFTW_ESTIMATE: no timing runs, so the same plan (and bit-identical results) on every run.
    plan_ =
        fftwf_plan_many_dft_r2c(1, &n, cfg_.frames(), scratch.frames.get(), nullptr, 1, cfg_.n_fft,
                                scratch.spectra.get(), nullptr, 1, cfg_.n_freqs(), FFTW_ESTIMATE);
    if (!plan_) throw Error("FFTW could not plan a " + std::to_string(n) + "-point real FFT");
}

CpuSpectrogram::~CpuSpectrogram() {
    std::lock_guard<std::mutex> lock(fftw_planner_mutex());
    fftwf_destroy_plan(static_cast<fftwf_plan>(plan_));
}

void CpuSpectrogram::frames_fft(const float* chunk, Work& work) const {
    const int T = cfg_.frames(), N = cfg_.n_fft, hop = cfg_.hop;
    const int64_t L = cfg_.chunk_samples();
    for (int t = 0; t < T; ++t) {
        float* frame = work.frames.get() + size_t(t) * size_t(N);
        // Centred: frame t covers samples [t*hop - N/2, t*hop + N/2); zeros outside the chunk.
        const int64_t start = int64_t(t) * hop - N / 2;
        const int n0 = int(std::clamp<int64_t>(-start, 0, N));      // first sample inside the chunk
        const int n1 = int(std::clamp<int64_t>(L - start, n0, N));  // one past the last
        for (int n = 0; n < n0; ++n)
            frame[n] = 0.f;
        for (int n = n0; n < n1; ++n)
            frame[n] = chunk[start + n] * window_[size_t(n)];
        for (int n = n1; n < N; ++n)
            frame[n] = 0.f;
    }
    fftwf_execute_dft_r2c(static_cast<fftwf_plan>(plan_), work.frames.get(), work.spectra.get());
}

std::vector<float> CpuSpectrogram::power_frames(const float* chunk) const {
    Work work(cfg_);
    frames_fft(chunk, work);
    std::vector<float> power(size_t(cfg_.frames()) * size_t(cfg_.n_freqs()));
    for (size_t i = 0; i < power.size(); ++i) {
        const float re = work.spectra[i][0], im = work.spectra[i][1];
        power[i] = re * re + im * im;
    }
    return power;
}

void CpuSpectrogram::compute_chunk(const float* chunk, float* out, Work& work,
                                   SpectrogramScale scale) const {
    const int T = cfg_.frames(), F = cfg_.n_freqs();
    frames_fft(chunk, work);
    // Power, transposed to (n_freqs, frames), in place of the frames (n_freqs * frames <= n_fft *
    // frames floats); then the mel projection over each band's non-zero bins. Every output is
    // summed in bin order from 0 (as the GPU sums it); the inner loop runs over frames, so it
    // vectorises.
    float* power_t = work.frames.get();
    const fftwf_complex* spec = work.spectra.get();
    for (int t = 0; t < T; ++t)
        for (int k = 0; k < F; ++k) {
            const fftwf_complex& v = spec[size_t(t) * size_t(F) + size_t(k)];
            power_t[size_t(k) * size_t(T) + size_t(t)] = v[0] * v[0] + v[1] * v[1];
        }
    for (int m = 0; m < fb_.n_mels; ++m) {
        const float* w = fb_.weights.data() + size_t(m) * size_t(F);
        float* row = out + size_t(m) * size_t(T);
        std::fill(row, row + T, 0.f);
        for (int k = fb_.begin[size_t(m)]; k < fb_.end[size_t(m)]; ++k) {
            const float wk = w[k];
            const float* p = power_t + size_t(k) * size_t(T);
            for (int t = 0; t < T; ++t)
                row[t] += wk * p[t];
        }
    }
    if (scale == SpectrogramScale::Decibels)
        cpu::power_to_db(out, int64_t(fb_.n_mels) * T);
    else
        cpu::db_normalize_chunk(out, int64_t(fb_.n_mels) * T, float(cfg_.top_db));
}

void CpuSpectrogram::compute(const float* audio, int64_t n_chunks, float* out,
                             SpectrogramScale scale) const {
    GNET_CHECK(n_chunks >= 0, "chunk count must not be negative");
    const int64_t in_stride = cfg_.chunk_samples(), out_stride = cfg_.chunk_values();
    const int workers = int(std::min<int64_t>(threads_, n_chunks));
    if (workers <= 1) {
        Work work(cfg_);
        for (int64_t c = 0; c < n_chunks; ++c)
            compute_chunk(audio + c * in_stride, out + c * out_stride, work, scale);
        return;
    }
    // Static split: worker w takes chunks w, w + workers, ... (no shared state, nothing to lock).
    std::vector<std::thread> pool;
    std::vector<std::exception_ptr> errors(static_cast<size_t>(workers));
    for (int w = 0; w < workers; ++w) {
        pool.emplace_back([&, w] {
            try {
                Work work(cfg_);
                for (int64_t c = w; c < n_chunks; c += workers)
                    compute_chunk(audio + c * in_stride, out + c * out_stride, work, scale);
            } catch (...) {
                errors[size_t(w)] = std::current_exception();
            }
        });
    }
    for (auto& th : pool)
        th.join();
    for (auto& e : errors)
        if (e) std::rethrow_exception(e);
}

}  // namespace gnet
