#include "audio/resample.h"

#include <soxr.h>

#include <cmath>
#include <string>

#include "kernels/error.h"

namespace gnet {

std::vector<float> resample(const std::vector<float>& x, int in_rate, int out_rate) {
    GNET_CHECK(in_rate > 0 && out_rate > 0, "sample rates must be positive, got " +
                                                std::to_string(in_rate) + " -> " +
                                                std::to_string(out_rate));
    if (in_rate == out_rate || x.empty()) return x;
    const double ratio = double(out_rate) / double(in_rate);
    const size_t out_len = size_t(std::llround(double(x.size()) * ratio));
    std::vector<float> y(out_len);
    const soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    const soxr_quality_spec_t quality = soxr_quality_spec(SOXR_HQ, 0);
    size_t done = 0;
    soxr_error_t err = soxr_oneshot(double(in_rate), double(out_rate), 1, x.data(), x.size(),
                                    nullptr, y.data(), y.size(), &done, &io, &quality, nullptr);
    if (err)
        throw Error("libsoxr error resampling " + std::to_string(in_rate) + " Hz -> " +
                    std::to_string(out_rate) + " Hz: " + err);
    y.resize(done);  // soxr delivers the whole flushed output; never more than asked for
    return y;
}

}  // namespace gnet
