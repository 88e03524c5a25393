#include "train/gradient_reducer.h"

#include <algorithm>

#include "kernels/error.h"

namespace gnet {

std::vector<GradientBucket> plan_gradient_buckets(int64_t count, int64_t bucket_floats) {
    GNET_CHECK(bucket_floats > 0, "gradient bucket size must be positive");
    std::vector<GradientBucket> out;
    for (int64_t end = count; end > 0;) {
        const int64_t begin = std::max<int64_t>(0, end - bucket_floats);
        out.push_back({begin, end});
        end = begin;
    }
    return out;
}

GradientReducer::GradientReducer(Communicator& comm, Network& model, int64_t bucket_bytes)
    : comm_(comm), model_(model) {
    buckets_ = plan_gradient_buckets(model.gradient_count(),
                                     std::max<int64_t>(1, bucket_bytes / int64_t(sizeof(float))));
    model_.set_gradient_hook([this](int64_t first) { on_gradients_ready(first); });
}

GradientReducer::~GradientReducer() {
    try {
        model_.set_gradient_hook({});
    } catch (...) {
    }
}

void GradientReducer::on_gradients_ready(int64_t first) {
    float* grads = model_.gradient_data();
    while (next_ < buckets_.size() && buckets_[next_].begin >= first) {
        const GradientBucket& b = buckets_[next_++];
        comm_.start_allreduce_average(grads + b.begin, b.end - b.begin, model_.stream());
    }
    calls_.push_back(int(next_));
    comm_.progress();
    if (first == 0) {
        comm_.finish_allreduces(model_.stream());
        started_per_call_ = calls_;
        calls_.clear();
        next_ = 0;
    }
}

}  // namespace gnet
