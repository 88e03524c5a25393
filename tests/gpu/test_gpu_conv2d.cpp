// conv2d GPU twin against the CPU twin (every pass, awkward shapes and every ResNet18 conv at
// batch 2 on a [1, 128, 431] input), against cuDNN (FP32 FMA math, fixed algorithms), Accum
// semantics, and bit-identical backward_weight under varied schedules.
#include <cuda_runtime.h>
#include <doctest/doctest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/conv2d.h"
#include "kernels/cuda_check.h"
#include "kernels/error.h"
#include "nn/buffer.h"
#include "tests/check.h"
#include "tests/gpu/schedules.h"

#if GNET_HAVE_CUDNN
#include "kernels/cudnn_check.h"
#endif

using namespace gnet;
using gnet::test::Tolerance;

namespace {

// GPU FMA order differs from OpenBLAS's; sums have up to N*OH*OW ~ 3e4 terms of size ~1.
constexpr Tolerance kGpuVsCpu{2e-3, 1e-3};
constexpr Tolerance kGpuVsCudnn{2e-3, 1e-3};

struct Shape {
    const char* name;
    int N, C, H, W, OC, KH, KW, stride, pad;
    Conv2dParams params() const { return Conv2dParams::make(N, C, H, W, OC, KH, KW, stride, pad); }
};

std::vector<Shape> test_shapes() {
    return {
        {"1x1/2 downsample, odd H/W", 2, 5, 9, 7, 6, 1, 1, 2, 0},
        {"3x3/1 pad1", 2, 3, 8, 9, 5, 3, 3, 1, 1},
        {"3x3/2 pad1, N=1, C=17, odd H/W", 1, 17, 11, 9, 7, 3, 3, 2, 1},
        {"7x7/2 pad3 stem, C=1, odd H/W", 2, 1, 15, 13, 4, 7, 7, 2, 3},
        {"3x3/1 no pad, N=1", 1, 5, 6, 6, 3, 3, 3, 1, 0},
        {"5x5/1 pad2 (runtime kernel size)", 3, 3, 5, 5, 2, 5, 5, 1, 2},
        {"3x2/3 pad1, non-square, stride 3", 2, 4, 7, 5, 3, 3, 2, 3, 1},
        {"1x1x1 image", 1, 1, 1, 1, 1, 1, 1, 1, 0},
        {"C=70, OC=67: partial tiles", 2, 70, 5, 3, 67, 3, 3, 1, 1},
        // Enough pixels for the 64x128 tile in forward (the others above use 64x64 there).
        {"wide tile: OC=5, odd 97x101", 4, 3, 97, 101, 5, 3, 3, 1, 1},
        {"wide tile: stem at batch 8", 8, 1, 128, 431, 64, 7, 7, 2, 3},
        {"wide tile: layer1 at batch 16", 16, 64, 32, 108, 64, 3, 3, 1, 1},
        // ResNet18 on [1, 128, 431], batch 2
        {"stem 1->64 7x7/2", 2, 1, 128, 431, 64, 7, 7, 2, 3},
        {"layer1 64->64 3x3", 2, 64, 32, 108, 64, 3, 3, 1, 1},
        {"layer2.0 64->128 3x3/2", 2, 64, 32, 108, 128, 3, 3, 2, 1},
        {"layer2.0 downsample 1x1/2", 2, 64, 32, 108, 128, 1, 1, 2, 0},
        {"layer2 128->128 3x3", 2, 128, 16, 54, 128, 3, 3, 1, 1},
        {"layer3.0 128->256 3x3/2", 2, 128, 16, 54, 256, 3, 3, 2, 1},
        {"layer3.0 downsample 1x1/2", 2, 128, 16, 54, 256, 1, 1, 2, 0},
        {"layer3 256->256 3x3", 2, 256, 8, 27, 256, 3, 3, 1, 1},
        {"layer4.0 256->512 3x3/2", 2, 256, 8, 27, 512, 3, 3, 2, 1},
        {"layer4.0 downsample 1x1/2", 2, 256, 8, 27, 512, 1, 1, 2, 0},
        {"layer4 512->512 3x3", 2, 512, 4, 14, 512, 3, 3, 1, 1},
    };
}

std::vector<float> random_vector(int64_t count, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    std::vector<float> v(static_cast<size_t>(count));
    for (float& e : v)
        e = u(rng);
    return v;
}

// A device copy of host data.
struct Dev {
    DeviceBuffer buf;
    size_t count = 0;
    explicit Dev(const std::vector<float>& v) : buf(v.size() * sizeof(float)), count(v.size()) {
        GNET_CUDA_CHECK(
            cudaMemcpy(buf.data(), v.data(), v.size() * sizeof(float), cudaMemcpyHostToDevice));
    }
    // NaN-filled, so that an element the kernel forgets to write fails the comparison.
    explicit Dev(int64_t n) : buf(size_t(n) * sizeof(float)), count(size_t(n)) {
        GNET_CUDA_CHECK(cudaMemset(buf.data(), 0xff, count * sizeof(float)));
    }
    float* ptr() const { return buf.as<float>(); }
    std::vector<float> host() const {
        std::vector<float> v(count);
        GNET_CUDA_CHECK(
            cudaMemcpy(v.data(), buf.data(), count * sizeof(float), cudaMemcpyDeviceToHost));
        return v;
    }
};

DeviceBuffer workspace_for(const Conv2dParams& p) {
    const size_t bytes = gpu::conv2d_workspace_bytes(p);
    return bytes ? DeviceBuffer(bytes) : DeviceBuffer();
}

#if GNET_HAVE_CUDNN
// cuDNN in FP32 with FMA math only (no TF32).
class CudnnConv {
  public:
    explicit CudnnConv(const Conv2dParams& p) {
        GNET_CUDNN_CHECK(cudnnCreate(&handle_));
        GNET_CUDNN_CHECK(cudnnCreateTensorDescriptor(&x_));
        GNET_CUDNN_CHECK(cudnnCreateTensorDescriptor(&y_));
        GNET_CUDNN_CHECK(cudnnCreateFilterDescriptor(&w_));
        GNET_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&conv_));
        GNET_CUDNN_CHECK(cudnnSetTensor4dDescriptor(x_, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, p.N,
                                                    p.C, p.H, p.W));
        GNET_CUDNN_CHECK(cudnnSetTensor4dDescriptor(y_, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, p.N,
                                                    p.OC, p.OH, p.OW));
        GNET_CUDNN_CHECK(cudnnSetFilter4dDescriptor(w_, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, p.OC,
                                                    p.C, p.KH, p.KW));
        GNET_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(conv_, p.pad, p.pad, p.stride, p.stride, 1,
                                                         1, CUDNN_CROSS_CORRELATION,
                                                         CUDNN_DATA_FLOAT));
        GNET_CUDNN_CHECK(cudnnSetConvolutionMathType(conv_, CUDNN_FMA_MATH));
    }
    ~CudnnConv() {
        cudnnDestroyConvolutionDescriptor(conv_);
        cudnnDestroyFilterDescriptor(w_);
        cudnnDestroyTensorDescriptor(y_);
        cudnnDestroyTensorDescriptor(x_);
        cudnnDestroy(handle_);
    }
    CudnnConv(const CudnnConv&) = delete;
    CudnnConv& operator=(const CudnnConv&) = delete;

    // Each pass runs its fixed algorithm; should this cuDNN not support it for a shape, the first
    // algorithm its heuristics list that runs.
    void forward(const float* x, const float* w, float* y) {
        auto run = [&](cudnnConvolutionFwdAlgo_t algo) {
            size_t bytes = 0;
            cudnnStatus_t st =
                cudnnGetConvolutionForwardWorkspaceSize(handle_, x_, w_, conv_, y_, algo, &bytes);
            if (st != CUDNN_STATUS_SUCCESS) return st;
            DeviceBuffer ws = bytes ? DeviceBuffer(bytes) : DeviceBuffer();
            return cudnnConvolutionForward(handle_, &one_, x_, x, w_, w, conv_, algo, ws.data(),
                                           bytes, &zero_, y_, y);
        };
        if (run(CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM) == CUDNN_STATUS_SUCCESS) return;
        cudnnConvolutionFwdAlgoPerf_t perf[kAlgos];
        int n = 0;
        GNET_CUDNN_CHECK(
            cudnnGetConvolutionForwardAlgorithm_v7(handle_, x_, w_, conv_, y_, kAlgos, &n, perf));
        for (int i = 0; i < n; ++i)
            if (perf[i].status == CUDNN_STATUS_SUCCESS && run(perf[i].algo) == CUDNN_STATUS_SUCCESS)
                return;
        GNET_CHECK(false, "no cuDNN forward algorithm ran");
    }
    void backward_data(const float* dy, const float* w, float* dx) {
        auto run = [&](cudnnConvolutionBwdDataAlgo_t algo) {
            size_t bytes = 0;
            cudnnStatus_t st = cudnnGetConvolutionBackwardDataWorkspaceSize(handle_, w_, y_, conv_,
                                                                            x_, algo, &bytes);
            if (st != CUDNN_STATUS_SUCCESS) return st;
            DeviceBuffer ws = bytes ? DeviceBuffer(bytes) : DeviceBuffer();
            return cudnnConvolutionBackwardData(handle_, &one_, w_, w, y_, dy, conv_, algo,
                                                ws.data(), bytes, &zero_, x_, dx);
        };
        if (run(CUDNN_CONVOLUTION_BWD_DATA_ALGO_1) == CUDNN_STATUS_SUCCESS) return;
        cudnnConvolutionBwdDataAlgoPerf_t perf[kAlgos];
        int n = 0;
        GNET_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(handle_, w_, y_, conv_, x_,
                                                                     kAlgos, &n, perf));
        for (int i = 0; i < n; ++i)
            if (perf[i].status == CUDNN_STATUS_SUCCESS && run(perf[i].algo) == CUDNN_STATUS_SUCCESS)
                return;
        GNET_CHECK(false, "no cuDNN backward-data algorithm ran");
    }
    void backward_filter(const float* x, const float* dy, float* dw) {
        auto run = [&](cudnnConvolutionBwdFilterAlgo_t algo) {
            size_t bytes = 0;
            cudnnStatus_t st = cudnnGetConvolutionBackwardFilterWorkspaceSize(
                handle_, x_, y_, conv_, w_, algo, &bytes);
            if (st != CUDNN_STATUS_SUCCESS) return st;
            DeviceBuffer ws = bytes ? DeviceBuffer(bytes) : DeviceBuffer();
            return cudnnConvolutionBackwardFilter(handle_, &one_, x_, x, y_, dy, conv_, algo,
                                                  ws.data(), bytes, &zero_, w_, dw);
        };
        if (run(CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1) == CUDNN_STATUS_SUCCESS) return;
        cudnnConvolutionBwdFilterAlgoPerf_t perf[kAlgos];
        int n = 0;
        GNET_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(handle_, x_, y_, conv_, w_,
                                                                       kAlgos, &n, perf));
        for (int i = 0; i < n; ++i)
            if (perf[i].status == CUDNN_STATUS_SUCCESS && run(perf[i].algo) == CUDNN_STATUS_SUCCESS)
                return;
        GNET_CHECK(false, "no cuDNN backward-filter algorithm ran");
    }

  private:
    static constexpr int kAlgos = 16;
    const float one_ = 1.f, zero_ = 0.f;
    cudnnHandle_t handle_ = nullptr;
    cudnnTensorDescriptor_t x_ = nullptr, y_ = nullptr;
    cudnnFilterDescriptor_t w_ = nullptr;
    cudnnConvolutionDescriptor_t conv_ = nullptr;
};
#endif

}  // namespace

