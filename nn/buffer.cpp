#include "nn/buffer.h"

#include <string>
#include <utility>

#include "kernels/error.h"

#if GNET_HAVE_CUDA
#include "kernels/cuda_check.h"
#endif

namespace gnet {

namespace {

[[maybe_unused]] std::string mib(size_t bytes) {
    return std::to_string((bytes + (1 << 20) - 1) >> 20) + " MiB";
}

[[maybe_unused]] void throw_no_cuda(const char* what) {
    throw Error(std::string(what) + ": gnet was built without CUDA (rebuild with -DGNET_CUDA=ON)");
}

}  // namespace

DeviceBuffer::DeviceBuffer(size_t bytes) : bytes_(bytes) {
    if (bytes == 0) return;
#if GNET_HAVE_CUDA
    cudaError_t rc = cudaMalloc(&ptr_, bytes);
    if (rc == cudaErrorMemoryAllocation) {
        cudaGetLastError();
        size_t free_b = 0, total_b = 0;
        cudaMemGetInfo(&free_b, &total_b);
        ptr_ = nullptr;
        throw Error("GPU out of memory: could not allocate " + mib(bytes) + " (" + mib(free_b) +
                    " free of " + mib(total_b) + "); try a smaller --batch");
    }
    GNET_CUDA_CHECK(rc);
#else
    throw_no_cuda("DeviceBuffer");
#endif
}

void DeviceBuffer::release() noexcept {
#if GNET_HAVE_CUDA
    if (ptr_) cudaFree(ptr_);
#endif
    ptr_ = nullptr;
    bytes_ = 0;
}

DeviceBuffer::~DeviceBuffer() {
    release();
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& other) noexcept
    : ptr_(std::exchange(other.ptr_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
    if (this != &other) {
        release();
        ptr_ = std::exchange(other.ptr_, nullptr);
        bytes_ = std::exchange(other.bytes_, 0);
    }
    return *this;
}

PinnedBuffer::PinnedBuffer(size_t bytes) : bytes_(bytes) {
    if (bytes == 0) return;
#if GNET_HAVE_CUDA
    cudaError_t rc = cudaMallocHost(&ptr_, bytes);
    if (rc != cudaSuccess) {
        cudaGetLastError();
        ptr_ = nullptr;
        throw Error("could not allocate " + mib(bytes) +
                    " of pinned host memory: " + cudaGetErrorString(rc));
    }
#else
    throw_no_cuda("PinnedBuffer");
#endif
}

void PinnedBuffer::release() noexcept {
#if GNET_HAVE_CUDA
    if (ptr_) cudaFreeHost(ptr_);
#endif
    ptr_ = nullptr;
    bytes_ = 0;
}

PinnedBuffer::~PinnedBuffer() {
    release();
}

PinnedBuffer::PinnedBuffer(PinnedBuffer&& other) noexcept
    : ptr_(std::exchange(other.ptr_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}

PinnedBuffer& PinnedBuffer::operator=(PinnedBuffer&& other) noexcept {
    if (this != &other) {
        release();
        ptr_ = std::exchange(other.ptr_, nullptr);
        bytes_ = std::exchange(other.bytes_, 0);
    }
    return *this;
}

}  // namespace gnet
