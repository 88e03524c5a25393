// bench_conv2d: every ResNet18 conv of gnet's model (input [1, 128, 431]) for forward,
// backward-data and backward-weight.
//   CPU:  gnet's twin (im2col + sgemm, chunked batch, threaded im2col) against a plain
//         OpenBLAS-only baseline (per image: freshly allocated im2col matrix, one sgemm), and the
//         fast CPU backend (impl "fast": Winograd F(4x4,3x3) or packed GEMM, kernels/
//         conv2d_cpu_fast.cpp), checked against the twin relative to the output range first.
//   GPU:  gnet's implicit-GEMM kernels against cuDNN's fastest FP32 algorithm (cudnnFind*, FMA
//         math: no TF32), cudaEvent timing with L2 flushed between repeats; and the bf16
//         tensor-core kernels (ops conv2d_*_bf16, NHWC, kernels/conv2d_bf16.h) against cuDNN's
//         fastest in the same precision (bf16 NHWC operands, float accumulation, tensor-op math;
//         cuDNN's dw is bf16, gnet's the float32 master gradient).
// Every implementation is validated before it is timed (CPU baseline and GPU kernels against the
// CPU twin). Rate: GFLOP/s = 2*N*OC*OH*OW*C*KH*KW / t (the same count for all three passes).
// Without a usable GPU the GPU part is skipped with a note.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "bench/harness.h"
#include "kernels/conv2d.h"
#include "kernels/conv2d_bf16.h"
#include "kernels/gemm_cpu_fast.h"
#include "nn/device.h"

#if GNET_HAVE_CUDA
#include <cuda_runtime.h>

#include "bench/harness_gpu.h"
#include "kernels/cuda_check.h"
#include "nn/buffer.h"
#if GNET_HAVE_CUDNN
#include "kernels/cudnn_check.h"
#endif
#endif

using namespace gnet;
using namespace gnet::bench;

