// Elementwise add, fast CPU backend (see add.h): contiguous ranges on the worker pool.
#include "kernels/add.h"
#include "kernels/cpu_parallel.h"

namespace gnet::cpu_fast {

void add_forward(int64_t n, const float* a, const float* b, float* y) {
    parallel_for(n, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i)
            y[i] = a[i] + b[i];
    });
}

}  // namespace gnet::cpu_fast
