#include <algorithm>
#include <vector>

#include "bench/harness_gpu.h"
#include "kernels/cuda_check.h"
#include "nn/buffer.h"

namespace gnet::bench {

Timing time_gpu(const std::function<void(cudaStream_t)>& fn, cudaStream_t stream, int warmup,
                int repeats, bool flush_l2) {
    int dev = 0, l2_bytes = 0;
    GNET_CUDA_CHECK(cudaGetDevice(&dev));
    GNET_CUDA_CHECK(cudaDeviceGetAttribute(&l2_bytes, cudaDevAttrL2CacheSize, dev));
    // Twice the L2 size, so the memset evicts everything the benchmarked op could reuse.
    DeviceBuffer flush(flush_l2 ? size_t(l2_bytes) * 2 : 0);
    cudaEvent_t start, stop;
    GNET_CUDA_CHECK(cudaEventCreate(&start));
    GNET_CUDA_CHECK(cudaEventCreate(&stop));
    for (int i = 0; i < warmup; ++i)
        fn(stream);
    GNET_CUDA_CHECK(cudaStreamSynchronize(stream));
    std::vector<double> ms;
    for (int i = 0; i < repeats; ++i) {
        if (flush_l2)
            GNET_CUDA_CHECK(cudaMemsetAsync(flush.data(), i & 0xff, flush.bytes(), stream));
        GNET_CUDA_CHECK(cudaEventRecord(start, stream));
        fn(stream);
        GNET_CUDA_CHECK(cudaEventRecord(stop, stream));
        GNET_CUDA_CHECK(cudaEventSynchronize(stop));
        float t = 0;
        GNET_CUDA_CHECK(cudaEventElapsedTime(&t, start, stop));
        ms.push_back(t);
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    double mn = ms.empty() ? 0 : *std::min_element(ms.begin(), ms.end());
    return {median(ms), mn};
}

}  // namespace gnet::bench