namespace {

// Validation: |got - ref| <= atol + rtol*|ref| everywhere (sums of up to N*OH*OW ~ 4e5 terms).
constexpr double kValidateAtol = 5e-3;
constexpr double kValidateRtol = 2e-3;

struct Layer {
    const char* name;
    int C, H, W, OC, K, stride, pad;
};

// The distinct conv shapes of ResNet18 on a 1 x 128 x 431 log-mel chunk.
const std::vector<Layer>& resnet18_layers() {
    static const std::vector<Layer> layers = {
        {"conv1", 1, 128, 431, 64, 7, 2, 3},
        {"layer1 3x3", 64, 32, 108, 64, 3, 1, 1},
        {"layer2.0.conv1", 64, 32, 108, 128, 3, 2, 1},
        {"layer2.0.down", 64, 32, 108, 128, 1, 2, 0},
        {"layer2 3x3", 128, 16, 54, 128, 3, 1, 1},
        {"layer3.0.conv1", 128, 16, 54, 256, 3, 2, 1},
        {"layer3.0.down", 128, 16, 54, 256, 1, 2, 0},
        {"layer3 3x3", 256, 8, 27, 256, 3, 1, 1},
        {"layer4.0.conv1", 256, 8, 27, 512, 3, 2, 1},
        {"layer4.0.down", 256, 8, 27, 512, 1, 2, 0},
        {"layer4 3x3", 512, 4, 14, 512, 3, 1, 1},
    };
    return layers;
}

std::string shape_text(const Layer& l, const Conv2dParams& p) {
    char buf[128];
    std::snprintf(buf, sizeof buf, "%s N%d C%d %dx%d->OC%d %dx%d/%d", l.name, p.N, p.C, p.H, p.W,
                  p.OC, p.KH, p.KW, p.stride);
    return buf;
}

std::vector<float> pseudo_random(int64_t n, unsigned seed) {
    std::vector<float> v(static_cast<size_t>(n));
    uint32_t s = seed * 2654435761u + 1;
    for (float& e : v) {
        s = s * 1664525u + 1013904223u;
        e = float(s >> 8) / float(1 << 24) * 2.f - 1.f;
    }
    return v;
}

bool close_enough(const std::vector<float>& got, const std::vector<float>& ref, std::string* why) {
    for (size_t i = 0; i < ref.size(); ++i) {
        const double d = std::fabs(double(got[i]) - ref[i]);
        if (!(d <= kValidateAtol + kValidateRtol * std::fabs(ref[i]))) {
            char buf[160];
            std::snprintf(buf, sizeof buf, "mismatch at %zu: got %.7g ref %.7g", i, got[i], ref[i]);
            *why = buf;
            return false;
        }
    }
    return true;
}

// The fast CPU backend against the twin: Winograd's error scales with the output range, so the
// tolerance is relative to the largest reference magnitude (as in tests/test_conv2d_fast.cpp).
constexpr double kFastRelToMax = 1e-4;
bool close_to_range(const std::vector<float>& got, const std::vector<float>& ref,
                    std::string* why) {
    double scale = 1e-6;
    for (float r : ref)
        scale = std::max(scale, double(std::fabs(r)));
    for (size_t i = 0; i < ref.size(); ++i) {
        const double d = std::fabs(double(got[i]) - ref[i]);
        if (!(d <= kFastRelToMax * scale)) {
            char buf[160];
            std::snprintf(buf, sizeof buf, "mismatch at %zu: got %.7g ref %.7g", i, got[i], ref[i]);
            *why = buf;
            return false;
        }
    }
    return true;
}

// ---- the plain OpenBLAS-only baseline: per image, a fresh col matrix and one sgemm ------------
void baseline_im2col(const Conv2dParams& p, const float* x, float* col) {
    const int64_t P = int64_t(p.OH) * p.OW;
    for (int c = 0; c < p.C; ++c)
        for (int kh = 0; kh < p.KH; ++kh)
            for (int kw = 0; kw < p.KW; ++kw)
                for (int oh = 0; oh < p.OH; ++oh)
                    for (int ow = 0; ow < p.OW; ++ow) {
                        const int ih = oh * p.stride - p.pad + kh, iw = ow * p.stride - p.pad + kw;
                        const bool in = ih >= 0 && ih < p.H && iw >= 0 && iw < p.W;
                        col[((int64_t(c) * p.KH + kh) * p.KW + kw) * P + int64_t(oh) * p.OW + ow] =
                            in ? x[(int64_t(c) * p.H + ih) * p.W + iw] : 0.f;
                    }
}

void baseline_forward(const Conv2dParams& p, const float* x, const float* w, float* y) {
    const int K = p.C * p.KH * p.KW, P = p.OH * p.OW;
    for (int n = 0; n < p.N; ++n) {
        std::vector<float> col(size_t(K) * P);
        baseline_im2col(p, x + int64_t(n) * p.C * p.H * p.W, col.data());
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, p.OC, P, K, 1.f, w, K, col.data(), P,
                    0.f, y + int64_t(n) * p.OC * P, P);
    }
}

void baseline_backward_data(const Conv2dParams& p, const float* dy, const float* w, float* dx) {
    const int K = p.C * p.KH * p.KW, P = p.OH * p.OW;
    for (int n = 0; n < p.N; ++n) {
        std::vector<float> col(size_t(K) * P);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, P, p.OC, 1.f, w, K,
                    dy + int64_t(n) * p.OC * P, P, 0.f, col.data(), P);
        float* d = dx + int64_t(n) * p.C * p.H * p.W;
        std::memset(d, 0, sizeof(float) * size_t(p.C) * p.H * p.W);
        for (int c = 0; c < p.C; ++c)
            for (int kh = 0; kh < p.KH; ++kh)
                for (int kw = 0; kw < p.KW; ++kw)
                    for (int oh = 0; oh < p.OH; ++oh)
                        for (int ow = 0; ow < p.OW; ++ow) {
                            const int ih = oh * p.stride - p.pad + kh;
                            const int iw = ow * p.stride - p.pad + kw;
                            if (ih >= 0 && ih < p.H && iw >= 0 && iw < p.W)
                                d[(int64_t(c) * p.H + ih) * p.W + iw] +=
                                    col[((int64_t(c) * p.KH + kh) * p.KW + kw) * P +
                                        int64_t(oh) * p.OW + ow];
                        }
    }
}

void baseline_backward_weight(const Conv2dParams& p, const float* x, const float* dy, float* dw) {
    const int K = p.C * p.KH * p.KW, P = p.OH * p.OW;
    for (int n = 0; n < p.N; ++n) {
        std::vector<float> col(size_t(K) * P);
        baseline_im2col(p, x + int64_t(n) * p.C * p.H * p.W, col.data());
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, p.OC, K, P, 1.f,
                    dy + int64_t(n) * p.OC * P, P, col.data(), P, n == 0 ? 0.f : 1.f, dw, K);
    }
}

