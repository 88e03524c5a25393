// bf16: the bfloat16 storage type of the mixed-precision path (tensor-core operands and
// activations) and its conversions, the same on the host, the GPU and the emulated device.
//
// bfloat16 is the upper half of an IEEE float32: 1 sign, 8 exponent, 7 stored mantissa bits, so
// it has float32's range and a relative precision of 2^-8 (half an ulp) after rounding. Rounding
// from float32 is to nearest, ties to even, as the GPU's cvt.rn.bf16.f32 does; NaN stays a
// (quiet) NaN. Plain bit operations rather than cuda_bf16.h, so the CPU twins and the emulated
// device round exactly like the device.
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/common.h"

namespace gnet {

struct Bf16 {
    uint16_t bits;
};
static_assert(sizeof(Bf16) == 2, "bf16 is two bytes");

GNET_HD uint32_t float_bits(float f) {
#if defined(__CUDA_ARCH__)
    return __float_as_uint(f);
#else
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
#endif
}

GNET_HD float bits_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
    return __uint_as_float(u);
#else
    float f;
    std::memcpy(&f, &u, 4);
    return f;
#endif
}

// float32 -> bf16, round to nearest even; NaN -> quiet NaN of the same sign.
GNET_HD Bf16 to_bf16(float f) {
    const uint32_t u = float_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return Bf16{uint16_t((u >> 16) | 0x0040u)};
    const uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);
    return Bf16{uint16_t((u + rounding) >> 16)};
}

GNET_HD float to_float(Bf16 b) {
    return bits_float(uint32_t(b.bits) << 16);
}

// What rounding a float32 to bf16 and back gives: the value a bf16 operand carries.
GNET_HD float round_bf16(float f) {
    return to_float(to_bf16(f));
}

// Two bf16 in one 32-bit word, `lo` in the low half (the element with the lower index), as the
// tensor-core fragments and paired stores hold them.
GNET_HD uint32_t pack_bf16x2(float lo, float hi) {
    return uint32_t(to_bf16(lo).bits) | (uint32_t(to_bf16(hi).bits) << 16);
}

}  // namespace gnet
