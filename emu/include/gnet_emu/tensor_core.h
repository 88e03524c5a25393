// Tensor-core instructions of the emulated device: warp collectives with the operand fragments
// laid out exactly as the PTX ISA defines them, so a kernel that puts an element in the wrong
// register or lane computes a wrong product here as on the device. Called by the wrappers in
// kernels/mma.cuh; every lane of the warp must take part (the .aligned forms).
#pragma once

#include <cstdint>

namespace gnet::emu {

// mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32, d = a * b + d, with g = lane / 4 and
// t = lane % 4 (each 32-bit register two bf16, the lower index in the low half):
//   a[0] = A[g][2t..2t+1]    a[1] = A[g+8][2t..2t+1]    a[2] = A[g][2t+8..]    a[3] =
//   A[g+8][2t+8..] b[0] = B[2t..2t+1][g]    b[1] = B[2t+8..2t+9][g] d[0], d[1] = D[g][2t..2t+1]
//   d[2], d[3] = D[g+8][2t..2t+1]
// Products are exact (bf16 x bf16 fits a float); the sum runs in float, k in order.
void mma_bf16_m16n8k16(float d[4], const uint32_t a[4], const uint32_t b[2]);

// ldmatrix.sync.aligned.m8n8.x4[.trans].shared.b16: four 8x8 matrices of 16-bit elements, lane l
// giving the address of row l % 8 of matrix l / 8 (16 bytes, 16-byte aligned). Lane l receives in
// r[i] row l / 4, elements 2 (l % 4) and 2 (l % 4) + 1 of matrix i; with `trans` the same
// positions of the transposed matrix (column l / 4, rows 2 (l % 4) and 2 (l % 4) + 1).
void ldmatrix_x4(uint32_t r[4], const void* row, bool trans);

}  // namespace gnet::emu
