#include "nn/tensor.h"

#include <algorithm>
#include <cstring>

#include "kernels/error.h"

#if GNET_HAVE_CUDA
#include "kernels/cuda_check.h"
#endif

namespace gnet {

int64_t shape_numel(const Shape& shape) {
    int64_t n = 1;
    for (int64_t d : shape)
        n *= d;
    return n;
}

std::string shape_string(const Shape& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) {
        if (i) s += ", ";
        s += std::to_string(shape[i]);
    }
    return s + "]";
}

namespace {

void check_shape(const Shape& shape) {
    for (int64_t d : shape)
        GNET_CHECK(d >= 0, "negative dimension in tensor shape " + shape_string(shape));
}

}  // namespace

void copy_floats(float* dst, Device dst_device, const float* src, Device src_device, int64_t count,
                 Stream stream) {
    if (count == 0) return;
    size_t bytes = size_t(count) * sizeof(float);
    if (dst_device == Device::CPU && src_device == Device::CPU) {
        std::memmove(dst, src, bytes);
        return;
    }
#if GNET_HAVE_CUDA
    if (stream) {
        GNET_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, stream));
    } else {
        GNET_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDefault));
    }
#else
    (void)stream;
    throw Error("GPU copy requested but gnet was built without CUDA");
#endif
}

Tensor Tensor::empty(Shape shape, Device device) {
    check_shape(shape);
    Tensor t;
    t.shape_ = std::move(shape);
    t.device_ = device;
    size_t n = size_t(t.numel());
    if (device == Device::CPU) {
        t.host_.resize(n);
        t.data_ = t.host_.data();
    } else {
        t.gpu_ = DeviceBuffer(n * sizeof(float));
        t.data_ = t.gpu_.as<float>();
    }
    return t;
}

Tensor Tensor::zeros(Shape shape, Device device) {
    Tensor t = empty(std::move(shape), device);
    t.fill_zero();
    return t;
}

Tensor Tensor::from_host(Shape shape, const float* src, Device device) {
    Tensor t = empty(std::move(shape), device);
    t.copy_from_host(src);
    return t;
}

Tensor Tensor::from_vector(Shape shape, const std::vector<float>& src, Device device) {
    GNET_CHECK(int64_t(src.size()) == shape_numel(shape),
               "vector of " + std::to_string(src.size()) + " values does not fit shape " +
                   shape_string(shape));
    return from_host(std::move(shape), src.data(), device);
}

Tensor Tensor::view(float* data, Shape shape, Device device) {
    check_shape(shape);
    Tensor t;
    t.shape_ = std::move(shape);
    t.device_ = device;
    t.data_ = data;
    return t;
}

Tensor Tensor::clone() const {
    return to(device_);
}

Tensor Tensor::to(Device device) const {
    Tensor t = empty(shape_, device);
    copy_floats(t.data_, device, data_, device_, numel());
    return t;
}

std::vector<float> Tensor::to_host() const {
    std::vector<float> v(static_cast<size_t>(numel()));
    copy_floats(v.data(), Device::CPU, data_, device_, numel());
    return v;
}

void Tensor::copy_from(const Tensor& src, Stream stream) {
    GNET_CHECK(src.numel() == numel(), "copy_from: " + shape_string(src.shape()) + " into " +
                                           shape_string(shape_) + " (element counts differ)");
    copy_floats(data_, device_, src.data_, src.device_, numel(), stream);
}

void Tensor::copy_from_host(const float* src, Stream stream) {
    copy_floats(data_, device_, src, Device::CPU, numel(), stream);
}

void Tensor::fill_zero(Stream stream) {
    if (numel() == 0) return;
    if (device_ == Device::CPU) {
        std::fill(data_, data_ + numel(), 0.0f);
        return;
    }
#if GNET_HAVE_CUDA
    if (stream) {
        GNET_CUDA_CHECK(cudaMemsetAsync(data_, 0, bytes(), stream));
    } else {
        GNET_CUDA_CHECK(cudaMemset(data_, 0, bytes()));
    }
#else
    (void)stream;
#endif
}

Tensor Tensor::reshaped(Shape shape) const {
    GNET_CHECK(shape_numel(shape) == numel(),
               "cannot reshape " + shape_string(shape_) + " to " + shape_string(shape));
    return view(data_, std::move(shape), device_);
}

int64_t Tensor::dim(int i) const {
    int r = rank();
    int k = i < 0 ? r + i : i;
    GNET_CHECK(k >= 0 && k < r, "dimension " + std::to_string(i) + " out of range for shape " +
                                    shape_string(shape_));
    return shape_[size_t(k)];
}

}  // namespace gnet
