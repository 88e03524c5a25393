// DeviceArray<T>: a device copy of a host vector (or a NaN-filled one) for the GPU tests, and its
// contents back on the host.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "kernels/cuda_check.h"
#include "nn/buffer.h"

namespace gnet::test {

template <class T>
struct DeviceArray {
    DeviceBuffer buf;
    size_t count = 0;
    explicit DeviceArray(const std::vector<T>& v) : buf(v.size() * sizeof(T)), count(v.size()) {
        GNET_CUDA_CHECK(
            cudaMemcpy(buf.data(), v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
    }
    // Filled with 0xff bytes (NaN as bf16 and float): an element a kernel forgets to write fails.
    explicit DeviceArray(int64_t n) : buf(size_t(n) * sizeof(T)), count(size_t(n)) {
        GNET_CUDA_CHECK(cudaMemset(buf.data(), 0xff, count * sizeof(T)));
    }
    T* ptr() const { return buf.as<T>(); }
    std::vector<T> host() const {
        std::vector<T> v(count);
        GNET_CUDA_CHECK(
            cudaMemcpy(v.data(), buf.data(), count * sizeof(T), cudaMemcpyDeviceToHost));
        return v;
    }
};

}  // namespace gnet::test
