// The emulated tensor-core instructions (see include/gnet_emu/tensor_core.h).
#include "gnet_emu/tensor_core.h"

#include <cstring>
#include <string>

#include "cuda_runtime.h"

namespace gnet::emu {
namespace {

float bf16_lo(uint32_t w) {
    const uint32_t u = w << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
float bf16_hi(uint32_t w) {
    const uint32_t u = w & 0xffff0000u;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

struct MmaLane {
    const uint32_t* a;
    const uint32_t* b;
    float* d;
};

void complete_mma(WarpIo* const lanes[32], unsigned, const void*) {
    float A[16][16], B[16][8], D[16][8];
    for (int l = 0; l < 32; ++l) {
        const MmaLane& m = *reinterpret_cast<const MmaLane*>(lanes[l]->value);
        const int g = l / 4, t = l % 4;
        for (int half = 0; half < 2; ++half) {  // k 0..7 (half 0) or 8..15 (half 1)
            const int k = 2 * t + 8 * half;
            A[g][k] = bf16_lo(m.a[2 * half]);
            A[g][k + 1] = bf16_hi(m.a[2 * half]);
            A[g + 8][k] = bf16_lo(m.a[2 * half + 1]);
            A[g + 8][k + 1] = bf16_hi(m.a[2 * half + 1]);
            B[k][g] = bf16_lo(m.b[half]);
            B[k + 1][g] = bf16_hi(m.b[half]);
        }
        D[g][2 * t] = m.d[0];
        D[g][2 * t + 1] = m.d[1];
        D[g + 8][2 * t] = m.d[2];
        D[g + 8][2 * t + 1] = m.d[3];
    }
    for (int i = 0; i < 16; ++i)
        for (int j = 0; j < 8; ++j) {
            float s = D[i][j];
            for (int k = 0; k < 16; ++k)
                s += A[i][k] * B[k][j];
            D[i][j] = s;
        }
    for (int l = 0; l < 32; ++l) {
        const MmaLane& m = *reinterpret_cast<const MmaLane*>(lanes[l]->value);
        const int g = l / 4, t = l % 4;
        m.d[0] = D[g][2 * t];
        m.d[1] = D[g][2 * t + 1];
        m.d[2] = D[g + 8][2 * t];
        m.d[3] = D[g + 8][2 * t + 1];
    }
}

struct LdmatrixLane {
    const void* row;
    uint32_t* r;
};

void complete_ldmatrix(WarpIo* const lanes[32], unsigned, const void* op) {
    const bool trans = op != nullptr;
    uint16_t M[4][8][8];
    for (int l = 0; l < 32; ++l) {
        const LdmatrixLane& m = *reinterpret_cast<const LdmatrixLane*>(lanes[l]->value);
        std::memcpy(M[l / 8][l % 8], m.row, 16);
    }
    for (int l = 0; l < 32; ++l) {
        const LdmatrixLane& m = *reinterpret_cast<const LdmatrixLane*>(lanes[l]->value);
        const int row = l / 4, col = 2 * (l % 4);
        for (int i = 0; i < 4; ++i) {
            const uint16_t lo = trans ? M[i][col][row] : M[i][row][col];
            const uint16_t hi = trans ? M[i][col + 1][row] : M[i][row][col + 1];
            m.r[i] = uint32_t(lo) | (uint32_t(hi) << 16);
        }
    }
}

}  // namespace

void mma_bf16_m16n8k16(float d[4], const uint32_t a[4], const uint32_t b[2]) {
    MmaLane lane{a, b, d};
    WarpIo io{};
    io.value = reinterpret_cast<uintptr_t>(&lane);
    warp_collective("mma.sync.m16n8k16", 0xffffffffu, &io, &complete_mma);
}

void ldmatrix_x4(uint32_t r[4], const void* row, bool trans) {
    if (reinterpret_cast<uintptr_t>(row) % 16)
        kernel_fault(("ldmatrix: row address " + std::to_string(reinterpret_cast<uintptr_t>(row)) +
                      " is not 16-byte aligned")
                         .c_str());
    LdmatrixLane lane{row, r};
    WarpIo io{};
    io.value = reinterpret_cast<uintptr_t>(&lane);
    // The op data tells the transposing form apart (the two must not meet in one collective).
    static const int kTrans = 1;
    warp_collective(trans ? "ldmatrix.x4.trans" : "ldmatrix.x4", 0xffffffffu, &io,
                    &complete_ldmatrix, trans ? &kTrans : nullptr);
}

}  // namespace gnet::emu
