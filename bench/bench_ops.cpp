// Layer-op benchmark: BatchNorm (+ReLU) training forward and backward, max-pool 3x3/2 forward and
// backward, Adam over a ResNet18-sized parameter arena; the CPU twins (impl "gnet"), the fast CPU
// backend (impl "fast", checked against the twin first), and on a GPU the CUDA kernels
// (validated against the CPU twin first) with cuDNN's BatchNorm as the yardstick.
//
// Rate = bytes that must cross memory per call / median time (GB/s). Per op (n = elements):
//   batchnorm_forward_train: stats read x (4n), normalise reads x, writes y (8n)  -> 12n bytes
//                            (+4n for the residual read with AddRelu)
//   batchnorm_backward:      sums read x, y, dy (12n), dx pass reads them, writes dx (16n) -> 28n
//                            (cuDNN's backward reads x and dy only: 20n for the None epilogue)
//   maxpool2d_forward:       read x (4 nx), write y and int32 argmax (8 ny)
//   maxpool2d_backward:      read dy and argmax (8 ny), write dx (4 nx)
//   adam_step:               read param, grad, m, v (16n), write param, m, v (12n) -> 28n
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "bench/harness.h"
#include "kernels/adam.h"
#include "kernels/batchnorm.h"
#include "kernels/error.h"
#include "kernels/gemm_cpu_fast.h"
#include "kernels/maxpool2d.h"
#include "nn/device.h"

#if GNET_HAVE_CUDA
#include <cuda_runtime.h>

#include "bench/harness_gpu.h"
#include "kernels/cuda_check.h"
#include "nn/buffer.h"
#include "nn/tensor.h"
#endif
#if GNET_HAVE_CUDA && GNET_HAVE_CUDNN
#include "kernels/cudnn_check.h"
#endif

using namespace gnet;
using namespace gnet::bench;

namespace {

std::vector<float> randn(size_t n, unsigned seed, float scale = 1.f, float shift = 0.f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d;
    std::vector<float> v(n);
    for (float& x : v)
        x = d(rng) * scale + shift;
    return v;
}

std::string bn_shape(const BatchNormParams& p, const char* epi) {
    return "N" + std::to_string(p.N) + " C" + std::to_string(p.C) + " HW" + std::to_string(p.HW) +
           " " + epi;
}

Result make_result(const std::string& op, const std::string& shape, const std::string& device,
                   const std::string& impl, Timing t, double bytes) {
    Result r;
    r.op = op;
    r.shape = shape;
    r.device = device;
    r.impl = impl;
    r.median_ms = t.median_ms;
    r.min_ms = t.min_ms;
    r.work = bytes;
    r.unit = "GB/s";
    r.rate = gbytes(bytes, t.median_ms);
    return r;
}

// Everything the ops read and write, on the host.
struct Inputs {
    BatchNormParams bn;
    Pool2dParams pool;
    int64_t n_bn, n_pool_in, n_pool_out, n_adam;
    std::vector<float> x, dy, gamma, beta, res, pool_x, pool_dy, w, g;
};

Inputs make_inputs(int batch, bool quick) {
    Inputs in;
    in.bn = BatchNormParams{batch, 64, 32 * 108};  // ResNet18 layer1 (after the stem pool)
    in.pool = Pool2dParams::make(batch, 64, 64, 216, 3, 2, 1);  // the stem pool
    in.n_bn = int64_t(in.bn.N) * in.bn.C * in.bn.HW;
    in.n_pool_in = int64_t(batch) * 64 * 64 * 216;
    in.n_pool_out = int64_t(batch) * 64 * in.pool.OH * in.pool.OW;
    in.n_adam = quick ? 1'000'000 : 11'200'000;  // ResNet18 with a 1-channel stem: ~11.2M
    in.x = randn(in.n_bn, 1, 2.f, 0.5f);
    in.dy = randn(in.n_bn, 2);
    in.res = randn(in.n_bn, 3);
    in.gamma = randn(64, 4, 0.2f, 1.f);
    in.beta = randn(64, 5, 0.2f);
    in.pool_x = randn(in.n_pool_in, 6);
    in.pool_dy = randn(in.n_pool_out, 7);
    in.w = randn(in.n_adam, 8);
    in.g = randn(in.n_adam, 9);
    return in;
}

// The fast CPU backend must agree with the twin before it is timed (relative to the output's
// range: float row sums instead of double element sums).
void check_fast(const char* op, const std::vector<float>& got, const std::vector<float>& ref) {
    double scale = 1e-30, worst = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
        scale = std::max(scale, double(std::fabs(ref[i])));
        worst = std::max(worst, double(std::fabs(got[i] - ref[i])));
    }
    if (!(worst <= 1e-4 * scale))
        throw Error(std::string(op) + ": the fast CPU backend differs from the twin by " +
                    std::to_string(worst / scale) + " of the output range");
}

