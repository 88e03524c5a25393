#include "train/weight_average.h"

#include <algorithm>
#include <cmath>

#include "kernels/error.h"

namespace gnet {

WeightAverage::WeightAverage(float decay) : decay_(decay) {
    GNET_CHECK(decay > 0 && decay < 1 && std::isfinite(decay),
               "EMA decay must be in (0, 1), got " + std::to_string(decay));
}

float WeightAverage::decay_at(int64_t t) const {
    return std::min(decay_, float(double(1 + t) / double(10 + t)));
}

void WeightAverage::update(const StFile& current) {
    if (updates_ == 0) {
        avg_ = current;
        avg_.metadata.clear();
        updates_ = 1;
        return;
    }
    GNET_CHECK(current.tensors.size() == avg_.tensors.size(),
               "EMA: the model's state_dict changed its tensors");
    const float d = decay_at(updates_), e = 1.f - d;
    for (size_t i = 0; i < avg_.tensors.size(); ++i) {
        StTensor& a = avg_.tensors[i];
        const StTensor& c = current.tensors[i];
        GNET_CHECK(a.name == c.name && a.dtype == c.dtype && a.f32.size() == c.f32.size() &&
                       a.i64.size() == c.i64.size(),
                   "EMA: tensor '" + c.name + "' does not match the average's");
        if (a.dtype == StDtype::I64) {
            a.i64 = c.i64;
            continue;
        }
        float* av = a.f32.data();
        const float* cv = c.f32.data();
        const size_t n = a.f32.size();
        for (size_t k = 0; k < n; ++k)
            av[k] = d * av[k] + e * cv[k];
    }
    ++updates_;
}

void WeightAverage::restore(StFile state, int64_t updates) {
    GNET_CHECK(updates >= 0, "EMA: negative update count");
    avg_ = std::move(state);
    avg_.metadata.clear();
    updates_ = updates;
}

}  // namespace gnet
