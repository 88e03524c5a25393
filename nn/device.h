// Which device gnet runs on, and what GPUs this machine has.
//
// probe_gpus() never throws: on a machine with the CUDA toolkit but no GPU or driver
// (cudaGetDeviceCount returns e.g. error 35, "driver insufficient") it reports "no usable GPU"
// with the runtime's reason, and gnet carries on on the CPU.
#pragma once

#include <cstddef>
#include <iosfwd>
#include <string>
#include <vector>

struct CUstream_st;

namespace gnet {

// A CUDA stream without pulling CUDA headers into plain C++ code (same type as cudaStream_t).
using Stream = CUstream_st*;

enum class Device { CPU, CUDA };
enum class DeviceChoice { Auto, Cpu, Cuda };

struct GpuInfo {
    int index = 0;
    std::string name;
    size_t total_bytes = 0;
    size_t free_bytes = 0;
    int cc_major = 0;
    int cc_minor = 0;
    int sm_count = 0;
};

struct GpuProbe {
    bool built_with_cuda = false;
    bool usable = false;
    std::string reason;       // why not usable (empty when usable)
    int runtime_version = 0;  // e.g. 13000; 0 when unknown
    int driver_version = 0;   // 0 when there is no driver
    std::vector<GpuInfo> gpus;
};

// Probes once per process and caches the answer.
const GpuProbe& probe_gpus() noexcept;

const char* device_name(Device d);
// "auto" | "cpu" | "cuda" (also "gpu"); anything else is a UsageError.
DeviceChoice parse_device_choice(const std::string& text);

// auto: CUDA when a GPU is usable, else the CPU with one line on `note` saying why.
// cuda without a usable GPU: an Error that says why.
Device resolve_device(DeviceChoice choice, std::ostream* note);

}  // namespace gnet