struct Tensors {
    std::vector<float> x, w, dy;   // inputs
    std::vector<float> y, dx, dw;  // CPU twin outputs (the reference)
};

Tensors make_tensors(const Conv2dParams& p, unsigned seed) {
    Tensors t;
    t.x = pseudo_random(p.x_size(), seed);
    t.w = pseudo_random(p.w_size(), seed + 1);
    t.dy = pseudo_random(p.y_size(), seed + 2);
    t.y.resize(size_t(p.y_size()));
    t.dx.resize(size_t(p.x_size()));
    t.dw.resize(size_t(p.w_size()));
    cpu::conv2d_forward(p, t.x.data(), t.w.data(), t.y.data());
    cpu::conv2d_backward_data(p, t.dy.data(), t.w.data(), t.dx.data());
    cpu::conv2d_backward_weight(p, t.x.data(), t.dy.data(), t.dw.data(), Accum::Overwrite);
    return t;
}

void add_result(Report& report, const char* op, const std::string& shape, const char* device,
                const char* impl, const Timing& t, double flops, const std::string& note = "") {
    Result r;
    r.op = op;
    r.shape = shape;
    r.device = device;
    r.impl = impl;
    r.median_ms = t.median_ms;
    r.min_ms = t.min_ms;
    r.work = flops;
    r.unit = "GFLOP/s";
    r.rate = gflops(flops, t.median_ms);
    r.note = note;
    report.add(r);
}

void bench_cpu(const Options& o, const Conv2dParams& p, const std::string& shape, const Tensors& t,
               Report& report) {
    const int warmup = std::min(o.warmup, 1), repeats = std::min(o.repeats, 5);
    std::vector<float> out;
    std::string why;
    auto run = [&](const char* op, const std::vector<float>& ref, auto&& twin, auto&& baseline,
                   auto&& fast) {
        if (!o.wants(op)) return;
        if (cpu_fast::available()) {
            out.assign(ref.size(), 0.f);
            fast(out.data());
            if (!close_to_range(out, ref, &why))
                report.note(std::string(op) + " " + shape +
                            ": fast backend disagrees with the CPU twin (" + why + "); not timed");
            else
                add_result(report, op, shape, "cpu", "fast",
                           time_cpu([&] { fast(out.data()); }, warmup, repeats), p.flops());
        }
        out.assign(ref.size(), 0.f);
        baseline(out.data());
        if (!close_enough(out, ref, &why)) {
            report.note(std::string(op) + " " + shape +
                        ": OpenBLAS baseline disagrees with the "
                        "CPU twin (" +
                        why + "); not timed");
            return;
        }
        add_result(report, op, shape, "cpu", "gnet",
                   time_cpu([&] { twin(out.data()); }, warmup, repeats), p.flops());
        add_result(report, op, shape, "cpu", "openblas",
                   time_cpu([&] { baseline(out.data()); }, warmup, repeats), p.flops());
    };
    run(
        "conv2d_forward", t.y, [&](float* y) { cpu::conv2d_forward(p, t.x.data(), t.w.data(), y); },
        [&](float* y) { baseline_forward(p, t.x.data(), t.w.data(), y); },
        [&](float* y) { cpu_fast::conv2d_forward(p, t.x.data(), t.w.data(), y); });
    run(
        "conv2d_backward_data", t.dx,
        [&](float* dx) { cpu::conv2d_backward_data(p, t.dy.data(), t.w.data(), dx); },
        [&](float* dx) { baseline_backward_data(p, t.dy.data(), t.w.data(), dx); },
        [&](float* dx) { cpu_fast::conv2d_backward_data(p, t.dy.data(), t.w.data(), dx); });
    run(
        "conv2d_backward_weight", t.dw,
        [&](float* dw) {
            cpu::conv2d_backward_weight(p, t.x.data(), t.dy.data(), dw, Accum::Overwrite);
        },
        [&](float* dw) { baseline_backward_weight(p, t.x.data(), t.dy.data(), dw); },
        [&](float* dw) {
            cpu_fast::conv2d_backward_weight(p, t.x.data(), t.dy.data(), dw, Accum::Overwrite);
        });
}

