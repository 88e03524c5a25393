// The tensor-core and asynchronous-copy instructions gnet's bf16 kernels use, one small wrapper
// each (include only from .cu files). Under nvcc they are the inline PTX (sm_80 and later: the
// same instructions run on Ampere and Hopper); on the emulated device (emu/) they are warp
// collectives and deferred copies with the semantics the PTX ISA gives them, so the kernels built
// on them run in CI against their CPU twins.
//
// Fragment layouts of mma_bf16_16816 (g = lane / 4, t = lane % 4; two bf16 per register, the lower
// index in the low half):  A (16 x 16, row-major)  a[0] = A[g][2t..]  a[1] = A[g+8][2t..]
//                                                  a[2] = A[g][2t+8..]  a[3] = A[g+8][2t+8..]
//                          B (16 x 8, "col")       b[0] = B[2t..][g]   b[1] = B[2t+8..][g]
//                          D (16 x 8, float)       d[0..1] = D[g][2t..]  d[2..3] = D[g+8][2t..]
// ldmatrix_x4 loads four 8x8 bf16 matrices from shared memory, lane l naming row l % 8 of matrix
// l / 8; register i of lane l holds row l / 4, elements 2t and 2t+1 of matrix i (with _trans: of
// the transposed matrix). That is exactly an A fragment (matrices: rows 0-7 / 8-15 x k 0-7, then
// k 8-15) or two B fragments when the tile is stored with k contiguous, and, transposed, the same
// when the tile is stored with m (or n) contiguous.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#if defined(GNET_EMU_DEVICE)
#include "gnet_emu/tensor_core.h"
#endif

namespace gnet::mma {

// d += a * b over one m16n8k16 tile, bf16 operands, float accumulators.
__device__ __forceinline__ void mma_bf16_16816(float d[4], const uint32_t a[4],
                                               const uint32_t b[2]) {
#if defined(GNET_EMU_DEVICE)
    ::gnet::emu::mma_bf16_m16n8k16(d, a, b);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
    (void)d, (void)a, (void)b;
    __trap();  // bf16 tensor cores need sm_80; the host dispatcher never launches these below it
#endif
}

#if !defined(GNET_EMU_DEVICE)
__device__ __forceinline__ unsigned shared_address(const void* p) {
    return static_cast<unsigned>(__cvta_generic_to_shared(p));
}
#endif

// Four 8x8 bf16 matrices from shared memory (see above); `row` is this lane's row, 16-byte aligned.
__device__ __forceinline__ void ldmatrix_x4(uint32_t r[4], const void* row) {
#if defined(GNET_EMU_DEVICE)
    ::gnet::emu::ldmatrix_x4(r, row, false);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(shared_address(row)));
#else
    (void)r, (void)row;
    __trap();
#endif
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t r[4], const void* row) {
#if defined(GNET_EMU_DEVICE)
    ::gnet::emu::ldmatrix_x4(r, row, true);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(shared_address(row)));
#else
    (void)r, (void)row;
    __trap();
#endif
}

// 16 bytes global -> shared without passing through registers; with `valid` false the 16 bytes
// are zero-filled and `src` is not read (the padding and tails of implicit-GEMM tiles).
__device__ __forceinline__ void cp_async_16(void* smem, const void* src, bool valid) {
#if defined(GNET_EMU_DEVICE)
    ::gnet::emu::cp_async(smem, src, 16, valid ? 16 : 0);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(shared_address(smem)),
                 "l"(src), "r"(valid ? 16 : 0));
#else
    (void)smem, (void)src, (void)valid;
    __trap();
#endif
}

// Closes this thread's current group of cp.async copies.
__device__ __forceinline__ void cp_async_commit() {
#if defined(GNET_EMU_DEVICE)
    ::gnet::emu::cp_async_commit();
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.commit_group;\n" ::);
#endif
}

// Waits until at most `Pending` of this thread's committed groups are still in flight. Other
// threads' copies need a __syncthreads() after this before they are read.
template <int Pending>
__device__ __forceinline__ void cp_async_wait() {
#if defined(GNET_EMU_DEVICE)
    ::gnet::emu::cp_async_wait(Pending);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.wait_group %0;\n" ::"n"(Pending));
#endif
}

}  // namespace gnet::mma
