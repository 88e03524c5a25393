// Sample-rate conversion of mono float audio with libsoxr at high quality (SOXR_HQ: 20-bit
// precision, linear phase). Same rate in and out passes the input through unchanged.
//
// resample(): a whole signal at once; the output holds round(n * out_rate / in_rate) samples
// (0 for a signal too short to give one: a 1-sample 48 kHz file, never a libsoxr call with an
// empty buffer).
// Resampler: the same conversion in blocks (streaming decode), with the same output length.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

struct soxr;

namespace gnet {

std::vector<float> resample(const std::vector<float>& x, int in_rate, int out_rate);

class Resampler {
  public:
    Resampler(int in_rate, int out_rate);
    ~Resampler();
    Resampler(const Resampler&) = delete;
    Resampler& operator=(const Resampler&) = delete;

    // Converts n input samples, appending the output available so far to `out`.
    void process(const float* x, size_t n, std::vector<float>& out);
    // End of input: appends the rest, up to round(total_in * ratio) samples in all.
    void finish(std::vector<float>& out);

  private:
    void run(const float* x, size_t n, std::vector<float>& out);
    int in_rate_, out_rate_;
    soxr* soxr_ = nullptr;
    int64_t in_total_ = 0, out_total_ = 0;
};

}  // namespace gnet