#if GNET_HAVE_CUDA
struct DeviceArray {
    DeviceBuffer buf;
    size_t count;
    explicit DeviceArray(const std::vector<float>& v) : buf(v.size() * 4), count(v.size()) {
        GNET_CUDA_CHECK(cudaMemcpy(buf.data(), v.data(), v.size() * 4, cudaMemcpyHostToDevice));
    }
    float* ptr() const { return buf.as<float>(); }
    std::vector<float> host() const {
        std::vector<float> v(count);
        GNET_CUDA_CHECK(cudaMemcpy(v.data(), buf.data(), count * 4, cudaMemcpyDeviceToHost));
        return v;
    }
};

#if GNET_HAVE_CUDNN
// cuDNN's fastest FP32 (FMA math) algorithm per pass, found once; its workspace allocated once.
struct CudnnConv {
    cudnnHandle_t handle = nullptr;
    cudnnTensorDescriptor_t xd = nullptr, yd = nullptr;
    cudnnFilterDescriptor_t wd = nullptr;
    cudnnConvolutionDescriptor_t cd = nullptr;

    explicit CudnnConv(const Conv2dParams& p, cudaStream_t stream) {
        GNET_CUDNN_CHECK(cudnnCreate(&handle));
        GNET_CUDNN_CHECK(cudnnSetStream(handle, stream));
        GNET_CUDNN_CHECK(cudnnCreateTensorDescriptor(&xd));
        GNET_CUDNN_CHECK(cudnnCreateTensorDescriptor(&yd));
        GNET_CUDNN_CHECK(cudnnCreateFilterDescriptor(&wd));
        GNET_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&cd));
        GNET_CUDNN_CHECK(cudnnSetTensor4dDescriptor(xd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, p.N,
                                                    p.C, p.H, p.W));
        GNET_CUDNN_CHECK(cudnnSetTensor4dDescriptor(yd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, p.N,
                                                    p.OC, p.OH, p.OW));
        GNET_CUDNN_CHECK(cudnnSetFilter4dDescriptor(wd, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, p.OC,
                                                    p.C, p.KH, p.KW));
        GNET_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(
            cd, p.pad, p.pad, p.stride, p.stride, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
        GNET_CUDNN_CHECK(cudnnSetConvolutionMathType(cd, CUDNN_FMA_MATH));
    }
    ~CudnnConv() {
        cudnnDestroyConvolutionDescriptor(cd);
        cudnnDestroyFilterDescriptor(wd);
        cudnnDestroyTensorDescriptor(yd);
        cudnnDestroyTensorDescriptor(xd);
        cudnnDestroy(handle);
    }
    CudnnConv(const CudnnConv&) = delete;
    CudnnConv& operator=(const CudnnConv&) = delete;
};

template <class Perf>
const Perf* best(const Perf* perf, int count) {
    for (int i = 0; i < count; ++i)
        if (perf[i].status == CUDNN_STATUS_SUCCESS) return &perf[i];
    return nullptr;
}
#endif

