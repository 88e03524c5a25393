// GPU twin of the spectrogram (see spectrogram.h for the maths; spectrogram_cpu.cpp is the spec).
//
// Per slice of up to max_batch chunks, three launches and one cuFFT call on one stream, nothing
// on the host in between (one plan serves every slice: see compute()):
//   spectrogram_frames_kernel   one thread per frame sample (grid-stride): centred, zero-padded,
//                               Hann-windowed frames (chunks * frames, n_fft), `=`
//   cufftExecR2C                all frames of the slice in one batched plan -> (chunks * frames,
//   n_freqs) spectrogram_mel_kernel      block = (frames_per_block frames of one chunk): the power
//   of those
//                               frames goes to shared memory (coalesced), then each thread sums
//                               (band, frame) outputs over the band's non-zero bins in bin order;
//                               writes out (chunk, n_mels, frames), `=`
//   spectrogram_db_kernel       block = one chunk: dB in place, max and min by a shared-memory tree
//                               (deterministic), then the floor and min-max to [0, 1] in place
//                               (SpectrogramScale::Decibels: the dB alone)
// Products and sums use __fmul_rn / __fadd_rn (no FMA contraction), as the CPU twin rounds them.
#include <cufft.h>

#include <algorithm>
#include <string>

#include "audio/spectrogram.h"
#include "kernels/common.h"
#include "kernels/cuda_check.h"
#include "kernels/cufft_check.h"
#include "kernels/launch.cuh"
#include "nn/buffer.h"

namespace gnet {

namespace {

constexpr int kFrameThreads = 256;
constexpr int64_t kFrameMaxBlocks = 1 << 16;  // grid-stride beyond this
constexpr int kMelThreads = 256;
constexpr int kMelMaxFramesPerBlock = 8;
constexpr size_t kMelSharedBytes = 48 * 1024;  // the default dynamic shared-memory limit
constexpr int kDbThreads = 512;                // power of two (tree reduction)
// Chunks per slice: 1024 x 431 frames x 2048 samples stays below the 2^31 elements of a 32-bit
// cufftPlanMany (2434 chunks would not), and the buffers below ~12 GB.
constexpr int kMaxBatchLimit = 1024;

__global__ void spectrogram_frames_kernel(const float* __restrict__ audio,   // (chunks, L)
                                          const float* __restrict__ window,  // (N)
                                          float* __restrict__ frames,        // (chunks * T, N)
                                          int64_t total, int T, int N, int hop, int64_t L) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
         i += int64_t(gridDim.x) * blockDim.x) {
        const int n = int(i % N);
        const int64_t frame = i / N;
        const int t = int(frame % T);
        const int64_t c = frame / T;
        const int64_t s = int64_t(t) * hop - N / 2 + n;  // centred on sample t * hop
        frames[i] = (s >= 0 && s < L) ? __fmul_rn(audio[c * L + s], window[n]) : 0.f;
    }
}

__global__ void spectrogram_mel_kernel(const cufftComplex* __restrict__ spectra,  // (chunks * T, F)
                                       const float* __restrict__ weights,         // (M, F)
                                       const int* __restrict__ band_begin,        // (M)
                                       const int* __restrict__ band_end,          // (M)
                                       float* __restrict__ out,                   // (chunks, M, T)
                                       int T, int F, int M, int frames_per_block) {
    GNET_DYNAMIC_SHARED(float, power);  // (frames_per_block, F)
    const int64_t c = blockIdx.y;
    const int t0 = blockIdx.x * frames_per_block;
    const int nt = min(frames_per_block, T - t0);
    const cufftComplex* spec = spectra + (c * T + t0) * int64_t(F);
    for (int i = threadIdx.x; i < nt * F; i += blockDim.x) {
        const cufftComplex v = spec[i];
        power[i] = __fadd_rn(__fmul_rn(v.x, v.x), __fmul_rn(v.y, v.y));
    }
    __syncthreads();
    float* o = out + c * M * int64_t(T);
    for (int j = threadIdx.x; j < M * nt; j += blockDim.x) {
        const int m = j / nt, dt = j % nt;  // neighbouring threads: neighbouring frames
        const float* p = power + dt * F;
        const float* w = weights + int64_t(m) * F;
        float acc = 0.f;
        for (int k = band_begin[m]; k < band_end[m]; ++k)
            acc = __fadd_rn(acc, __fmul_rn(w[k], p[k]));
        o[int64_t(m) * T + t0 + dt] = acc;
    }
}

