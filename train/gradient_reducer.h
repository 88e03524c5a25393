// Bucketed gradient all-reduce overlapped with the backward pass, the way PyTorch DDP does it.
//
// The model's gradients are one array (Network::gradient_data(), named_parameters order) that
// backward completes from the end: fc first, the stem last. The array is cut, from its end, into
// buckets of `bucket_bytes` (the last one, at the array's start, smaller). The reducer is the
// model's gradient hook: when the model says the suffix [first, count) is final, every bucket
// that lies entirely inside it and has not been started is handed to the communicator
// (start_allreduce_average) at once, and started reductions are progressed; the backward of the
// earlier layers then runs while those buckets travel. At the end of backward (first = 0) the
// reducer waits for (CPU) or orders the model's stream after (GPU) every reduction, so Adam sees
// the gradients averaged over the ranks. The same code drives MPI (CPU ranks) and NCCL (GPU ranks).
#pragma once

#include <cstdint>
#include <vector>

#include "nn/network.h"
#include "train/communicator.h"

namespace gnet {

struct GradientBucket {
    int64_t begin = 0, end = 0;  // float offsets into the gradient array
};

// Buckets of at most bucket_floats (> 0) covering [0, count), the one at the end first.
std::vector<GradientBucket> plan_gradient_buckets(int64_t count, int64_t bucket_floats);

constexpr int64_t kDefaultBucketBytes = int64_t(8) << 20;

class GradientReducer {
  public:
    // Installs itself as `model`'s gradient hook; the destructor removes it.
    GradientReducer(Communicator& comm, Network& model, int64_t bucket_bytes = kDefaultBucketBytes);
    ~GradientReducer();
    GradientReducer(const GradientReducer&) = delete;
    GradientReducer& operator=(const GradientReducer&) = delete;

    const std::vector<GradientBucket>& buckets() const { return buckets_; }
    // For tests: how many buckets had been started when each hook call returned, last step.
    const std::vector<int>& started_per_call() const { return started_per_call_; }

    // The hook (see above).
    void on_gradients_ready(int64_t first);

  private:
    Communicator& comm_;
    Network& model_;
    std::vector<GradientBucket> buckets_;
    size_t next_ = 0;  // buckets started this step
    std::vector<int> started_per_call_, calls_;
};

}  // namespace gnet