void bench_gpu(const Options& o, const Conv2dParams& p, const std::string& shape, const Tensors& t,
               Report& report) {
    cudaStream_t stream;
    GNET_CUDA_CHECK(cudaStreamCreate(&stream));
    DeviceArray x(t.x), w(t.w), dy(t.dy), y(t.y), dx(t.dx), dw(t.dw);
    const size_t ws_bytes = gpu::conv2d_workspace_bytes(p);
    DeviceBuffer ws = ws_bytes ? DeviceBuffer(ws_bytes) : DeviceBuffer();
    std::string why;

    auto validate_and_time = [&](const char* op, const DeviceArray& out,
                                 const std::vector<float>& ref, auto&& fn) -> bool {
        fn(stream);
        GNET_CUDA_CHECK(cudaStreamSynchronize(stream));
        if (!close_enough(out.host(), ref, &why)) {
            report.note(std::string(op) + " " + shape + ": gnet GPU disagrees with the CPU twin (" +
                        why + "); not timed");
            return false;
        }
        add_result(report, op, shape, "cuda", "gnet", time_gpu(fn, stream, o.warmup, o.repeats),
                   p.flops());
        return true;
    };

    const bool fwd = o.wants("conv2d_forward"), bwd_d = o.wants("conv2d_backward_data"),
               bwd_w = o.wants("conv2d_backward_weight");
    if (fwd)
        validate_and_time("conv2d_forward", y, t.y, [&](cudaStream_t s) {
            gpu::conv2d_forward(p, x.ptr(), w.ptr(), y.ptr(), s);
        });
    if (bwd_d)
        validate_and_time("conv2d_backward_data", dx, t.dx, [&](cudaStream_t s) {
            gpu::conv2d_backward_data(p, dy.ptr(), w.ptr(), dx.ptr(), s);
        });
    if (bwd_w)
        validate_and_time("conv2d_backward_weight", dw, t.dw, [&](cudaStream_t s) {
            gpu::conv2d_backward_weight(p, x.ptr(), dy.ptr(), dw.ptr(), Accum::Overwrite, ws.data(),
                                        s);
        });

#if GNET_HAVE_CUDNN
    CudnnConv c(p, stream);
    const float one = 1.f, zero = 0.f;
    constexpr int kAlgos = 16;
    int found = 0;
    if (fwd) {
        cudnnConvolutionFwdAlgoPerf_t perf[kAlgos];
        GNET_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithm(c.handle, c.xd, c.wd, c.cd, c.yd,
                                                              kAlgos, &found, perf));
        if (const auto* b = best(perf, found)) {
            DeviceBuffer cws = b->memory ? DeviceBuffer(b->memory) : DeviceBuffer();
            add_result(report, "conv2d_forward", shape, "cuda", "cudnn",
                       time_gpu(
                           [&](cudaStream_t) {
                               GNET_CUDNN_CHECK(cudnnConvolutionForward(
                                   c.handle, &one, c.xd, x.ptr(), c.wd, w.ptr(), c.cd, b->algo,
                                   cws.data(), b->memory, &zero, c.yd, y.ptr()));
                           },
                           stream, o.warmup, o.repeats),
                       p.flops(), "algo " + std::to_string(int(b->algo)));
        }
    }
    if (bwd_d) {
        cudnnConvolutionBwdDataAlgoPerf_t perf[kAlgos];
        GNET_CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithm(c.handle, c.wd, c.yd, c.cd, c.xd,
                                                                   kAlgos, &found, perf));
        if (const auto* b = best(perf, found)) {
            DeviceBuffer cws = b->memory ? DeviceBuffer(b->memory) : DeviceBuffer();
            add_result(report, "conv2d_backward_data", shape, "cuda", "cudnn",
                       time_gpu(
                           [&](cudaStream_t) {
                               GNET_CUDNN_CHECK(cudnnConvolutionBackwardData(
                                   c.handle, &one, c.wd, w.ptr(), c.yd, dy.ptr(), c.cd, b->algo,
                                   cws.data(), b->memory, &zero, c.xd, dx.ptr()));
                           },
                           stream, o.warmup, o.repeats),
                       p.flops(), "algo " + std::to_string(int(b->algo)));
        }
    }
    if (bwd_w) {
        cudnnConvolutionBwdFilterAlgoPerf_t perf[kAlgos];
        GNET_CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithm(c.handle, c.xd, c.yd, c.cd,
                                                                     c.wd, kAlgos, &found, perf));
        if (const auto* b = best(perf, found)) {
            DeviceBuffer cws = b->memory ? DeviceBuffer(b->memory) : DeviceBuffer();
            add_result(report, "conv2d_backward_weight", shape, "cuda", "cudnn",
                       time_gpu(
                           [&](cudaStream_t) {
                               GNET_CUDNN_CHECK(cudnnConvolutionBackwardFilter(
                                   c.handle, &one, c.xd, x.ptr(), c.yd, dy.ptr(), c.cd, b->algo,
                                   cws.data(), b->memory, &zero, c.wd, dw.ptr()));
                           },
                           stream, o.warmup, o.repeats),
                       p.flops(), "algo " + std::to_string(int(b->algo)));
        }
    }
#endif
    GNET_CUDA_CHECK(cudaStreamSynchronize(stream));
    GNET_CUDA_CHECK(cudaStreamDestroy(stream));
}

