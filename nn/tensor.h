// Tensor: a float32, contiguous, row-major (NCHW for images) array on the CPU or a GPU.
//
// A Tensor either owns its storage (host vector or DeviceBuffer) or is a view into memory owned
// elsewhere (an Arena). Tensors are move-only: copying data is always explicit (clone, to,
// copy_from), so no hidden host<->device traffic sneaks into a training step.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <string>
#include <vector>

#include "nn/buffer.h"
#include "nn/device.h"

namespace gnet {

using Shape = std::vector<int64_t>;

// Host storage aligned like cudaMalloc's (256 bytes): vector loads and arena slots stay aligned.
template <class T>
struct AlignedAllocator {
    using value_type = T;
    static constexpr std::size_t kAlign = 256;
    AlignedAllocator() = default;
    template <class U>
    AlignedAllocator(const AlignedAllocator<U>&) {}
    T* allocate(std::size_t n) {
        return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(kAlign)));
    }
    void deallocate(T* p, std::size_t) { ::operator delete(p, std::align_val_t(kAlign)); }
    template <class U>
    bool operator==(const AlignedAllocator<U>&) const {
        return true;
    }
    template <class U>
    bool operator!=(const AlignedAllocator<U>&) const {
        return false;
    }
};
using HostVector = std::vector<float, AlignedAllocator<float>>;

int64_t shape_numel(const Shape& shape);
std::string shape_string(const Shape& shape);  // "[2, 1, 128, 431]"

class Tensor {
  public:
    Tensor() = default;
    static Tensor empty(Shape shape, Device device);  // contents undefined
    static Tensor zeros(Shape shape, Device device);
    static Tensor from_host(Shape shape, const float* src, Device device);
    static Tensor from_vector(Shape shape, const std::vector<float>& src, Device device);
    // A non-owning view of `data` (which must outlive the view).
    static Tensor view(float* data, Shape shape, Device device);

    Tensor(const Tensor&) = delete;
    Tensor& operator=(const Tensor&) = delete;
    Tensor(Tensor&&) noexcept = default;
    Tensor& operator=(Tensor&&) noexcept = default;

    Tensor clone() const;                // same device, owning
    Tensor to(Device device) const;      // owning copy on `device`
    std::vector<float> to_host() const;  // synchronous
    // Copies src's values into this tensor (same element count; any devices). With a null stream
    // the copy is complete on return; with a stream it is ordered on that stream.
    void copy_from(const Tensor& src, Stream stream = nullptr);
    void copy_from_host(const float* src, Stream stream = nullptr);
    void fill_zero(Stream stream = nullptr);
    // A view of the same data with another shape of the same element count.
    Tensor reshaped(Shape shape) const;

    const Shape& shape() const { return shape_; }
    int rank() const { return int(shape_.size()); }
    int64_t dim(int i) const;  // negative counts from the end
    int64_t numel() const { return shape_numel(shape_); }
    size_t bytes() const { return size_t(numel()) * sizeof(float); }
    float* data() const { return data_; }
    Device device() const { return device_; }
    bool defined() const { return data_ != nullptr || (!shape_.empty() && numel() == 0); }
    bool is_view() const { return data_ != nullptr && host_.empty() && gpu_.empty(); }

  private:
    Shape shape_;
    Device device_ = Device::CPU;
    float* data_ = nullptr;
    HostVector host_;
    DeviceBuffer gpu_;
};

// Copies `count` floats between any two places (host or device). Synchronous when stream is null.
void copy_floats(float* dst, Device dst_device, const float* src, Device src_device, int64_t count,
                 Stream stream = nullptr);

}  // namespace gnet