TEST_CASE("conv2d GPU matches the CPU twin: every pass, awkward and ResNet18 shapes") {
    unsigned seed = 1;
    for (const Shape& s : test_shapes()) {
        CAPTURE(s.name);
        const Conv2dParams p = s.params();
        const auto x = random_vector(p.x_size(), seed++);
        const auto w = random_vector(p.w_size(), seed++);
        const auto dy = random_vector(p.y_size(), seed++);
        std::vector<float> y(size_t(p.y_size())), dx(size_t(p.x_size())), dw(size_t(p.w_size()));
        cpu::conv2d_forward(p, x.data(), w.data(), y.data());
        cpu::conv2d_backward_data(p, dy.data(), w.data(), dx.data());
        cpu::conv2d_backward_weight(p, x.data(), dy.data(), dw.data(), Accum::Overwrite);

        Dev d_x(x), d_w(w), d_dy(dy), d_y(p.y_size()), d_dx(p.x_size()), d_dw(p.w_size());
        DeviceBuffer ws = workspace_for(p);
        gpu::conv2d_forward(p, d_x.ptr(), d_w.ptr(), d_y.ptr(), nullptr);
        gpu::conv2d_backward_data(p, d_dy.ptr(), d_w.ptr(), d_dx.ptr(), nullptr);
        gpu::conv2d_backward_weight(p, d_x.ptr(), d_dy.ptr(), d_dw.ptr(), Accum::Overwrite,
                                    ws.data(), nullptr);
        GNET_CUDA_CHECK(cudaDeviceSynchronize());
        GNET_CHECK_CLOSE(d_y.host(), y, kGpuVsCpu);
        GNET_CHECK_CLOSE(d_dx.host(), dx, kGpuVsCpu);
        GNET_CHECK_CLOSE(d_dw.host(), dw, kGpuVsCpu);
    }
}