// NCHW (or OIHW) float -> NHWC (OHWI) bf16, and NHWC bf16 / float -> NCHW float.
std::vector<Bf16> to_nhwc_bf16(const std::vector<float>& v, int n, int c, int h, int w) {
    std::vector<Bf16> out(v.size());
    for (int i = 0; i < n; ++i)
        for (int ch = 0; ch < c; ++ch)
            for (int y = 0; y < h; ++y)
                for (int x = 0; x < w; ++x)
                    out[((size_t(i) * h + y) * w + x) * c + ch] =
                        to_bf16(v[((size_t(i) * c + ch) * h + y) * w + x]);
    return out;
}
template <class T>
std::vector<float> to_nchw_float(const std::vector<T>& v, int n, int c, int h, int w) {
    std::vector<float> out(v.size());
    for (int i = 0; i < n; ++i)
        for (int ch = 0; ch < c; ++ch)
            for (int y = 0; y < h; ++y)
                for (int x = 0; x < w; ++x) {
                    const T e = v[((size_t(i) * h + y) * w + x) * c + ch];
                    float f;
                    if constexpr (std::is_same_v<T, Bf16>)
                        f = to_float(e);
                    else
                        f = e;
                    out[((size_t(i) * c + ch) * h + y) * w + x] = f;
                }
    return out;
}

