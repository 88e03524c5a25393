#include "audio/chunk.h"

#include <algorithm>
#include <string>

#include "kernels/error.h"

namespace gnet {

int64_t chunk_count(int64_t n_samples, int64_t chunk_samples, Remainder remainder) {
    GNET_CHECK(chunk_samples > 0,
               "chunk length must be positive, got " + std::to_string(chunk_samples));
    GNET_CHECK(n_samples >= 0, "sample count must not be negative");
    const int64_t whole = n_samples / chunk_samples;
    const bool has_rest = n_samples % chunk_samples != 0;
    switch (remainder) {
        case Remainder::Drop:
            return whole;
        case Remainder::Pad:
            return whole + (has_rest ? 1 : 0);
        case Remainder::PadIfShort:
            return (whole == 0 && has_rest) ? 1 : whole;
    }
    return whole;
}

std::vector<float> make_chunks(const std::vector<float>& mono, int64_t chunk_samples,
                               Remainder remainder) {
    const int64_t n = chunk_count(int64_t(mono.size()), chunk_samples, remainder);
    std::vector<float> out(size_t(n * chunk_samples), 0.f);
    const size_t copied = std::min(out.size(), mono.size());
    std::copy(mono.begin(), mono.begin() + copied, out.begin());
    return out;
}

}  // namespace gnet
