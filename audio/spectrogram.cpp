// What the CPU and GPU spectrograms share: the configuration check, the window, the device choice.
#include <algorithm>
#include <cmath>
#include <string>
#include <thread>

#include "audio/spectrogram.h"
#include "kernels/error.h"

namespace gnet {

void SpectrogramConfig::validate() const {
    auto bad = [](const std::string& what) {
        throw Error("invalid spectrogram settings: " + what);
    };
    if (sample_rate <= 0) bad("sample_rate must be positive, got " + std::to_string(sample_rate));
    if (n_fft < 2 || n_fft % 2 != 0)
        bad("n_fft must be even and >= 2, got " + std::to_string(n_fft));
    if (hop <= 0) bad("hop must be positive, got " + std::to_string(hop));
    if (n_mels <= 0) bad("n_mels must be positive, got " + std::to_string(n_mels));
    if (!(fmin >= 0 && fmin < fmax)) bad("need 0 <= fmin < fmax");
    if (fmax > sample_rate / 2.0) bad("fmax " + std::to_string(fmax) + " Hz is above Nyquist");
    if (!(top_db > 0)) bad("top_db must be positive");
    if (chunk_seconds <= 0) bad("chunk_seconds must be positive");
    if (chunk_samples() < n_fft / 2) bad("a chunk must be at least n_fft / 2 samples long");
}

std::vector<float> hann_window_periodic(int n) {
    const double pi = std::acos(-1.0);
    std::vector<float> w(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i)
        w[size_t(i)] = float(0.5 - 0.5 * std::cos(2.0 * pi * i / n));
    return w;
}

std::vector<float> spectrogram_chunks(const std::vector<float>& mono22050, int64_t n_chunks,
                                      Device device, const SpectrogramConfig& cfg) {
    cfg.validate();
    GNET_CHECK(n_chunks >= 0, "chunk count must not be negative");
    GNET_CHECK(int64_t(mono22050.size()) >= n_chunks * cfg.chunk_samples(),
               std::to_string(n_chunks) + " chunks need " +
                   std::to_string(n_chunks * cfg.chunk_samples()) + " samples, got " +
                   std::to_string(mono22050.size()));
    if (n_chunks == 0) return {};
    if (device == Device::CUDA) {
#if GNET_HAVE_CUDA
        constexpr int64_t kMaxBatch = 32;  // ~230 MB of FFT buffers
        GpuSpectrogram gpu(int(std::min(n_chunks, kMaxBatch)), cfg);
        return gpu.compute_host(mono22050.data(), n_chunks);
#else
        throw Error("this gnet was built without CUDA: the spectrogram cannot run on the GPU");
#endif
    }
    const int threads = int(std::max(1u, std::thread::hardware_concurrency()));
    CpuSpectrogram cpu_spec(cfg, threads);
    std::vector<float> out(size_t(n_chunks * cfg.chunk_values()));
    cpu_spec.compute(mono22050.data(), n_chunks, out.data());
    return out;
}

}  // namespace gnet