TEST_CASE("conv2d GPU backward_weight: Accum::Add adds, with and without split-K") {
    // stem at batch 2: many K slices in the workspace; a small shape: a single slice.
    for (const Shape& s : {Shape{"stem", 2, 1, 128, 431, 64, 7, 7, 2, 3},
                           Shape{"small", 2, 3, 8, 9, 5, 3, 3, 1, 1}}) {
        CAPTURE(s.name);
        const Conv2dParams p = s.params();
        const auto x = random_vector(p.x_size(), 21);
        const auto dy = random_vector(p.y_size(), 22);
        const auto start = random_vector(p.w_size(), 23);
        std::vector<float> dw = start;
        cpu::conv2d_backward_weight(p, x.data(), dy.data(), dw.data(), Accum::Add);

        Dev d_x(x), d_dy(dy), d_dw(start);
        DeviceBuffer ws = workspace_for(p);
        gpu::conv2d_backward_weight(p, d_x.ptr(), d_dy.ptr(), d_dw.ptr(), Accum::Add, ws.data(),
                                    nullptr);
        GNET_CUDA_CHECK(cudaDeviceSynchronize());
        GNET_CHECK_CLOSE(d_dw.host(), dw, kGpuVsCpu);
    }
    CHECK(gpu::conv2d_workspace_bytes(Conv2dParams::make(2, 1, 128, 431, 64, 7, 7, 2, 3)) > 0);
}

