// GPU spectrogram (cuFFT + kernels) against its CPU twin on the same chunks.
#include <doctest/doctest.h>

#include <cuda_runtime.h>

#include <algorithm>

#include "audio/chunk.h"
#include "audio/spectrogram.h"
#include "kernels/cuda_check.h"
#include "nn/buffer.h"
#include "tests/check.h"
#include "tests/gpu/schedules.h"
#include "tests/spectrogram_clips.h"

using namespace gnet;
using gnet::test::Tolerance;

namespace {

// cuFFT and FFTW round differently; everything after the FFT rounds the same way (no FMA).
constexpr Tolerance kGpuVsCpu{1e-4, 0};

std::vector<float> cpu_reference(const std::vector<float>& audio, int64_t n,
                                 const SpectrogramConfig& cfg = {}) {
    CpuSpectrogram spec(cfg, 2);
    std::vector<float> out(size_t(n * cfg.chunk_values()));
    spec.compute(audio.data(), n, out.data());
    return out;
}

// n chunks of varied audio: the fixture clips, a loud sine, silence, in turn.
std::vector<float> mixed_chunks(int64_t n, const SpectrogramConfig& cfg = {}) {
    const int64_t L = cfg.chunk_samples();
    std::vector<float> audio;
    const char* kinds[] = {"chirp", "sines", "noise", "sine", "silence"};
    for (int64_t c = 0; c < n; ++c) {
        const std::string kind = kinds[c % 5];
        std::vector<float> x = kind == "sine" ? gnet::test::sine(1234.5, L, cfg.sample_rate, 0.9)
                               : kind == "silence"
                                   ? std::vector<float>(size_t(L), 0.f)
                                   : gnet::test::fixture_clip(kind, L, cfg.sample_rate);
        audio.insert(audio.end(), x.begin(), x.end());
    }
    return audio;
}

}  // namespace

TEST_CASE("GPU spectrogram matches the CPU twin on the fixture clips, a sine and silence") {
    auto audio = mixed_chunks(5);
    GpuSpectrogram gpu(8);
    auto got = gpu.compute_host(audio.data(), 5);
    auto ref = cpu_reference(audio, 5);
    GNET_CHECK_CLOSE(got, ref, kGpuVsCpu);
    const size_t per = 128 * 431;
    CHECK(std::all_of(got.begin() + 4 * per, got.end(),
                      [](float v) { return v == 0.f; }));  // silence
    const auto reruns = gnet::test::results_under_varied_schedules(
        [&] { return gpu.compute_host(audio.data(), 5); });
    CHECK(gnet::test::all_equal(reruns));  // deterministic
    CHECK(reruns.front() == got);
}

TEST_CASE("GPU slices: full and partial slices of changing sizes, one plan") {
    auto audio = mixed_chunks(7);
    auto ref = cpu_reference(audio, 7);
    GpuSpectrogram gpu(3);  // 7 = 3 + 3 + 1, then 5 = 3 + 2, then 6 = 3 + 3, then 1
    for (int64_t n : {7, 5, 6, 1}) {
        INFO("chunks: ", n);
        auto got = gpu.compute_host(audio.data(), n);
        GNET_CHECK_CLOSE_N(got.data(), ref.data(), got.size(), kGpuVsCpu);
    }
}

TEST_CASE("GPU device-pointer API on an explicit stream") {
    auto audio = mixed_chunks(4);
    const SpectrogramConfig cfg;
    DeviceBuffer d_audio(audio.size() * sizeof(float));
    DeviceBuffer d_out(size_t(4 * cfg.chunk_values()) * sizeof(float));
    cudaStream_t stream = nullptr;
    GNET_CUDA_CHECK(cudaStreamCreate(&stream));
    GNET_CUDA_CHECK(cudaMemcpyAsync(d_audio.data(), audio.data(), d_audio.bytes(),
                                    cudaMemcpyHostToDevice, stream));
    GpuSpectrogram gpu(4);
    gpu.compute(d_audio.as<float>(), 4, d_out.as<float>(), stream);
    std::vector<float> got(size_t(4 * cfg.chunk_values()));
    GNET_CUDA_CHECK(
        cudaMemcpyAsync(got.data(), d_out.data(), d_out.bytes(), cudaMemcpyDeviceToHost, stream));
    GNET_CUDA_CHECK(cudaStreamSynchronize(stream));
    GNET_CUDA_CHECK(cudaStreamDestroy(stream));
    GNET_CHECK_CLOSE(got, cpu_reference(audio, 4), kGpuVsCpu);
}

TEST_CASE("spectrogram_chunks picks the GPU and agrees with the CPU") {
    auto audio = make_chunks(gnet::test::fixture_clip("chirp", 250000), 220500, Remainder::Pad);
    auto gpu = spectrogram_chunks(audio, 2, Device::CUDA);
    auto cpu = spectrogram_chunks(audio, 2, Device::CPU);
    GNET_CHECK_CLOSE(gpu, cpu, kGpuVsCpu);
}

TEST_CASE("GPU spectrogram with other settings (odd frame counts, fewer frames per mel block)") {
    SpectrogramConfig a;  // F = 513, 8 frames per mel block, 259 frames
    a.n_fft = 1024;
    a.hop = 256;
    a.n_mels = 64;
    a.chunk_seconds = 3;
    SpectrogramConfig b;  // F = 2049: 5 frames per mel block; 45 frames
    b.n_fft = 4096;
    b.hop = 1000;
    b.n_mels = 96;
    b.chunk_seconds = 2;
    b.sample_rate = 16000;
    b.fmax = 8000;
    b.fmin = 30;
    for (const SpectrogramConfig& cfg : {a, b}) {
        INFO("n_fft ", cfg.n_fft, " hop ", cfg.hop, " mels ", cfg.n_mels);
        auto audio = mixed_chunks(3, cfg);
        GpuSpectrogram gpu(2, cfg);
        auto got = gpu.compute_host(audio.data(), 3);
        GNET_CHECK_CLOSE(got, cpu_reference(audio, 3, cfg), kGpuVsCpu);
    }
}

TEST_CASE("GPU spectrogram rejects a bad batch size") {
    CHECK_THROWS_AS(GpuSpectrogram(0), Error);
}
