// The one way gnet launches a kernel, in both builds (include only from .cu files):
//
//   launch<kernel>(grid, block, dynamic_shared_bytes, stream, args...);
//
// Under nvcc it is kernel<<<grid, block, dynamic_shared_bytes, stream>>>(args...) followed by the
// launch check (cudaGetLastError, and with GNET_SYNC_DEBUG=1 a synchronize of `stream`), whose
// error names the kernel. On the emulated device (emu/) the same call hands the kernel to the
// emulator, which first checks every raw-pointer argument against the device allocations.
//
// Dynamic shared memory is declared with GNET_DYNAMIC_SHARED(type, name) inside the kernel
// (`extern __shared__` cannot be emulated by a header): `name` is a `type*` to the block's
// dynamic shared memory, 16-byte aligned.
#pragma once

#include <cuda_runtime.h>

#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "kernels/cuda_check.h"

#if defined(GNET_EMU_DEVICE)
#define GNET_DYNAMIC_SHARED(type, name) \
    type* const name = static_cast<type*>(::gnet::emu::dynamic_shared())
#else
#define GNET_DYNAMIC_SHARED(type, name)                                   \
    extern __shared__ __align__(16) unsigned char gnet_dynamic_shared_[]; \
    type* const name = reinterpret_cast<type*>(gnet_dynamic_shared_)
#endif

namespace gnet {

namespace launch_detail {

template <class F>
struct KernelTraits;
template <class... P>
struct KernelTraits<void (*)(P...)> {
    using Params = std::tuple<std::decay_t<P>...>;
};

#if defined(GNET_EMU_DEVICE)
// False (with the last error set) when a raw-pointer argument is not device memory.
template <class Tuple, size_t... I>
bool check_pointers(const std::string& kernel, const Tuple& t, std::index_sequence<I...>) {
    bool ok = true;
    (
        [&] {
            using T = std::tuple_element_t<I, Tuple>;
            if constexpr (std::is_pointer_v<T>)
                ok = ok &&
                     ::gnet::emu::check_kernel_pointer(
                         kernel.c_str(), int(I), reinterpret_cast<const void*>(std::get<I>(t)));
        }(),
        ...);
    return ok;
}
#endif

}  // namespace launch_detail

template <auto Kernel, class... Args>
void launch(dim3 grid, dim3 block, size_t dynamic_shared_bytes, cudaStream_t stream,
            Args&&... args) {
    static const std::string name = launch_detail::kernel_name(__PRETTY_FUNCTION__);
#if defined(GNET_EMU_DEVICE)
    using Params = typename launch_detail::KernelTraits<decltype(Kernel)>::Params;
    const auto params = std::make_shared<const Params>(std::forward<Args>(args)...);
    if (launch_detail::check_pointers(name, *params,
                                      std::make_index_sequence<std::tuple_size_v<Params>>{})) {
        const emu::LaunchRequest request{
            name.c_str(),
            reinterpret_cast<const void*>(Kernel),
            grid,
            block,
            dynamic_shared_bytes,
            [](const void* p) { std::apply(Kernel, *static_cast<const Params*>(p)); },
            params.get()};
        emu::launch(request, stream, params);
    }
#else
    Kernel<<<grid, block, dynamic_shared_bytes, stream>>>(std::forward<Args>(args)...);
#endif
    const cudaError_t rc = cudaGetLastError();
    if (rc != cudaSuccess) launch_detail::throw_launch_failure(name, "launch", rc);
    if (sync_debug_enabled()) {
        const cudaError_t sync = cudaStreamSynchronize(stream);
        if (sync != cudaSuccess) launch_detail::throw_launch_failure(name, "execution", sync);
    }
}

}  // namespace gnet
