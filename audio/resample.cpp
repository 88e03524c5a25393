#include "audio/resample.h"

#include <soxr.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "kernels/error.h"

namespace gnet {

Resampler::Resampler(int in_rate, int out_rate) : in_rate_(in_rate), out_rate_(out_rate) {
    GNET_CHECK(in_rate > 0 && out_rate > 0, "sample rates must be positive, got " +
                                                std::to_string(in_rate) + " -> " +
                                                std::to_string(out_rate));
    if (in_rate == out_rate) return;
    const soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    const soxr_quality_spec_t quality = soxr_quality_spec(SOXR_HQ, 0);
    soxr_error_t err = nullptr;
    soxr_ = soxr_create(double(in_rate), double(out_rate), 1, &err, &io, &quality, nullptr);
    if (err || !soxr_)
        throw Error("libsoxr error creating a " + std::to_string(in_rate) + " Hz -> " +
                    std::to_string(out_rate) + " Hz resampler: " + (err ? err : "unknown"));
}

Resampler::~Resampler() {
    if (soxr_) soxr_delete(soxr_);
}

void Resampler::run(const float* x, size_t n, std::vector<float>& out) {
    // Room for what n more inputs can produce plus the filter's backlog.
    const double ratio = double(out_rate_) / double(in_rate_);
    for (;;) {
        const size_t room = size_t(double(n) * ratio) + 4096;
        const size_t base = out.size();
        out.resize(base + room);
        size_t in_done = 0, out_done = 0;
        soxr_error_t err =
            soxr_process(soxr_, x, x ? n : 0, &in_done, out.data() + base, room, &out_done);
        out.resize(base + out_done);
        out_total_ += int64_t(out_done);
        if (err)
            throw Error("libsoxr error resampling " + std::to_string(in_rate_) + " Hz -> " +
                        std::to_string(out_rate_) + " Hz: " + err);
        if (x) {
            x += in_done;
            n -= in_done;
            if (n == 0) return;
        } else if (out_done < room) {
            return;  // flushed
        }
    }
}

void Resampler::process(const float* x, size_t n, std::vector<float>& out) {
    in_total_ += int64_t(n);
    if (n == 0) return;
    if (!soxr_) {
        out.insert(out.end(), x, x + n);
        out_total_ += int64_t(n);
        return;
    }
    run(x, n, out);
}

void Resampler::finish(std::vector<float>& out) {
    const int64_t want = std::llround(double(in_total_) * out_rate_ / double(in_rate_));
    if (soxr_ && in_total_ > 0) {
        const size_t before = out.size();
        run(nullptr, 0, out);
        (void)before;
    }
    // Never more than the ratio gives (libsoxr may flush a few samples of filter tail).
    if (out_total_ > want) {
        const int64_t extra = std::min<int64_t>(out_total_ - want, int64_t(out.size()));
        out.resize(out.size() - size_t(extra));
        out_total_ -= extra;
    }
}

std::vector<float> resample(const std::vector<float>& x, int in_rate, int out_rate) {
    GNET_CHECK(in_rate > 0 && out_rate > 0, "sample rates must be positive, got " +
                                                std::to_string(in_rate) + " -> " +
                                                std::to_string(out_rate));
    if (in_rate == out_rate || x.empty()) return x;
    std::vector<float> y;
    Resampler r(in_rate, out_rate);
    r.process(x.data(), x.size(), y);
    r.finish(y);
    return y;
}

}  // namespace gnet
