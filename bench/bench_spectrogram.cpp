// Spectrogram throughput: 10-second chunks (220500 samples -> [128, 431] log-mel) per second and
// times real time, on the CPU (FFTW, 1 and 2 worker threads) and the GPU (cuFFT + kernels; device
// pointers, cudaEvent timing with L2 flushed; and host in/out including both transfers).
//
// Validates first: the 2-thread CPU result equals the 1-thread one bit for bit, and the GPU result
// is within 1e-4 of the CPU's on every value. Work unit: chunks; x real time = chunks/s * 10 s.
// Yardsticks: the bare FFT of the same frames (FFTW r2c on one thread, cuFFT R2C on the GPU), so
// gnet/yardstick says how much the framing, power, mel and dB steps add; and torchaudio on the same
// workload (bench/torchaudio_spectrogram.py).
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <fftw3.h>

#include "audio/spectrogram.h"
#include "bench/harness.h"
#include "nn/device.h"

#if GNET_HAVE_CUDA
#include <cuda_runtime.h>
#include <cufft.h>

#include "bench/harness_gpu.h"
#include "kernels/cuda_check.h"
#include "kernels/cufft_check.h"
#include "nn/buffer.h"
#endif

using namespace gnet;
using namespace gnet::bench;

namespace {

// Deterministic music-like audio: a chirp, a chord and LCG noise, mixed differently per chunk.
std::vector<float> workload(int64_t n_chunks, const SpectrogramConfig& cfg) {
    const double pi = std::acos(-1.0), sr = cfg.sample_rate;
    const int64_t L = cfg.chunk_samples();
    std::vector<float> x(size_t(n_chunks * L));
    uint32_t s = 1;
    for (int64_t i = 0; i < n_chunks * L; ++i) {
        const double t = double(i % L) / sr;
        const int64_t c = i / L;
        s = 1664525u * s + 1013904223u;
        const double noise = double(s >> 8) / double(1u << 24) - 0.5;
        x[size_t(i)] = float(0.3 * std::sin(2 * pi * (200.0 + 40.0 * c) * t + 300.0 * t * t) +
                             0.2 * std::sin(2 * pi * 440.0 * t) * std::sin(pi * t) + 0.05 * noise);
    }
    return x;
}

Result chunk_result(const std::string& device, const std::string& impl, int64_t n, const Timing& t,
                    const std::string& note) {
    Result r;
    r.op = "spectrogram";
    r.shape = std::to_string(n) + " chunks x 220500 -> 128x431";
    r.device = device;
    r.impl = impl;
    r.median_ms = t.median_ms;
    r.min_ms = t.min_ms;
    r.work = double(n);
    r.unit = "chunks/s";
    r.rate = double(n) / (t.median_ms * 1e-3);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.0fx real time", r.rate * 10.0);
    r.note = std::string(buf) + (note.empty() ? "" : "; " + note);
    return r;
}

}  // namespace

