#include "cli/library_versions.h"

#include <cblas.h>
#include <dlfcn.h>
#include <fftw3.h>
#include <sndfile.h>
#include <soxr.h>

#if GNET_HAVE_CUDA
#include <cuda_runtime.h>
#include <cufft.h>
#endif

namespace gnet::cli {

namespace {

[[maybe_unused]] std::string cuda_version_text(int v) {
    if (v <= 0) return "none";
    return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}

// cuDNN and cuBLAS are yardsticks, not dependencies of the gnet binary: ask the installed shared
// library for its version if there is one.
template <class Fn>
Fn lookup(const char* const* sonames, const char* symbol, std::string& found_in) {
    for (const char* const* so = sonames; *so; ++so) {
        void* h = dlopen(*so, RTLD_LAZY | RTLD_LOCAL);
        if (!h) continue;
        if (void* sym = dlsym(h, symbol)) {
            found_in = *so;
            return reinterpret_cast<Fn>(sym);
        }
    }
    return nullptr;
}

std::string cudnn_version() {
    static const char* const names[] = {"libcudnn.so.9", "libcudnn.so", "libcudnn.so.8", nullptr};
    std::string so;
    auto fn = lookup<size_t (*)()>(names, "cudnnGetVersion", so);
    if (!fn) return "not found";
    size_t v = fn();  // e.g. 91300 = 9.13.0 (cuDNN 9 encoding: major*10000 + minor*100 + patch)
    size_t major = v >= 10000 ? v / 10000 : v / 1000;
    size_t minor = v >= 10000 ? (v % 10000) / 100 : (v % 1000) / 100;
    size_t patch = v % 100;
    return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
}

std::string cublas_version() {
    static const char* const names[] = {"libcublas.so.13", "libcublas.so.12", "libcublas.so",
                                        nullptr};
    std::string so;
    // cublasGetProperty(libraryPropertyType {MAJOR_VERSION=0, MINOR_VERSION=1, PATCH_LEVEL=2},
    // int*)
    auto fn = lookup<int (*)(int, int*)>(names, "cublasGetProperty", so);
    if (!fn) return "not found";
    int v[3] = {0, 0, 0};
    for (int i = 0; i < 3; ++i)
        if (fn(i, &v[i]) != 0) return "unknown";
    return std::to_string(v[0]) + "." + std::to_string(v[1]) + "." + std::to_string(v[2]);
}

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == ' ' || s.back() == '\n'))
        s.pop_back();
    size_t i = 0;
    while (i < s.size() && s[i] == ' ')
        ++i;
    return s.substr(i);
}

}  // namespace

std::vector<std::pair<std::string, std::string>> library_versions() {
    std::vector<std::pair<std::string, std::string>> out;
#if GNET_HAVE_CUDA
    int rt = 0, drv = 0;
    cudaRuntimeGetVersion(&rt);
    if (cudaDriverGetVersion(&drv) != cudaSuccess) drv = 0;
    cudaGetLastError();
    out.emplace_back("CUDA runtime", cuda_version_text(rt));
    out.emplace_back("CUDA driver", drv ? cuda_version_text(drv) : "none (no NVIDIA driver)");
    int fft = 0;
    cufftGetVersion(&fft);
    out.emplace_back("cuFFT", std::to_string(fft / 1000) + "." +
                                  std::to_string((fft % 1000) / 100) + "." +
                                  std::to_string(fft % 100));
#else
    out.emplace_back("CUDA", "not built (CPU-only build)");
#endif
    out.emplace_back("cuBLAS (yardstick)", cublas_version());
    out.emplace_back("cuDNN (yardstick)", cudnn_version());
    out.emplace_back("libsndfile", sf_version_string());
    out.emplace_back("libsoxr", soxr_version());
    out.emplace_back("FFTW", fftwf_version);
    out.emplace_back("OpenBLAS", trim(openblas_get_config()));
    return out;
}

}  // namespace gnet::cli