template <class T>
struct Typed {
    DeviceBuffer buf;
    size_t count;
    explicit Typed(const std::vector<T>& v) : buf(v.size() * sizeof(T)), count(v.size()) {
        GNET_CUDA_CHECK(
            cudaMemcpy(buf.data(), v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
    }
    explicit Typed(size_t n) : buf(n * sizeof(T)), count(n) {}
    T* ptr() const { return buf.as<T>(); }
    std::vector<T> host() const {
        std::vector<T> v(count);
        GNET_CUDA_CHECK(
            cudaMemcpy(v.data(), buf.data(), count * sizeof(T), cudaMemcpyDeviceToHost));
        return v;
    }
};

// bf16 operands against the float32 reference of the unrounded ones: within a few bf16 roundings
// of the output range.
bool close_for_bf16(const std::vector<float>& got, const std::vector<float>& ref,
                    std::string* why) {
    double scale = 1e-6;
    for (float r : ref)
        scale = std::max(scale, double(std::fabs(r)));
    for (size_t i = 0; i < ref.size(); ++i)
        if (!(std::fabs(double(got[i]) - ref[i]) <= 2e-2 * scale)) {
            char buf[160];
            std::snprintf(buf, sizeof buf, "mismatch at %zu: got %.7g ref %.7g", i, got[i], ref[i]);
            *why = buf;
            return false;
        }
    return true;
}

void bench_gpu_bf16(const Options& o, const Conv2dParams& p, const std::string& shape,
                    const Tensors& t, Report& report) {
    if (!gpu::bf16_supported()) {
        report.note("bf16 " + shape +
                    ": this GPU has no bf16 tensor cores (sm_80 or later); skipped");
        return;
    }
    cudaStream_t stream;
    GNET_CUDA_CHECK(cudaStreamCreate(&stream));
    Typed<Bf16> x(to_nhwc_bf16(t.x, p.N, p.C, p.H, p.W)),
        w(to_nhwc_bf16(t.w, p.OC, p.C, p.KH, p.KW)), dy(to_nhwc_bf16(t.dy, p.N, p.OC, p.OH, p.OW)),
        y(size_t(p.y_size())), dx(size_t(p.x_size())), wt(size_t(p.w_size()));
    Typed<float> dw(size_t(p.w_size()));
    const size_t wws_bytes = gpu::conv2d_bf16_backward_weight_workspace_bytes(p);
    DeviceBuffer wws = wws_bytes ? DeviceBuffer(wws_bytes) : DeviceBuffer();
    gpu::conv2d_bf16_ihwo(p, w.ptr(), wt.ptr(), stream);
    std::string why;
    auto validate_and_time = [&](const char* op, auto host_nchw, const std::vector<float>& ref,
                                 auto&& fn) {
        fn(stream);
        GNET_CUDA_CHECK(cudaStreamSynchronize(stream));
        if (!close_for_bf16(host_nchw(), ref, &why)) {
            report.note(std::string(op) + " " + shape + ": gnet bf16 disagrees with the float32 " +
                        "CPU twin (" + why + "); not timed");
            return;
        }
        add_result(report, op, shape, "cuda", "gnet", time_gpu(fn, stream, o.warmup, o.repeats),
                   p.flops());
    };
    const bool fwd = o.wants("conv2d_forward_bf16"), bwd_d = o.wants("conv2d_backward_data_bf16"),
               bwd_w = o.wants("conv2d_backward_weight_bf16");
    if (fwd)
        validate_and_time(
            "conv2d_forward_bf16", [&] { return to_nchw_float(y.host(), p.N, p.OC, p.OH, p.OW); },
            t.y,
            [&](cudaStream_t s) {
                gpu::conv2d_bf16_forward(p, x.ptr(), w.ptr(), y.ptr(), nullptr, nullptr, s);
            });
    if (bwd_d)
        validate_and_time(
            "conv2d_backward_data_bf16",
            [&] { return to_nchw_float(dx.host(), p.N, p.C, p.H, p.W); }, t.dx,
            [&](cudaStream_t s) {
                gpu::conv2d_bf16_backward_data(p, dy.ptr(), wt.ptr(), dx.ptr(), s);
            });
    if (bwd_w)
        validate_and_time(
            "conv2d_backward_weight_bf16",
            [&] { return to_nchw_float(dw.host(), p.OC, p.C, p.KH, p.KW); }, t.dw,
            [&](cudaStream_t s) {
                gpu::conv2d_bf16_backward_weight(p, x.ptr(), dy.ptr(), dw.ptr(), Accum::Overwrite,
                                                 wws.data(), s);
            });

#if GNET_HAVE_CUDNN
    cudnnHandle_t handle = nullptr;
    cudnnTensorDescriptor_t xd = nullptr, yd = nullptr;
    cudnnFilterDescriptor_t wd = nullptr;
    cudnnConvolutionDescriptor_t cd = nullptr;
    GNET_CUDNN_CHECK(cudnnCreate(&handle));
    GNET_CUDNN_CHECK(cudnnSetStream(handle, stream));
    GNET_CUDNN_CHECK(cudnnCreateTensorDescriptor(&xd));
    GNET_CUDNN_CHECK(cudnnCreateTensorDescriptor(&yd));
    GNET_CUDNN_CHECK(cudnnCreateFilterDescriptor(&wd));
    GNET_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&cd));
    GNET_CUDNN_CHECK(
        cudnnSetTensor4dDescriptor(xd, CUDNN_TENSOR_NHWC, CUDNN_DATA_BFLOAT16, p.N, p.C, p.H, p.W));
    GNET_CUDNN_CHECK(cudnnSetTensor4dDescriptor(yd, CUDNN_TENSOR_NHWC, CUDNN_DATA_BFLOAT16, p.N,
                                                p.OC, p.OH, p.OW));
    GNET_CUDNN_CHECK(cudnnSetFilter4dDescriptor(wd, CUDNN_DATA_BFLOAT16, CUDNN_TENSOR_NHWC, p.OC,
                                                p.C, p.KH, p.KW));
    GNET_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(cd, p.pad, p.pad, p.stride, p.stride, 1, 1,
                                                     CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    GNET_CUDNN_CHECK(cudnnSetConvolutionMathType(cd, CUDNN_TENSOR_OP_MATH));
    Typed<Bf16> dw16(size_t(p.w_size()));
    const float one = 1.f, zero = 0.f;
    constexpr int kAlgos = 16;
    int found = 0;
    auto timed = [&](const char* op, size_t memory, int algo, auto&& call) {
        DeviceBuffer cws = memory ? DeviceBuffer(memory) : DeviceBuffer();
        add_result(report, op, shape, "cuda", "cudnn",
                   time_gpu([&](cudaStream_t) { call(cws.data()); }, stream, o.warmup, o.repeats),
                   p.flops(), "algo " + std::to_string(algo));
    };
    if (fwd) {
        cudnnConvolutionFwdAlgoPerf_t perf[kAlgos];
        GNET_CUDNN_CHECK(
            cudnnFindConvolutionForwardAlgorithm(handle, xd, wd, cd, yd, kAlgos, &found, perf));
        if (const auto* b = best(perf, found))
            timed("conv2d_forward_bf16", b->memory, int(b->algo), [&](void* ws) {
                GNET_CUDNN_CHECK(cudnnConvolutionForward(handle, &one, xd, x.ptr(), wd, w.ptr(), cd,
                                                         b->algo, ws, b->memory, &zero, yd,
                                                         y.ptr()));
            });
    }
    if (bwd_d) {
        cudnnConvolutionBwdDataAlgoPerf_t perf[kAlgos];
        GNET_CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithm(handle, wd, yd, cd, xd, kAlgos,
                                                                   &found, perf));
        if (const auto* b = best(perf, found))
            timed("conv2d_backward_data_bf16", b->memory, int(b->algo), [&](void* ws) {
                GNET_CUDNN_CHECK(cudnnConvolutionBackwardData(handle, &one, wd, w.ptr(), yd,
                                                              dy.ptr(), cd, b->algo, ws, b->memory,
                                                              &zero, xd, dx.ptr()));
            });
    }
    if (bwd_w) {
        cudnnConvolutionBwdFilterAlgoPerf_t perf[kAlgos];
        GNET_CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithm(handle, xd, yd, cd, wd, kAlgos,
                                                                     &found, perf));
        if (const auto* b = best(perf, found))
            timed("conv2d_backward_weight_bf16", b->memory, int(b->algo), [&](void* ws) {
                GNET_CUDNN_CHECK(cudnnConvolutionBackwardFilter(handle, &one, xd, x.ptr(), yd,
                                                                dy.ptr(), cd, b->algo, ws,
                                                                b->memory, &zero, wd, dw16.ptr()));
            });
    }
    cudnnDestroyConvolutionDescriptor(cd);
    cudnnDestroyFilterDescriptor(wd);
    cudnnDestroyTensorDescriptor(yd);
    cudnnDestroyTensorDescriptor(xd);
    cudnnDestroy(handle);
