// What the engine and the cuFFT shim need from the emulated runtime (emu/runtime.cpp).
#pragma once

#include <cuda_runtime.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>

namespace gnet::emu {
struct Capture;
}

struct CUstream_st {
    int id;
    gnet::emu::Capture* capture = nullptr;  // while the stream is being captured (graph.cpp)
};
struct CUevent_st {
    std::chrono::steady_clock::time_point when;
    bool recorded = false;
    const gnet::emu::Capture* recorded_in = nullptr;  // the capture that last recorded it
};

namespace gnet::emu {

// Records the calling host thread's last error (returned by cudaGetLastError) with a detail that
// cudaGetErrorString appends, so a message names the kernel, the call and the reason.
cudaError_t set_error(cudaError_t code, const std::string& detail);

enum class MemoryKind { None, Device, Pinned };
// The kind of memory [p, p + bytes) lies in: inside one device or pinned allocation, or None
// (ordinary host memory, or a range that crosses an allocation's end).
MemoryKind memory_kind(const void* p, size_t bytes);
std::string describe_pointer(const void* p);  // "0x... (inside a 4096-byte device allocation)"

bool valid_stream(cudaStream_t stream);

// Stream capture (emu/graph.cpp). A piece of stream work (a launch, copy, memset, event record)
// runs now, or is recorded into the capture's graph when `stream` is being captured; `call` names
// it in errors (the legacy stream may not be used while a global-mode capture is active).
using StreamWork = std::function<cudaError_t()>;
cudaError_t run_or_record(cudaStream_t stream, const char* call, StreamWork work);
// Synchronous and allocating calls are not allowed while the calling thread (or, in global mode,
// any thread) captures: an error naming `call`, and the capture is invalidated, as CUDA does.
cudaError_t check_not_capturing(const char* call);
// cudaStreamWaitEvent on a capturing stream: only an event recorded in the same capture.
cudaError_t check_capture_wait(cudaStream_t stream, cudaEvent_t event);
size_t max_dynamic_shared(const void* kernel);  // the attribute, 48 KiB unless raised

// The emulated device's limits (an H100's).
constexpr unsigned kMaxThreadsPerBlock = 1024;
constexpr unsigned kMaxBlockDim[3] = {1024, 1024, 64};
constexpr unsigned kMaxGridDim[3] = {2147483647u, 65535u, 65535u};
constexpr size_t kDefaultDynamicShared = 48 * 1024;
constexpr size_t kMaxDynamicSharedOptin = 227 * 1024;
constexpr size_t kDeviceMemory = size_t(80) << 30;

}  // namespace gnet::emu
