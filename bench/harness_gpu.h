// GPU timing for bench/ programs (CUDA builds only).
#pragma once

#include <cuda_runtime.h>

#include <functional>

#include "bench/harness.h"

namespace gnet::bench {

// Times fn(stream) with cudaEvents: `warmup` untimed calls, then `repeats` timed ones, each
// preceded (outside the timed region) by an L2 flush: a memset of a buffer larger than L2.
Timing time_gpu(const std::function<void(cudaStream_t)>& fn, cudaStream_t stream, int warmup,
                int repeats, bool flush_l2 = true);

}  // namespace gnet::bench