__global__ void spectrogram_db_kernel(float* __restrict__ x,  // (chunks, n) in place
                                      int64_t n, float top_db, int normalize) {
    __shared__ float s_hi[kDbThreads];
    __shared__ float s_lo[kDbThreads];
    float* xc = x + int64_t(blockIdx.x) * n;
    float hi = -INFINITY, lo = INFINITY;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        const float db = 10.0f * log10f(fmaxf(xc[i], 1e-10f));
        xc[i] = db;
        hi = fmaxf(hi, db);
        lo = fminf(lo, db);
    }
    if (!normalize) return;  // SpectrogramScale::Decibels; uniform over the block
    s_hi[threadIdx.x] = hi;
    s_lo[threadIdx.x] = lo;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (int(threadIdx.x) < s) {
            s_hi[threadIdx.x] = fmaxf(s_hi[threadIdx.x], s_hi[threadIdx.x + s]);
            s_lo[threadIdx.x] = fminf(s_lo[threadIdx.x], s_lo[threadIdx.x + s]);
        }
        __syncthreads();
    }
    hi = s_hi[0];
    lo = fmaxf(s_lo[0], hi - top_db);  // the floor: nothing below max - top_db
    const float range = hi - lo;
    // Each thread rewrites only the values it wrote above: no hazard between threads.
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
        xc[i] = range > 0.f ? (fmaxf(xc[i], lo) - lo) / range : 0.f;
}

