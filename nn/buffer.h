// Move-only owners of GPU memory and of pinned (page-locked) host memory.
//
// In a CPU-only build both exist but their constructors throw: code that never asks for GPU
// memory compiles and runs unchanged. A failed cudaMalloc becomes an Error that says how much was
// asked for and how much is free, so "GPU out of memory" reaches the user as advice, not a crash.
#pragma once

#include <cstddef>

namespace gnet {

class DeviceBuffer {
  public:
    DeviceBuffer() = default;
    explicit DeviceBuffer(size_t bytes);
    ~DeviceBuffer();
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    DeviceBuffer(DeviceBuffer&& other) noexcept;
    DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;

    void* data() const { return ptr_; }
    template <class T>
    T* as() const {
        return static_cast<T*>(ptr_);
    }
    size_t bytes() const { return bytes_; }
    bool empty() const { return ptr_ == nullptr; }

  private:
    void release() noexcept;
    void* ptr_ = nullptr;
    size_t bytes_ = 0;
};

class PinnedBuffer {
  public:
    PinnedBuffer() = default;
    explicit PinnedBuffer(size_t bytes);
    ~PinnedBuffer();
    PinnedBuffer(const PinnedBuffer&) = delete;
    PinnedBuffer& operator=(const PinnedBuffer&) = delete;
    PinnedBuffer(PinnedBuffer&& other) noexcept;
    PinnedBuffer& operator=(PinnedBuffer&& other) noexcept;

    void* data() const { return ptr_; }
    template <class T>
    T* as() const {
        return static_cast<T*>(ptr_);
    }
    size_t bytes() const { return bytes_; }
    bool empty() const { return ptr_ == nullptr; }

  private:
    void release() noexcept;
    void* ptr_ = nullptr;
    size_t bytes_ = 0;
};

}  // namespace gnet
