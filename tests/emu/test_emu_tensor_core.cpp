// The emulated tensor-core instructions (kernels/mma.cuh on emu/tensor_core.cpp) against the PTX
// ISA's definitions: an mma.sync product built from fragments laid out as documented equals the
// plain matrix product; ldmatrix (and .trans) hands every lane the fragment elements the ISA
// names; cp.async completes only at its wait (a read before the wait sees the old bytes) and
// zero-fills when told to.
#include <doctest/doctest.h>

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/bf16.h"
#include "kernels/launch.cuh"
#include "kernels/mma.cuh"
#include "nn/buffer.h"

using namespace gnet;

namespace {

// A (16 x 16) and B (16 x 8) row-major floats; D = A * B + C written row-major.
__global__ void mma_kernel(const float* A, const float* B, const float* C, float* D) {
    const int lane = threadIdx.x, g = lane / 4, t = lane % 4;
    uint32_t a[4], b[2];
    a[0] = pack_bf16x2(A[g * 16 + 2 * t], A[g * 16 + 2 * t + 1]);
    a[1] = pack_bf16x2(A[(g + 8) * 16 + 2 * t], A[(g + 8) * 16 + 2 * t + 1]);
    a[2] = pack_bf16x2(A[g * 16 + 2 * t + 8], A[g * 16 + 2 * t + 9]);
    a[3] = pack_bf16x2(A[(g + 8) * 16 + 2 * t + 8], A[(g + 8) * 16 + 2 * t + 9]);
    b[0] = pack_bf16x2(B[(2 * t) * 8 + g], B[(2 * t + 1) * 8 + g]);
    b[1] = pack_bf16x2(B[(2 * t + 8) * 8 + g], B[(2 * t + 9) * 8 + g]);
    float d[4] = {C[g * 8 + 2 * t], C[g * 8 + 2 * t + 1], C[(g + 8) * 8 + 2 * t],
                  C[(g + 8) * 8 + 2 * t + 1]};
    mma::mma_bf16_16816(d, a, b);
    D[g * 8 + 2 * t] = d[0];
    D[g * 8 + 2 * t + 1] = d[1];
    D[(g + 8) * 8 + 2 * t] = d[2];
    D[(g + 8) * 8 + 2 * t + 1] = d[3];
}

// A 16 x 16 bf16 tile in shared memory, read as an A fragment with ldmatrix (or, transposed, as
// the fragment of its transpose); each lane writes its four registers to out[lane * 4 + i].
template <bool kTrans>
__global__ void ldmatrix_kernel(const Bf16* tile, uint32_t* out) {
    __shared__ __align__(16) Bf16 s[16][16];
    const int lane = threadIdx.x;
    for (int i = lane; i < 256; i += 32)
        s[i / 16][i % 16] = tile[i];
    __syncwarp();
    const int r8 = lane % 8, m = lane / 8;
    uint32_t r[4];
    if (kTrans)
        mma::ldmatrix_x4_trans(r, &s[r8 + (m / 2) * 8][(m % 2) * 8]);
    else
        mma::ldmatrix_x4(r, &s[r8 + (m % 2) * 8][(m / 2) * 8]);
    for (int i = 0; i < 4; ++i)
        out[lane * 4 + i] = r[i];
}

// out[0..3]: shared memory read before the wait; out[4..7] after it; out[8..11] a zero-filled copy.
__global__ void cp_async_kernel(const float* src, float* out) {
    __shared__ __align__(16) float s[8];
    for (int i = 0; i < 8; ++i)
        s[i] = -1.f;
    mma::cp_async_16(s, src, true);
    mma::cp_async_16(s + 4, src, false);
    mma::cp_async_commit();
    for (int i = 0; i < 4; ++i)
        out[i] = s[i];
    mma::cp_async_wait<0>();
    for (int i = 0; i < 4; ++i)
        out[4 + i] = s[i];
    for (int i = 0; i < 4; ++i)
        out[8 + i] = s[4 + i];
}

template <class T>
DeviceBuffer upload(const std::vector<T>& v) {
    DeviceBuffer b(v.size() * sizeof(T));
    REQUIRE(cudaMemcpy(b.data(), v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice) ==
            cudaSuccess);
    return b;
}

template <class T>
std::vector<T> download(const DeviceBuffer& b, size_t n) {
    std::vector<T> v(n);
    REQUIRE(cudaMemcpy(v.data(), b.data(), n * sizeof(T), cudaMemcpyDeviceToHost) == cudaSuccess);
    return v;
}

}  // namespace