#endif
    GNET_CUDA_CHECK(cudaStreamSynchronize(stream));
    GNET_CUDA_CHECK(cudaStreamDestroy(stream));
}
#endif

}  // namespace

int main(int argc, char** argv) {
    const Options o = parse_options(
        argc, argv,
        "bench_conv2d: ResNet18 conv shapes (input 1x128x431), forward / backward_data / "
        "backward_weight.\nCPU: gnet twin vs plain OpenBLAS (at most 1 warm-up and 5 repeats); "
        "GPU: gnet kernels vs cuDNN's fastest algorithm in the same precision.\nOps: "
        "conv2d_forward, conv2d_backward_data, conv2d_backward_weight (float32) and the same with "
        "_bf16 (tensor cores, NHWC). --quick uses batch 2.");
    const int batch = o.quick ? 2 : o.batch;
    const bool want_cpu = o.device == "cpu" || o.device == "auto";
    bool want_gpu = o.device == "cuda" || o.device == "auto";
    Report report("conv2d, batch " + std::to_string(batch));
    const GpuProbe& probe = probe_gpus();
    if (want_gpu && !probe.usable) {
        report.note("GPU part skipped: " +
                    (probe.reason.empty() ? std::string("no GPU") : probe.reason));
        want_gpu = false;
    }
#if !GNET_HAVE_CUDA
    want_gpu = false;
#endif
    report.note(
        "CPU baseline 'openblas': per image a freshly allocated im2col matrix and one "
        "sgemm; OpenBLAS " +
        std::string(openblas_get_config()) + ", " + std::to_string(openblas_get_num_threads()) +
        " threads");
    try {
        unsigned seed = 1;
        for (const Layer& l : resnet18_layers()) {
            const Conv2dParams p =
                Conv2dParams::make(batch, l.C, l.H, l.W, l.OC, l.K, l.K, l.stride, l.pad);
            const std::string shape = shape_text(l, p);
            const Tensors t = make_tensors(p, seed);
            seed += 3;
            if (want_cpu) bench_cpu(o, p, shape, t, report);
#if GNET_HAVE_CUDA
            if (want_gpu) {
                bench_gpu(o, p, shape, t, report);
                bench_gpu_bf16(o, p, shape, t, report);
            }
#endif
            std::fprintf(stderr, "done: %s\n", shape.c_str());
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_conv2d: %s\n", e.what());
        return 1;
    }
    report.compute_ratios("openblas");
    if (want_gpu) report.compute_ratios("cudnn");
    report.print_table();
    if (!o.json_path.empty()) report.write_json(o.json_path);
    return 0;
}