int main(int argc, char** argv) {
    Options opt = parse_options(
        argc, argv,
        "bench_spectrogram: log-mel chunks per second, CPU (FFTW, 1 and 2 threads) and GPU "
        "(cuFFT); --batch = chunks per call (default 32)");
    if (opt.quick) opt.batch = std::min(opt.batch, 4);
    const SpectrogramConfig cfg;
    const int64_t n = opt.batch;
    const std::vector<float> audio = workload(n, cfg);
    std::vector<Result> rows;
    std::vector<std::string> notes;

    const bool want_cpu = opt.device != "cuda" && opt.device != "gpu";
    const bool want_gpu = opt.device != "cpu";
    std::vector<float> cpu_out(size_t(n * cfg.chunk_values()));
    double cpu_fft_ms = 0, gpu_fft_ms = 0;
    {
        CpuSpectrogram one(cfg, 1);
        one.compute(audio.data(), n, cpu_out.data());
    }
    if (want_cpu) {
        for (int threads : {1, 2}) {
            CpuSpectrogram spec(cfg, threads);
            std::vector<float> out(cpu_out.size());
            spec.compute(audio.data(), n, out.data());
            if (out != cpu_out) {
                std::fprintf(stderr,
                             "bench_spectrogram: %d-thread CPU result differs from 1 thread\n",
                             threads);
                return 1;
            }
            const Timing t = time_cpu([&] { spec.compute(audio.data(), n, out.data()); },
                                      opt.warmup, opt.repeats);
            rows.push_back(chunk_result(
                "cpu",
                "gnet FFTW " + std::to_string(threads) + " thread" + (threads > 1 ? "s" : ""), n, t,
                ""));
        }
        // Yardstick: only the r2c FFTs of the same number of frames, one thread.
        int nfft = cfg.n_fft;
        const size_t frames = size_t(cfg.frames());
        float* in = fftwf_alloc_real(frames * size_t(nfft));
        fftwf_complex* spec = fftwf_alloc_complex(frames * size_t(cfg.n_freqs()));
        fftwf_plan plan = fftwf_plan_many_dft_r2c(1, &nfft, cfg.frames(), in, nullptr, 1, nfft,
                                                  spec, nullptr, 1, cfg.n_freqs(), FFTW_ESTIMATE);
        std::copy(audio.begin(), audio.begin() + int64_t(frames * size_t(nfft)), in);
        const Timing fft = time_cpu(
            [&] {
                for (int64_t c = 0; c < n; ++c)
                    fftwf_execute(plan);
            },
            opt.warmup, opt.repeats);
        fftwf_destroy_plan(plan);
        fftwf_free(in);
        fftwf_free(spec);
        Result y =
            chunk_result("cpu", "FFTW r2c alone, 1 thread", n, fft, "yardstick: the FFTs only");
        rows.push_back(y);
        cpu_fft_ms = fft.median_ms;
    }

    if (want_gpu) {
#if GNET_HAVE_CUDA
        if (!probe_gpus().usable) {
            notes.push_back("GPU skipped: no usable GPU (" + probe_gpus().reason + ")");
        } else {
            GpuSpectrogram gpu(int(std::min<int64_t>(n, 64)), cfg);
            std::vector<float> got = gpu.compute_host(audio.data(), n);
            double worst = 0;
            for (size_t i = 0; i < got.size(); ++i)
                worst = std::max(worst, double(std::fabs(got[i] - cpu_out[i])));
            if (!(worst <= 1e-4)) {
                std::fprintf(stderr, "bench_spectrogram: GPU differs from CPU by %.3g (> 1e-4)\n",
                             worst);
                return 1;
            }
            DeviceBuffer d_audio(audio.size() * sizeof(float)), d_out(got.size() * sizeof(float));
            GNET_CUDA_CHECK(
                cudaMemcpy(d_audio.data(), audio.data(), d_audio.bytes(), cudaMemcpyHostToDevice));
            cudaStream_t stream = nullptr;
            GNET_CUDA_CHECK(cudaStreamCreate(&stream));
            const Timing dev = time_gpu(
                [&](cudaStream_t s) { gpu.compute(d_audio.as<float>(), n, d_out.as<float>(), s); },
                stream, opt.warmup, opt.repeats);
            GNET_CUDA_CHECK(cudaStreamDestroy(stream));
            rows.push_back(chunk_result("cuda", "gnet cuFFT (device ptrs)", n, dev,
                                        "audio already on the GPU"));
            const Timing host =
                time_cpu([&] { got = gpu.compute_host(audio.data(), n); }, opt.warmup, opt.repeats);
            rows.push_back(chunk_result("cuda", "gnet cuFFT (host in/out)", n, host,
                                        "incl. upload + download"));
            // Yardstick: only cuFFT R2C over the same frames (n chunks x 431 frames, one plan).
            {
                int nfft = cfg.n_fft, in_embed = cfg.n_fft, out_embed = cfg.n_freqs();
                const size_t frames = size_t(n) * size_t(cfg.frames());
                DeviceBuffer d_frames(frames * size_t(nfft) * sizeof(float));
                DeviceBuffer d_spec(frames * size_t(cfg.n_freqs()) * sizeof(cufftComplex));
                GNET_CUDA_CHECK(cudaMemset(d_frames.data(), 0, d_frames.bytes()));
                cufftHandle plan = 0;
                GNET_CUFFT_CHECK(cufftPlanMany(&plan, 1, &nfft, &in_embed, 1, nfft, &out_embed, 1,
                                               cfg.n_freqs(), CUFFT_R2C, int(frames)));
                GNET_CUDA_CHECK(cudaStreamCreate(&stream));
                GNET_CUFFT_CHECK(cufftSetStream(plan, stream));
                const Timing fft = time_gpu(
                    [&](cudaStream_t) {
                        GNET_CUFFT_CHECK(cufftExecR2C(plan, d_frames.as<cufftReal>(),
                                                      d_spec.as<cufftComplex>()));
                    },
                    stream, opt.warmup, opt.repeats);
                GNET_CUDA_CHECK(cudaStreamSynchronize(stream));
                GNET_CUDA_CHECK(cudaStreamDestroy(stream));
                cufftDestroy(plan);
                rows.push_back(
                    chunk_result("cuda", "cuFFT R2C alone", n, fft, "yardstick: the FFTs only"));
                gpu_fft_ms = fft.median_ms;
            }
        }
#else
        notes.push_back("GPU skipped: this build has no CUDA");
#endif
    }
    // gnet / yardstick: the whole spectrogram against the bare FFT on the same device.
    Report report("Spectrogram: " + std::to_string(n) + " chunks of 10 s -> float32 [128, 431]");
    for (Result r : rows) {
        const bool is_gnet = r.impl.rfind("gnet", 0) == 0;
        const double fft_ms = r.device == "cpu" ? cpu_fft_ms : gpu_fft_ms;
        if (is_gnet && fft_ms > 0) {
            r.ratio = r.median_ms / fft_ms;
            r.ratio_to = r.device == "cpu" ? "FFTW r2c alone" : "cuFFT R2C alone";
        }
        report.add(r);
    }
    for (const std::string& line : notes)
        report.note(line);
    report.print_table();
    if (!opt.json_path.empty()) report.write_json(opt.json_path);
    return 0;
}
