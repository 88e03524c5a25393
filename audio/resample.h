// Sample-rate conversion of mono float audio with libsoxr at high quality (SOXR_HQ: 20-bit
// precision, linear phase). Same rate in and out returns the input unchanged (no filtering).
// The output holds round(n * out_rate / in_rate) samples.
#pragma once

#include <vector>

namespace gnet {

std::vector<float> resample(const std::vector<float>& x, int in_rate, int out_rate);

}  // namespace gnet