void run_cpu(const Options& o, const Inputs& in, Report& report) {
    const BatchNormParams& p = in.bn;
    const int C = p.C;
    std::vector<float> y(in.n_bn), dx(in.n_bn), dres(in.n_bn), rm(C, 0.f), rv(C, 1.f), sm(C), si(C),
        dg(C, 0.f), db(C, 0.f);
    // The CPU twins are slow by design (the specification): fewer repeats.
    const int reps = std::min(o.repeats, 5), warm = std::min(o.warmup, 1);
    const double n = double(in.n_bn);
    if (o.wants("batchnorm")) {
        for (BnEpilogue epi : {BnEpilogue::Relu, BnEpilogue::AddRelu}) {
            const bool add = epi == BnEpilogue::AddRelu;
            const char* name = add ? "addrelu" : "relu";
            Timing t = time_cpu(
                [&] {
                    cpu::batchnorm_forward_train(p, epi, in.x.data(), in.gamma.data(),
                                                 in.beta.data(), add ? in.res.data() : nullptr,
                                                 y.data(), rm.data(), rv.data(), sm.data(),
                                                 si.data());
                },
                warm, reps);
            report.add(make_result("batchnorm_forward_train", bn_shape(p, name), "cpu", "gnet", t,
                                   (add ? 16 : 12) * n));
            t = time_cpu(
                [&] {
                    cpu::batchnorm_backward(p, epi, in.x.data(), y.data(), in.dy.data(),
                                            in.gamma.data(), sm.data(), si.data(), dx.data(),
                                            add ? dres.data() : nullptr, dg.data(), db.data());
                },
                warm, reps);
            report.add(make_result("batchnorm_backward", bn_shape(p, name), "cpu", "gnet", t,
                                   (add ? 32 : 28) * n));
            if (!cpu_fast::available()) continue;
            // The fast backend, checked against the twin's outputs just computed.
            std::vector<float> fy(in.n_bn), fdx(in.n_bn), fdres(in.n_bn), frm(C, 0.f), frv(C, 1.f),
                fsm(C), fsi(C), fdg(C, 0.f), fdb(C, 0.f);
            auto fwd = [&] {
                cpu_fast::batchnorm_forward_train(p, epi, in.x.data(), in.gamma.data(),
                                                  in.beta.data(), add ? in.res.data() : nullptr,
                                                  fy.data(), frm.data(), frv.data(), fsm.data(),
                                                  fsi.data());
            };
            auto bwd = [&] {
                cpu_fast::batchnorm_backward(p, epi, in.x.data(), y.data(), in.dy.data(),
                                             in.gamma.data(), sm.data(), si.data(), fdx.data(),
                                             add ? fdres.data() : nullptr, fdg.data(), fdb.data());
            };
            fwd();
            bwd();
            check_fast("batchnorm_forward_train", fy, y);
            check_fast("batchnorm_backward", fdx, dx);
            report.add(make_result("batchnorm_forward_train", bn_shape(p, name), "cpu", "fast",
                                   time_cpu(fwd, warm, reps), (add ? 16 : 12) * n));
            report.add(make_result("batchnorm_backward", bn_shape(p, name), "cpu", "fast",
                                   time_cpu(bwd, warm, reps), (add ? 32 : 28) * n));
        }
    }
    if (o.wants("maxpool2d")) {
        std::vector<float> py(in.n_pool_out), pdx(in.n_pool_in);
        std::vector<int32_t> am(in.n_pool_out);
        const std::string shape = "N" + std::to_string(in.pool.N) + " C64 64x216 -> 32x108 3x3/2";
        Timing t = time_cpu(
            [&] { cpu::maxpool2d_forward(in.pool, in.pool_x.data(), py.data(), am.data()); }, warm,
            reps);
        report.add(make_result("maxpool2d_forward", shape, "cpu", "gnet", t,
                               4.0 * in.n_pool_in + 8.0 * in.n_pool_out));
        t = time_cpu(
            [&] { cpu::maxpool2d_backward(in.pool, in.pool_dy.data(), am.data(), pdx.data()); },
            warm, reps);
        report.add(make_result("maxpool2d_backward", shape, "cpu", "gnet", t,
                               8.0 * in.n_pool_out + 4.0 * in.n_pool_in));
        if (cpu_fast::available()) {
            std::vector<float> fy(in.n_pool_out), fdx(in.n_pool_in);
            std::vector<int32_t> fam(in.n_pool_out);
            auto fwd = [&] {
                cpu_fast::maxpool2d_forward(in.pool, in.pool_x.data(), fy.data(), fam.data());
            };
            auto bwd = [&] {
                cpu_fast::maxpool2d_backward(in.pool, in.pool_dy.data(), am.data(), fdx.data());
            };
            fwd();
            bwd();
            check_fast("maxpool2d_forward", fy, py);
            check_fast("maxpool2d_backward", fdx, pdx);
            report.add(make_result("maxpool2d_forward", shape, "cpu", "fast",
                                   time_cpu(fwd, warm, reps),
                                   4.0 * in.n_pool_in + 8.0 * in.n_pool_out));
            report.add(make_result("maxpool2d_backward", shape, "cpu", "fast",
                                   time_cpu(bwd, warm, reps),
                                   8.0 * in.n_pool_out + 4.0 * in.n_pool_in));
        }
    }
    if (o.wants("adam")) {
        std::vector<float> w = in.w, m(in.n_adam, 0.f), v(in.n_adam, 0.f);
        AdamParams ap;
        ap.mode = AdamMode::AdamW;
        ap.weight_decay = 0.01f;
        Timing t = time_cpu(
            [&] { cpu::adam_step(ap, in.n_adam, w.data(), in.g.data(), m.data(), v.data()); }, warm,
            reps);
        report.add(make_result("adam_step", std::to_string(in.n_adam) + " params AdamW", "cpu",
                               "gnet", t, 28.0 * in.n_adam));
        if (cpu_fast::available()) {
            std::vector<float> fw = in.w, fm(in.n_adam, 0.f), fv(in.n_adam, 0.f);
            std::vector<float> rw = in.w, rm2(in.n_adam, 0.f), rv2(in.n_adam, 0.f);
            cpu::adam_step(ap, in.n_adam, rw.data(), in.g.data(), rm2.data(), rv2.data());
            cpu_fast::adam_step(ap, in.n_adam, fw.data(), in.g.data(), fm.data(), fv.data());
            check_fast("adam_step", fw, rw);
            t = time_cpu(
                [&] {
                    cpu_fast::adam_step(ap, in.n_adam, fw.data(), in.g.data(), fm.data(),
                                        fv.data());
                },
                warm, reps);
            report.add(make_result("adam_step", std::to_string(in.n_adam) + " params AdamW", "cpu",
                                   "fast", t, 28.0 * in.n_adam));
        }
    }
}