TEST_CASE("mma.sync m16n8k16 on fragments laid out as the PTX ISA says is the matrix product") {
    // Small integers: every product and sum is exact, so the result must be too.
    std::vector<float> A(256), B(128), C(128);
    for (int i = 0; i < 256; ++i)
        A[size_t(i)] = float((i * 7) % 11 - 5);
    for (int i = 0; i < 128; ++i)
        B[size_t(i)] = float((i * 5) % 9 - 4);
    for (int i = 0; i < 128; ++i)
        C[size_t(i)] = float(i % 13);
    DeviceBuffer dA = upload(A), dB = upload(B), dC = upload(C), dD(128 * sizeof(float));
    launch<mma_kernel>(dim3(1), dim3(32), 0, nullptr, dA.as<float>(), dB.as<float>(),
                       dC.as<float>(), dD.as<float>());
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
    const std::vector<float> D = download<float>(dD, 128);
    for (int i = 0; i < 16; ++i)
        for (int j = 0; j < 8; ++j) {
            float ref = C[size_t(i * 8 + j)];
            for (int k = 0; k < 16; ++k)
                ref += A[size_t(i * 16 + k)] * B[size_t(k * 8 + j)];
            CHECK(D[size_t(i * 8 + j)] == ref);
        }
}

TEST_CASE("ldmatrix x4 and x4.trans give each lane the fragment elements the ISA names") {
    std::vector<Bf16> tile(256);
    for (int i = 0; i < 256; ++i)
        tile[size_t(i)] = to_bf16(float(i));
    DeviceBuffer d_tile = upload(tile), out(128 * sizeof(uint32_t));
    auto element = [&](int row, int col) { return float(row * 16 + col); };
    for (bool trans : {false, true}) {
        CAPTURE(trans);
        if (trans)
            launch<ldmatrix_kernel<true>>(dim3(1), dim3(32), 0, nullptr, d_tile.as<Bf16>(),
                                          out.as<uint32_t>());
        else
            launch<ldmatrix_kernel<false>>(dim3(1), dim3(32), 0, nullptr, d_tile.as<Bf16>(),
                                           out.as<uint32_t>());
        REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
        const std::vector<uint32_t> r = download<uint32_t>(out, 128);
        for (int lane = 0; lane < 32; ++lane) {
            const int g = lane / 4, t = lane % 4;
            // The A fragment of the tile (or of its transpose: element (i, k) = tile[k][i]).
            auto at = [&](int i, int k) { return trans ? element(k, i) : element(i, k); };
            const float want[4][2] = {{at(g, 2 * t), at(g, 2 * t + 1)},
                                      {at(g + 8, 2 * t), at(g + 8, 2 * t + 1)},
                                      {at(g, 2 * t + 8), at(g, 2 * t + 9)},
                                      {at(g + 8, 2 * t + 8), at(g + 8, 2 * t + 9)}};
            for (int i = 0; i < 4; ++i) {
                const uint32_t w = r[size_t(lane * 4 + i)];
                CHECK(to_float(Bf16{uint16_t(w & 0xffffu)}) == want[i][0]);
                CHECK(to_float(Bf16{uint16_t(w >> 16)}) == want[i][1]);
            }
        }
    }
}

TEST_CASE("cp.async completes at its wait, not before; an invalid source zero-fills") {
    DeviceBuffer src = upload(std::vector<float>{1.f, 2.f, 3.f, 4.f}), out(12 * sizeof(float));
    launch<cp_async_kernel>(dim3(1), dim3(1), 0, nullptr, src.as<float>(), out.as<float>());
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
    const std::vector<float> r = download<float>(out, 12);
    for (int i = 0; i < 4; ++i) {
        CHECK(r[size_t(i)] == -1.f);
        CHECK(r[size_t(4 + i)] == float(i + 1));
        CHECK(r[size_t(8 + i)] == 0.f);
    }
}

TEST_CASE("bf16 rounds to nearest even and keeps NaN a NaN") {
    CHECK(to_bf16(1.0f).bits == 0x3f80);
    CHECK(to_float(to_bf16(1.0f + std::ldexp(1.0f, -8))) == 1.0f);  // a tie: to even (down)
    CHECK(to_float(to_bf16(1.0f + 3 * std::ldexp(1.0f, -8))) ==
          1.0f + std::ldexp(1.0f, -6));  // a tie: to even (up)
    CHECK(to_float(to_bf16(1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -16))) ==
          1.0f + std::ldexp(1.0f, -7));  // above the tie: up
    CHECK(std::isnan(to_float(to_bf16(std::nanf("")))));
    CHECK(to_float(to_bf16(-2.5f)) == -2.5f);
}