template <class T>
DeviceBuffer upload(const std::vector<T>& v) {
    DeviceBuffer b(v.size() * sizeof(T));
    GNET_CUDA_CHECK(cudaMemcpy(b.data(), v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
    return b;
}

}  // namespace

struct GpuSpectrogram::Impl {
    MelFilterbank fb;
    DeviceBuffer window, weights, band_begin, band_end;  // constants
    DeviceBuffer frames;                                 // (max_batch * T, N), zeroed once
    DeviceBuffer spectra;                                // (max_batch * T, F) complex
    cufftHandle plan = 0;                                // batch = max_batch chunks
    int frames_per_block = 1;

    ~Impl() {
        if (plan) cufftDestroy(plan);
    }
};

namespace {

cufftHandle make_r2c_plan(const SpectrogramConfig& cfg, int chunks) {
    int n = cfg.n_fft, in_embed = cfg.n_fft, out_embed = cfg.n_freqs();
    cufftHandle plan = 0;
    GNET_CUFFT_CHECK(cufftPlanMany(&plan, 1, &n, &in_embed, 1, cfg.n_fft, &out_embed, 1,
                                   cfg.n_freqs(), CUFFT_R2C, chunks * cfg.frames()));
    return plan;
}

}  // namespace

GpuSpectrogram::GpuSpectrogram(int max_batch, const SpectrogramConfig& cfg)
    : cfg_(cfg), max_batch_(max_batch), impl_(std::make_unique<Impl>()) {
    cfg_.validate();
    GNET_CHECK(max_batch >= 1 && max_batch <= kMaxBatchLimit,
               "GPU spectrogram batch must be in [1, " + std::to_string(kMaxBatchLimit) +
                   "], got " + std::to_string(max_batch));
    const int F = cfg_.n_freqs();
    impl_->frames_per_block =
        int(std::min<size_t>(kMelMaxFramesPerBlock, kMelSharedBytes / (size_t(F) * sizeof(float))));
    GNET_CHECK(impl_->frames_per_block >= 1,
               "n_fft " + std::to_string(cfg_.n_fft) + " is too large for the GPU mel kernel");
    impl_->fb = mel_filterbank(cfg_);
    impl_->window = upload(hann_window_periodic(cfg_.n_fft));
    impl_->weights = upload(impl_->fb.weights);
    impl_->band_begin = upload(impl_->fb.begin);
    impl_->band_end = upload(impl_->fb.end);
    const size_t frames = size_t(max_batch) * size_t(cfg_.frames());
    impl_->frames = DeviceBuffer(frames * size_t(cfg_.n_fft) * sizeof(float));
    // A partial slice leaves the frames of its unused chunk slots as they were: zero, or an earlier
    // slice's (the FFT transforms them too, and nothing reads the result).
    GNET_CUDA_CHECK(cudaMemset(impl_->frames.data(), 0, impl_->frames.bytes()));
    impl_->spectra = DeviceBuffer(frames * size_t(F) * sizeof(cufftComplex));
    impl_->plan = make_r2c_plan(cfg_, max_batch);
}

GpuSpectrogram::~GpuSpectrogram() = default;

void GpuSpectrogram::compute(const float* audio, int64_t n_chunks, float* out, Stream stream,
                             SpectrogramScale scale) {
    GNET_CHECK(n_chunks >= 0, "chunk count must not be negative");
    const int T = cfg_.frames(), N = cfg_.n_fft, F = cfg_.n_freqs(), M = cfg_.n_mels;
    const int64_t L = cfg_.chunk_samples();
    Impl& im = *impl_;
    for (int64_t c0 = 0; c0 < n_chunks; c0 += max_batch_) {
        const int nb = int(std::min<int64_t>(max_batch_, n_chunks - c0));
        const int64_t total = int64_t(nb) * T * N;
        const int frame_blocks =
            int(std::min<int64_t>(ceil_div(total, kFrameThreads), kFrameMaxBlocks));
        launch<spectrogram_frames_kernel>(frame_blocks, kFrameThreads, 0, stream, audio + c0 * L,
                                          im.window.as<float>(), im.frames.as<float>(), total, T, N,
                                          cfg_.hop, L);

        // The full plan also for a last, smaller slice: transforming up to max_batch - 1 unused
        // chunks costs less than a plan per slice size, whose making and freeing would
        // synchronise with the host in the middle of the stream's work.
        GNET_CUFFT_CHECK(cufftSetStream(im.plan, stream));
        GNET_CUFFT_CHECK(
            cufftExecR2C(im.plan, im.frames.as<cufftReal>(), im.spectra.as<cufftComplex>()));

        const int fpb = im.frames_per_block;
        const dim3 mel_grid(unsigned(ceil_div(T, fpb)), unsigned(nb));
        const size_t mel_shared = size_t(fpb) * size_t(F) * sizeof(float);
        float* out_slice = out + c0 * cfg_.chunk_values();
        launch<spectrogram_mel_kernel>(mel_grid, kMelThreads, mel_shared, stream,
                                       im.spectra.as<cufftComplex>(), im.weights.as<float>(),
                                       im.band_begin.as<int>(), im.band_end.as<int>(), out_slice, T,
                                       F, M, fpb);

        launch<spectrogram_db_kernel>(nb, kDbThreads, 0, stream, out_slice, cfg_.chunk_values(),
                                      float(cfg_.top_db),
                                      scale == SpectrogramScale::Normalized ? 1 : 0);
    }
}

std::vector<float> GpuSpectrogram::compute_host(const float* audio, int64_t n_chunks,
                                                SpectrogramScale scale) {
    GNET_CHECK(n_chunks >= 0, "chunk count must not be negative");
    std::vector<float> out(size_t(n_chunks * cfg_.chunk_values()));
    if (n_chunks == 0) return out;
    const size_t in_bytes = size_t(n_chunks * cfg_.chunk_samples()) * sizeof(float);
    DeviceBuffer d_audio(in_bytes);
    DeviceBuffer d_out(out.size() * sizeof(float));
    Stream stream = nullptr;  // the legacy default stream: the copies below order with the kernels
    GNET_CUDA_CHECK(
        cudaMemcpyAsync(d_audio.data(), audio, in_bytes, cudaMemcpyHostToDevice, stream));
    compute(d_audio.as<float>(), n_chunks, d_out.as<float>(), stream, scale);
    GNET_CUDA_CHECK(cudaMemcpyAsync(out.data(), d_out.data(), out.size() * sizeof(float),
                                    cudaMemcpyDeviceToHost, stream));
    GNET_CUDA_CHECK(cudaStreamSynchronize(stream));
    return out;
}

}  // namespace gnet
