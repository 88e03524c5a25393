#include "nn/device.h"

#include <atomic>
#include <cstdlib>
#include <ostream>

#include "kernels/error.h"

#if GNET_HAVE_CUDA
#include <cuda_runtime.h>
#endif

namespace gnet {

namespace {

GpuProbe do_probe() noexcept {
    GpuProbe p;
#if GNET_HAVE_CUDA
    p.built_with_cuda = true;
    cudaRuntimeGetVersion(&p.runtime_version);
    if (cudaDriverGetVersion(&p.driver_version) != cudaSuccess) p.driver_version = 0;
    int count = 0;
    cudaError_t rc = cudaGetDeviceCount(&count);
    if (rc != cudaSuccess) {
        p.reason = std::string("cudaGetDeviceCount failed with error ") + std::to_string(int(rc)) +
                   " (" + cudaGetErrorString(rc) + ")";
        cudaGetLastError();  // clear the sticky-free error so later calls start clean
        return p;
    }
    if (count == 0) {
        p.reason = "the CUDA driver reports no GPU";
        return p;
    }
    for (int i = 0; i < count; ++i) {
        cudaDeviceProp prop{};
        if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
        GpuInfo g;
        g.index = i;
        g.name = prop.name;
        g.total_bytes = prop.totalGlobalMem;
        g.cc_major = prop.major;
        g.cc_minor = prop.minor;
        g.sm_count = prop.multiProcessorCount;
        size_t free_b = 0, total_b = 0;
        if (cudaSetDevice(i) == cudaSuccess && cudaMemGetInfo(&free_b, &total_b) == cudaSuccess)
            g.free_bytes = free_b;
        p.gpus.push_back(g);
    }
    cudaGetLastError();
    if (p.gpus.empty()) {
        p.reason = "no GPU could be queried";
        return p;
    }
    cudaSetDevice(0);
    p.usable = true;
#else
    p.reason = "gnet was built without CUDA";
#endif
    return p;
}

}  // namespace

const GpuProbe& probe_gpus() noexcept {
    static const GpuProbe probe = do_probe();
    return probe;
}

const char* device_name(Device d) {
    return d == Device::CUDA ? "cuda" : "cpu";
}

DeviceChoice parse_device_choice(const std::string& text) {
    if (text == "auto") return DeviceChoice::Auto;
    if (text == "cpu") return DeviceChoice::Cpu;
    if (text == "cuda" || text == "gpu") return DeviceChoice::Cuda;
    throw UsageError("unknown device '" + text + "' (expected auto, cpu or cuda)");
}

Device resolve_device(DeviceChoice choice, std::ostream* note) {
    if (choice == DeviceChoice::Cpu) return Device::CPU;
    const GpuProbe& p = probe_gpus();
    if (p.usable) return Device::CUDA;
    if (choice == DeviceChoice::Cuda) throw Error("--device cuda: no usable GPU: " + p.reason);
    // Said once per process, briefly ('gnet info' has the reason); `gnet bench` says it for the
    // programs it starts (GNET_DEVICE_NOTE_SHOWN).
    static std::atomic<bool> said{false};
    if (note && !said.exchange(true) && !std::getenv("GNET_DEVICE_NOTE_SHOWN"))
        *note << "gnet: no usable GPU, running on the CPU ('gnet info' says why)\n";
    return Device::CPU;
}

}  // namespace gnet