TEST_CASE("conv2d GPU backward_weight is bit-identical under every schedule") {
    for (const Shape& s : {Shape{"stem", 2, 1, 128, 431, 64, 7, 7, 2, 3},
                           Shape{"layer1", 2, 64, 32, 108, 64, 3, 3, 1, 1},
                           Shape{"layer4", 2, 512, 4, 14, 512, 3, 3, 1, 1}}) {
        CAPTURE(s.name);
        const Conv2dParams p = s.params();
        Dev d_x(random_vector(p.x_size(), 31)), d_dy(random_vector(p.y_size(), 32));
        Dev a(p.w_size());
        DeviceBuffer ws = workspace_for(p);
        const auto dw = gnet::test::results_under_varied_schedules([&] {
            gpu::conv2d_backward_weight(p, d_x.ptr(), d_dy.ptr(), a.ptr(), Accum::Overwrite,
                                        ws.data(), nullptr);
            GNET_CUDA_CHECK(cudaDeviceSynchronize());
            return a.host();
        });
        CHECK(gnet::test::all_equal(dw));
    }
}

TEST_CASE("conv2d GPU backward_weight without its workspace is an error, not a crash") {
    const Conv2dParams p = Conv2dParams::make(2, 1, 128, 431, 64, 7, 7, 2, 3);
    REQUIRE(gpu::conv2d_workspace_bytes(p) > 0);
    CHECK_THROWS_WITH(gpu::conv2d_backward_weight(p, nullptr, nullptr, nullptr, Accum::Overwrite,
                                                  nullptr, nullptr),
                      doctest::Contains("workspace"));
}

#if GNET_HAVE_CUDNN
TEST_CASE("conv2d GPU matches cuDNN") {
    unsigned seed = 50;
    for (const Shape& s : {Shape{"3x3/2 pad1, C=17", 1, 17, 11, 9, 7, 3, 3, 2, 1},
                           Shape{"stem 1->64 7x7/2", 2, 1, 128, 431, 64, 7, 7, 2, 3},
                           Shape{"layer2.0 downsample 1x1/2", 2, 64, 32, 108, 128, 1, 1, 2, 0},
                           Shape{"layer3 256->256 3x3", 2, 256, 8, 27, 256, 3, 3, 1, 1}}) {
        CAPTURE(s.name);
        const Conv2dParams p = s.params();
        Dev d_x(random_vector(p.x_size(), seed++)), d_w(random_vector(p.w_size(), seed++));
        Dev d_dy(random_vector(p.y_size(), seed++));
        Dev y(p.y_size()), y_ref(p.y_size()), dx(p.x_size()), dx_ref(p.x_size());
        Dev dw(p.w_size()), dw_ref(p.w_size());
        DeviceBuffer ws = workspace_for(p);
        gpu::conv2d_forward(p, d_x.ptr(), d_w.ptr(), y.ptr(), nullptr);
        gpu::conv2d_backward_data(p, d_dy.ptr(), d_w.ptr(), dx.ptr(), nullptr);
        gpu::conv2d_backward_weight(p, d_x.ptr(), d_dy.ptr(), dw.ptr(), Accum::Overwrite, ws.data(),
                                    nullptr);
        CudnnConv ref(p);
        ref.forward(d_x.ptr(), d_w.ptr(), y_ref.ptr());
        ref.backward_data(d_dy.ptr(), d_w.ptr(), dx_ref.ptr());
        ref.backward_filter(d_x.ptr(), d_dy.ptr(), dw_ref.ptr());
        GNET_CUDA_CHECK(cudaDeviceSynchronize());
        GNET_CHECK_CLOSE(y.host(), y_ref.host(), kGpuVsCudnn);
        GNET_CHECK_CLOSE(dx.host(), dx_ref.host(), kGpuVsCudnn);
        GNET_CHECK_CLOSE(dw.host(), dw_ref.host(), kGpuVsCudnn);
    }
}
#endif