#if GNET_HAVE_CUDA
// Relative error check of a GPU result against the CPU twin; exits non-zero when it disagrees.
void validate(const char* what, const std::vector<float>& got, const std::vector<float>& ref,
              double atol, double rtol) {
    for (size_t i = 0; i < got.size(); ++i) {
        const double e = std::fabs(double(got[i]) - ref[i]);
        if (!(e <= atol + rtol * std::fabs(double(ref[i])))) {
            std::fprintf(stderr,
                         "bench_ops: %s disagrees with the CPU twin at [%zu]: %.9g vs %.9g\n", what,
                         i, double(got[i]), double(ref[i]));
            std::exit(1);
        }
    }
}

void run_gpu(const Options& o, const Inputs& in, Report& report) {
    cudaStream_t stream;
    GNET_CUDA_CHECK(cudaStreamCreate(&stream));
    const BatchNormParams& p = in.bn;
    const int C = p.C;
    const double n = double(in.n_bn);
    auto dev = [](const std::vector<float>& v) {
        return Tensor::from_vector({int64_t(v.size())}, v, Device::CUDA);
    };
    if (o.wants("batchnorm")) {
        Tensor x = dev(in.x), dy = dev(in.dy), res = dev(in.res), gamma = dev(in.gamma),
               beta = dev(in.beta);
        Tensor y = Tensor::empty({in.n_bn}, Device::CUDA),
               dx = Tensor::empty({in.n_bn}, Device::CUDA),
               dres = Tensor::empty({in.n_bn}, Device::CUDA);
        Tensor rm = Tensor::zeros({C}, Device::CUDA), rv = Tensor::zeros({C}, Device::CUDA),
               sm = Tensor::empty({C}, Device::CUDA), si = Tensor::empty({C}, Device::CUDA),
               dg = Tensor::zeros({C}, Device::CUDA), db = Tensor::zeros({C}, Device::CUDA);
        for (BnEpilogue epi : {BnEpilogue::None, BnEpilogue::Relu, BnEpilogue::AddRelu}) {
            const bool add = epi == BnEpilogue::AddRelu;
            const char* name = epi == BnEpilogue::None ? "none" : add ? "addrelu" : "relu";
            auto fwd = [&](cudaStream_t s) {
                gpu::batchnorm_forward_train(p, epi, x.data(), gamma.data(), beta.data(),
                                             add ? res.data() : nullptr, y.data(), rm.data(),
                                             rv.data(), sm.data(), si.data(), s);
            };
            auto bwd = [&](cudaStream_t s) {
                gpu::batchnorm_backward(p, epi, x.data(), y.data(), dy.data(), gamma.data(),
                                        sm.data(), si.data(), dx.data(),
                                        add ? dres.data() : nullptr, dg.data(), db.data(), s);
            };
            {  // validate once against the CPU twin
                std::vector<float> hy(in.n_bn), hdx(in.n_bn), hdres(in.n_bn), hrm(C, 0.f),
                    hrv(C, 1.f), hsm(C), hsi(C), hdg(C, 0.f), hdb(C, 0.f);
                cpu::batchnorm_forward_train(p, epi, in.x.data(), in.gamma.data(), in.beta.data(),
                                             add ? in.res.data() : nullptr, hy.data(), hrm.data(),
                                             hrv.data(), hsm.data(), hsi.data());
                cpu::batchnorm_backward(p, epi, in.x.data(), hy.data(), in.dy.data(),
                                        in.gamma.data(), hsm.data(), hsi.data(), hdx.data(),
                                        add ? hdres.data() : nullptr, hdg.data(), hdb.data());
                fwd(stream);
                bwd(stream);
                GNET_CUDA_CHECK(cudaStreamSynchronize(stream));
                validate("batchnorm_forward_train", y.to_host(), hy, 1e-4, 1e-4);
                validate("batchnorm_backward", dx.to_host(), hdx, 1e-4, 1e-3);
            }
            Timing t = time_gpu(fwd, stream, o.warmup, o.repeats);
            report.add(make_result("batchnorm_forward_train", bn_shape(p, name), "cuda", "gnet", t,
                                   (add ? 16 : 12) * n));
            t = time_gpu(bwd, stream, o.warmup, o.repeats);
            report.add(make_result("batchnorm_backward", bn_shape(p, name), "cuda", "gnet", t,
                                   (add                       ? 32
                                    : epi == BnEpilogue::None ? 20
                                                              : 28) *
                                       n));
        }
#if GNET_HAVE_CUDNN
        cudnnHandle_t handle;
        GNET_CUDNN_CHECK(cudnnCreate(&handle));
        GNET_CUDNN_CHECK(cudnnSetStream(handle, stream));
        cudnnTensorDescriptor_t xd, cd;
        GNET_CUDNN_CHECK(cudnnCreateTensorDescriptor(&xd));
        GNET_CUDNN_CHECK(cudnnCreateTensorDescriptor(&cd));
        GNET_CUDNN_CHECK(
            cudnnSetTensor4dDescriptor(xd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, p.N, C, 1, p.HW));
        GNET_CUDNN_CHECK(
            cudnnSetTensor4dDescriptor(cd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, C, 1, 1));
        const float one = 1.f, zero = 0.f;
        Timing t = time_gpu(
            [&](cudaStream_t) {
                GNET_CUDNN_CHECK(cudnnBatchNormalizationForwardTraining(
                    handle, CUDNN_BATCHNORM_SPATIAL, &one, &zero, xd, x.data(), xd, y.data(), cd,
                    gamma.data(), beta.data(), double(p.momentum), rm.data(), rv.data(),
                    double(p.eps), sm.data(), si.data()));
            },
            stream, o.warmup, o.repeats);
        report.add(make_result("batchnorm_forward_train", bn_shape(p, "none"), "cuda", "cudnn", t,
                               12 * n));
        t = time_gpu(
            [&](cudaStream_t) {
                GNET_CUDNN_CHECK(cudnnBatchNormalizationBackward(
                    handle, CUDNN_BATCHNORM_SPATIAL, &one, &zero, &one, &one, xd, x.data(), xd,
                    dy.data(), xd, dx.data(), cd, gamma.data(), dg.data(), db.data(), double(p.eps),
                    sm.data(), si.data()));
            },
            stream, o.warmup, o.repeats);
        report.add(
            make_result("batchnorm_backward", bn_shape(p, "none"), "cuda", "cudnn", t, 20 * n));
        cudnnDestroyTensorDescriptor(xd);
        cudnnDestroyTensorDescriptor(cd);
        cudnnDestroy(handle);
#endif
    }
    if (o.wants("maxpool2d")) {
        Tensor x = dev(in.pool_x), dy = dev(in.pool_dy);
        Tensor y = Tensor::empty({in.n_pool_out}, Device::CUDA),
               dx = Tensor::empty({in.n_pool_in}, Device::CUDA);
        DeviceBuffer am(size_t(in.n_pool_out) * sizeof(int32_t));
        auto fwd = [&](cudaStream_t s) {
            gpu::maxpool2d_forward(in.pool, x.data(), y.data(), am.as<int32_t>(), s);
        };
        auto bwd = [&](cudaStream_t s) {
            gpu::maxpool2d_backward(in.pool, dy.data(), am.as<int32_t>(), dx.data(), s);
        };
        std::vector<float> hy(in.n_pool_out), hdx(in.n_pool_in);
        std::vector<int32_t> ham(in.n_pool_out);
        cpu::maxpool2d_forward(in.pool, in.pool_x.data(), hy.data(), ham.data());
        cpu::maxpool2d_backward(in.pool, in.pool_dy.data(), ham.data(), hdx.data());
        fwd(stream);
        bwd(stream);
        GNET_CUDA_CHECK(cudaStreamSynchronize(stream));
        validate("maxpool2d_forward", y.to_host(), hy, 0, 0);
        validate("maxpool2d_backward", dx.to_host(), hdx, 0, 0);
        const std::string shape = "N" + std::to_string(in.pool.N) + " C64 64x216 -> 32x108 3x3/2";
        report.add(make_result("maxpool2d_forward", shape, "cuda", "gnet",
                               time_gpu(fwd, stream, o.warmup, o.repeats),
                               4.0 * in.n_pool_in + 8.0 * in.n_pool_out));
        report.add(make_result("maxpool2d_backward", shape, "cuda", "gnet",
                               time_gpu(bwd, stream, o.warmup, o.repeats),
                               8.0 * in.n_pool_out + 4.0 * in.n_pool_in));
    }
    if (o.wants("adam")) {
        AdamParams ap;
        ap.mode = AdamMode::AdamW;
        ap.weight_decay = 0.01f;
        Tensor w = dev(in.w), g = dev(in.g), m = Tensor::zeros({in.n_adam}, Device::CUDA),
               v = Tensor::zeros({in.n_adam}, Device::CUDA);
        {
            std::vector<float> hw = in.w, hm(in.n_adam, 0.f), hv(in.n_adam, 0.f);
            cpu::adam_step(ap, in.n_adam, hw.data(), in.g.data(), hm.data(), hv.data());
            gpu::adam_step(ap, in.n_adam, w.data(), g.data(), m.data(), v.data(), stream);
            GNET_CUDA_CHECK(cudaStreamSynchronize(stream));
            validate("adam_step", w.to_host(), hw, 1e-7, 1e-5);
        }
        Timing t = time_gpu(
            [&](cudaStream_t s) {
                gpu::adam_step(ap, in.n_adam, w.data(), g.data(), m.data(), v.data(), s);
            },
            stream, o.warmup, o.repeats);
        report.add(make_result("adam_step", std::to_string(in.n_adam) + " params AdamW", "cuda",
                               "gnet", t, 28.0 * in.n_adam));
    }
    GNET_CUDA_CHECK(cudaStreamDestroy(stream));
}
#endif

}  // namespace

int main(int argc, char** argv) {
    try {
        Options o = parse_options(
            argc, argv,
            "bench_ops: BatchNorm(+ReLU) forward/backward, max-pool 3x3/2, Adam over ~11.2M "
            "parameters, in GB/s; ops: batchnorm, maxpool2d, adam");
        if (o.quick) o.batch = std::min(o.batch, 2);
        const Device device = resolve_device(parse_device_choice(o.device), &std::cerr);
        const Inputs in = make_inputs(o.batch, o.quick);
        Report report("Layer ops (batch " + std::to_string(o.batch) + ")");
        if (device == Device::CPU) {
            run_cpu(o, in, report);
        } else {
#if GNET_HAVE_CUDA
            run_gpu(o, in, report);
            report.compute_ratios("cudnn");
#endif
        }
        report.print_table();
        if (!o.json_path.empty()) report.write_json(o.json_path);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_ops: %s\n", e.what());
        return 1;
    }
}
