// The CUDA runtime API of the emulated device: device memory is host memory handed out and
// tracked here (so copies, frees and kernel arguments can be checked against it), streams and
// events execute in issue order (every call completes before it returns), and the one device
// reports an H100's limits.
//
// GNET_EMU_FILL=nan (the default) fills every new device and pinned allocation with 0xff bytes,
// a NaN as float: a kernel or copy that reads memory nobody wrote yields NaN where a real GPU
// would give whatever was left there (compute-sanitizer's initcheck finds the same reads).
// GNET_EMU_FILL=zero fills with zeros instead.
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include "emu/runtime_internal.h"

namespace gnet::emu {

namespace {

struct Allocation {
    size_t bytes;
    MemoryKind kind;
};

struct State {
    std::mutex m;
    std::map<uintptr_t, Allocation> allocations;  // by start address
    size_t device_bytes = 0;                      // live device allocations
    std::set<const CUstream_st*> streams;
    std::set<const CUevent_st*> events;
    std::map<const void*, size_t> dynamic_shared_limit;  // cudaFuncSetAttribute
    int next_stream = 1;
};

State& state() {
    static State s;
    return s;
}

bool fill_nan() {
    static const bool nan = [] {
        const char* f = std::getenv("GNET_EMU_FILL");
        return !(f && std::strcmp(f, "zero") == 0);
    }();
    return nan;
}

thread_local cudaError_t tls_last_error = cudaSuccess;
thread_local cudaError_t tls_detail_code = cudaSuccess;
thread_local std::string tls_detail;
thread_local std::string tls_message;  // what cudaGetErrorString returned last

// The allocation that holds [p, p + bytes), or nullptr. Caller holds the lock.
const std::pair<const uintptr_t, Allocation>* find(const void* p, size_t bytes) {
    auto& a = state().allocations;
    const uintptr_t u = reinterpret_cast<uintptr_t>(p);
    auto it = a.upper_bound(u);
    if (it == a.begin()) return nullptr;
    --it;
    if (u - it->first > it->second.bytes || bytes > it->second.bytes - (u - it->first))
        return nullptr;
    return &*it;
}

void* allocate(size_t bytes) {
    const size_t rounded = (bytes + 255) / 256 * 256;
    void* p = std::aligned_alloc(256, rounded);
    if (p) std::memset(p, fill_nan() ? 0xff : 0, rounded);
    return p;
}

const char* kind_name(cudaMemcpyKind k) {
    switch (k) {
        case cudaMemcpyHostToHost:
            return "cudaMemcpyHostToHost";
        case cudaMemcpyHostToDevice:
            return "cudaMemcpyHostToDevice";
        case cudaMemcpyDeviceToHost:
            return "cudaMemcpyDeviceToHost";
        case cudaMemcpyDeviceToDevice:
            return "cudaMemcpyDeviceToDevice";
        default:
            return "cudaMemcpyDefault";
    }
}

// Whether a copy of `bytes` from `src` to `dst` is what `kind` says (device memory only where a
// device side is named; pinned memory counts as host memory, as the GPU can read it too).
cudaError_t check_copy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                       const char* call) {
    if (bytes == 0) return cudaSuccess;
    const bool dst_dev = memory_kind(dst, bytes) == MemoryKind::Device;
    const bool src_dev = memory_kind(src, bytes) == MemoryKind::Device;
    bool good = true;
    switch (kind) {
        case cudaMemcpyHostToHost:
            good = !dst_dev && !src_dev;
            break;
        case cudaMemcpyHostToDevice:
            good = dst_dev && !src_dev;
            break;
        case cudaMemcpyDeviceToHost:
            good = !dst_dev && src_dev;
            break;
        case cudaMemcpyDeviceToDevice:
            good = dst_dev && src_dev;
            break;
        case cudaMemcpyDefault:
            break;
        default:
            return set_error(
                cudaErrorInvalidMemcpyDirection,
                std::string(call) + ": unknown copy kind " + std::to_string(int(kind)));
    }
    if (!good)
        return set_error(cudaErrorInvalidValue,
                         std::string(call) + "(" + kind_name(kind) + ", " + std::to_string(bytes) +
                             " bytes): destination " + describe_pointer(dst) + ", source " +
                             describe_pointer(src));
    return cudaSuccess;
}

cudaError_t check_stream(cudaStream_t s, const char* call) {
    if (valid_stream(s)) return cudaSuccess;
    return set_error(cudaErrorInvalidResourceHandle, std::string(call) + ": invalid stream");
}

}  // namespace

cudaError_t set_error(cudaError_t code, const std::string& detail) {
    tls_last_error = code;
    tls_detail_code = code;
    tls_detail = detail;
    return code;
}

MemoryKind memory_kind(const void* p, size_t bytes) {
    std::lock_guard<std::mutex> lock(state().m);
    const auto* a = find(p, bytes);
    return a ? a->second.kind : MemoryKind::None;
}

std::string describe_pointer(const void* p) {
    char addr[32];
    std::snprintf(addr, sizeof addr, "%p", p);
    std::lock_guard<std::mutex> lock(state().m);
    const auto* a = find(p, 0);
    if (!a) return std::string(addr) + " (host memory)";
    return std::string(addr) + " (offset " +
           std::to_string(reinterpret_cast<uintptr_t>(p) - a->first) + " in a " +
           std::to_string(a->second.bytes) + "-byte " +
           (a->second.kind == MemoryKind::Device ? "device" : "pinned host") + " allocation)";
}

bool valid_stream(cudaStream_t stream) {
    if (!stream) return true;  // the legacy default stream
    std::lock_guard<std::mutex> lock(state().m);
    return state().streams.count(stream) != 0;
}

size_t max_dynamic_shared(const void* kernel) {
    std::lock_guard<std::mutex> lock(state().m);
    auto it = state().dynamic_shared_limit.find(kernel);
    return it == state().dynamic_shared_limit.end() ? kDefaultDynamicShared : it->second;
}

}  // namespace gnet::emu

using namespace gnet::emu;

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------
const char* cudaGetErrorName(cudaError_t e) {
    switch (e) {
        case cudaSuccess:
            return "cudaSuccess";
        case cudaErrorInvalidValue:
            return "cudaErrorInvalidValue";
        case cudaErrorMemoryAllocation:
            return "cudaErrorMemoryAllocation";
        case cudaErrorInitializationError:
            return "cudaErrorInitializationError";
        case cudaErrorInvalidConfiguration:
            return "cudaErrorInvalidConfiguration";
        case cudaErrorInvalidDevicePointer:
            return "cudaErrorInvalidDevicePointer";
        case cudaErrorInvalidMemcpyDirection:
            return "cudaErrorInvalidMemcpyDirection";
        case cudaErrorInvalidDevice:
            return "cudaErrorInvalidDevice";
        case cudaErrorInvalidResourceHandle:
            return "cudaErrorInvalidResourceHandle";
        case cudaErrorNotReady:
            return "cudaErrorNotReady";
        case cudaErrorLaunchFailure:
            return "cudaErrorLaunchFailure";
        case cudaErrorStreamCaptureUnsupported:
            return "cudaErrorStreamCaptureUnsupported";
        case cudaErrorStreamCaptureInvalidated:
            return "cudaErrorStreamCaptureInvalidated";
        case cudaErrorStreamCaptureIsolation:
            return "cudaErrorStreamCaptureIsolation";
        case cudaErrorStreamCaptureImplicit:
            return "cudaErrorStreamCaptureImplicit";
        case cudaErrorIllegalState:
            return "cudaErrorIllegalState";
        default:
            return "cudaErrorUnknown";
    }
}

const char* cudaGetErrorString(cudaError_t e) {
    const char* base;
    switch (e) {
        case cudaSuccess:
            base = "no error";
            break;
        case cudaErrorInvalidValue:
            base = "invalid argument";
            break;
        case cudaErrorMemoryAllocation:
            base = "out of memory";
            break;
        case cudaErrorInvalidConfiguration:
            base = "invalid configuration argument";
            break;
        case cudaErrorInvalidDevicePointer:
            base = "invalid device pointer";
            break;
        case cudaErrorInvalidMemcpyDirection:
            base = "invalid copy direction for memcpy";
            break;
        case cudaErrorInvalidDevice:
            base = "invalid device ordinal";
            break;
        case cudaErrorInvalidResourceHandle:
            base = "invalid resource handle";
            break;
        case cudaErrorNotReady:
            base = "device not ready";
            break;
        case cudaErrorLaunchFailure:
            base = "unspecified launch failure";
            break;
        case cudaErrorStreamCaptureUnsupported:
            base = "operation not permitted when stream is capturing";
            break;
        case cudaErrorStreamCaptureInvalidated:
            base = "operation failed due to a previous error during capture";
            break;
        case cudaErrorStreamCaptureIsolation:
            base = "dependency created on uncaptured work in another stream";
            break;
        case cudaErrorStreamCaptureImplicit:
            base = "operation would make the legacy stream depend on a capturing blocking stream";
            break;
        case cudaErrorIllegalState:
            base = "the operation cannot be performed in the present state";
            break;
        default:
            base = "unknown error";
            break;
    }
    if (e == cudaSuccess || e != tls_detail_code || tls_detail.empty()) return base;
    tls_message = std::string(base) + " (" + tls_detail + ")";
    return tls_message.c_str();
}

cudaError_t cudaGetLastError() {
    const cudaError_t e = tls_last_error;
    tls_last_error = cudaSuccess;
    return e;
}

cudaError_t cudaPeekAtLastError() {
    return tls_last_error;
}

// ---------------------------------------------------------------------------------------------
// Device
// ---------------------------------------------------------------------------------------------
cudaError_t cudaRuntimeGetVersion(int* v) {
    *v = 13000;  // the API level emulated
    return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int* v) {
    *v = 13000;
    return cudaSuccess;
}

cudaError_t cudaGetDeviceCount(int* count) {
    *count = 1;
    return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
    *device = 0;
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
    if (device != 0)
        return set_error(cudaErrorInvalidDevice, "cudaSetDevice(" + std::to_string(device) +
                                                     "): the emulator has device 0 only");
    return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int device) {
    if (device != 0) return set_error(cudaErrorInvalidDevice, "cudaGetDeviceProperties");
    *p = cudaDeviceProp{};
    std::snprintf(p->name, sizeof p->name, "gnet emulated CUDA device (H100 limits)");
    p->totalGlobalMem = kDeviceMemory;
    p->sharedMemPerBlock = kDefaultDynamicShared;
    p->sharedMemPerBlockOptin = kMaxDynamicSharedOptin;
    p->sharedMemPerMultiprocessor = 228 * 1024;
    p->regsPerBlock = 65536;
    p->warpSize = 32;
    p->maxThreadsPerBlock = int(kMaxThreadsPerBlock);
    for (int i = 0; i < 3; ++i) {
        p->maxThreadsDim[i] = int(kMaxBlockDim[i]);
        p->maxGridSize[i] = int(kMaxGridDim[i]);
    }
    p->major = 9;
    p->minor = 0;
    p->multiProcessorCount = 132;
    p->l2CacheSize = 50 * 1024 * 1024;
    p->maxThreadsPerMultiProcessor = 2048;
    p->memoryBusWidth = 5120;
    return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
    cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, device) != cudaSuccess) return cudaErrorInvalidDevice;
    switch (attr) {
        case cudaDevAttrMaxThreadsPerBlock:
            *value = p.maxThreadsPerBlock;
            break;
        case cudaDevAttrMaxBlockDimX:
            *value = p.maxThreadsDim[0];
            break;
        case cudaDevAttrMaxGridDimX:
            *value = p.maxGridSize[0];
            break;
        case cudaDevAttrMaxGridDimY:
            *value = p.maxGridSize[1];
            break;
        case cudaDevAttrMaxGridDimZ:
            *value = p.maxGridSize[2];
            break;
        case cudaDevAttrMaxSharedMemoryPerBlock:
            *value = int(p.sharedMemPerBlock);
            break;
        case cudaDevAttrWarpSize:
            *value = p.warpSize;
            break;
        case cudaDevAttrMultiProcessorCount:
            *value = p.multiProcessorCount;
            break;
        case cudaDevAttrComputeCapabilityMajor:
            *value = p.major;
            break;
        case cudaDevAttrComputeCapabilityMinor:
            *value = p.minor;
            break;
        case cudaDevAttrL2CacheSize:
            *value = p.l2CacheSize;
            break;
        case cudaDevAttrMaxSharedMemoryPerBlockOptin:
            *value = int(p.sharedMemPerBlockOptin);
            break;
        default:
            return set_error(cudaErrorInvalidValue, "cudaDeviceGetAttribute: attribute " +
                                                        std::to_string(int(attr)) +
                                                        " is not emulated");
    }
    return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() {
    if (cudaError_t e = check_not_capturing("cudaDeviceSynchronize")) return e;
    return cudaSuccess;  // every call has completed when it returned
}

cudaError_t cudaDeviceReset() {
    return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
    std::lock_guard<std::mutex> lock(state().m);
    *total_bytes = kDeviceMemory;
    *free_bytes = kDeviceMemory - state().device_bytes;
    return cudaSuccess;
}

// ---------------------------------------------------------------------------------------------
// Memory
// ---------------------------------------------------------------------------------------------
cudaError_t cudaMalloc(void** ptr, size_t bytes) {
    *ptr = nullptr;
    if (cudaError_t e = check_not_capturing("cudaMalloc")) return e;
    if (bytes == 0) return cudaSuccess;
    {
        std::lock_guard<std::mutex> lock(state().m);
        if (bytes > kDeviceMemory - state().device_bytes)
            return set_error(cudaErrorMemoryAllocation,
                             "cudaMalloc(" + std::to_string(bytes) +
                                 "): " + std::to_string(kDeviceMemory - state().device_bytes) +
                                 " bytes of the emulated device's 80 GiB are free");
    }
    void* p = allocate(bytes);
    if (!p)
        return set_error(cudaErrorMemoryAllocation,
                         "cudaMalloc(" + std::to_string(bytes) + "): host memory exhausted");
    std::lock_guard<std::mutex> lock(state().m);
    state().allocations[reinterpret_cast<uintptr_t>(p)] = Allocation{bytes, MemoryKind::Device};
    state().device_bytes += bytes;
    *ptr = p;
    return cudaSuccess;
}

namespace {
cudaError_t free_kind(void* ptr, MemoryKind kind, const char* call) {
    if (!ptr) return cudaSuccess;
    std::lock_guard<std::mutex> lock(state().m);
    auto it = state().allocations.find(reinterpret_cast<uintptr_t>(ptr));
    if (it == state().allocations.end() || it->second.kind != kind) {
        char addr[32];
        std::snprintf(addr, sizeof addr, "%p", ptr);
        return set_error(cudaErrorInvalidValue,
                         std::string(call) + "(" + addr + "): not the start of a live " +
                             (kind == MemoryKind::Device ? "device" : "pinned host") +
                             " allocation");
    }
    if (kind == MemoryKind::Device) state().device_bytes -= it->second.bytes;
    state().allocations.erase(it);
    std::free(ptr);
    return cudaSuccess;
}
}  // namespace

cudaError_t cudaFree(void* ptr) {
    if (cudaError_t e = check_not_capturing("cudaFree")) return e;
    return free_kind(ptr, MemoryKind::Device, "cudaFree");
}

cudaError_t cudaMallocHost(void** ptr, size_t bytes) {
    *ptr = nullptr;
    if (cudaError_t e = check_not_capturing("cudaMallocHost")) return e;
    if (bytes == 0) return cudaSuccess;
    void* p = allocate(bytes);
    if (!p)
        return set_error(cudaErrorMemoryAllocation,
                         "cudaMallocHost(" + std::to_string(bytes) + "): host memory exhausted");
    std::lock_guard<std::mutex> lock(state().m);
    state().allocations[reinterpret_cast<uintptr_t>(p)] = Allocation{bytes, MemoryKind::Pinned};
    *ptr = p;
    return cudaSuccess;
}

cudaError_t cudaHostAlloc(void** ptr, size_t bytes, unsigned) {
    return cudaMallocHost(ptr, bytes);
}

cudaError_t cudaFreeHost(void* ptr) {
    if (cudaError_t e = check_not_capturing("cudaFreeHost")) return e;
    return free_kind(ptr, MemoryKind::Pinned, "cudaFreeHost");
}

cudaError_t cudaMemset(void* ptr, int value, size_t bytes) {
    if (cudaError_t e = check_not_capturing("cudaMemset")) return e;
    return cudaMemsetAsync(ptr, value, bytes, nullptr);
}

cudaError_t cudaMemsetAsync(void* ptr, int value, size_t bytes, cudaStream_t stream) {
    if (cudaError_t e = check_stream(stream, "cudaMemsetAsync")) return e;
    if (bytes == 0) return cudaSuccess;
    if (memory_kind(ptr, bytes) != MemoryKind::Device)
        return set_error(cudaErrorInvalidValue, "cudaMemset of " + std::to_string(bytes) +
                                                    " bytes at " + describe_pointer(ptr) +
                                                    ": not inside one device allocation");
    return run_or_record(stream, "cudaMemsetAsync", [=] {
        std::memset(ptr, value, bytes);
        return cudaSuccess;
    });
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
    if (cudaError_t e = check_not_capturing("cudaMemcpy")) return e;
    if (cudaError_t e = check_copy(dst, src, bytes, kind, "cudaMemcpy")) return e;
    if (bytes) std::memmove(dst, src, bytes);
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream) {
    if (cudaError_t e = check_stream(stream, "cudaMemcpyAsync")) return e;
    if (cudaError_t e = check_copy(dst, src, bytes, kind, "cudaMemcpyAsync")) return e;
    if (!bytes) return cudaSuccess;
    return run_or_record(stream, "cudaMemcpyAsync", [=] {
        std::memmove(dst, src, bytes);
        return cudaSuccess;
    });
}

// ---------------------------------------------------------------------------------------------
// Streams and events: work completes in issue order before each call returns.
// ---------------------------------------------------------------------------------------------
cudaError_t cudaStreamCreate(cudaStream_t* stream) {
    return cudaStreamCreateWithFlags(stream, 0);
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned) {
    std::lock_guard<std::mutex> lock(state().m);
    *stream = new CUstream_st{state().next_stream++};
    state().streams.insert(*stream);
    return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
    std::lock_guard<std::mutex> lock(state().m);
    if (!stream || !state().streams.count(stream))
        return set_error(cudaErrorInvalidResourceHandle, "cudaStreamDestroy: invalid stream");
    if (stream->capture)
        return set_error(cudaErrorStreamCaptureUnsupported,
                         "cudaStreamDestroy: the stream is being captured");
    state().streams.erase(stream);
    delete stream;
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
    if (cudaError_t e = check_not_capturing("cudaStreamSynchronize")) return e;
    return check_stream(stream, "cudaStreamSynchronize");
}

cudaError_t cudaStreamQuery(cudaStream_t stream) {
    if (cudaError_t e = check_not_capturing("cudaStreamQuery")) return e;
    return check_stream(stream, "cudaStreamQuery");
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned) {
    if (cudaError_t e = check_stream(stream, "cudaStreamWaitEvent")) return e;
    std::lock_guard<std::mutex> lock(state().m);
    if (!state().events.count(event))
        return set_error(cudaErrorInvalidResourceHandle, "cudaStreamWaitEvent: invalid event");
    return check_capture_wait(stream, event);
}

cudaError_t cudaEventCreate(cudaEvent_t* event) {
    return cudaEventCreateWithFlags(event, 0);
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned) {
    std::lock_guard<std::mutex> lock(state().m);
    *event = new CUevent_st{};
    state().events.insert(*event);
    return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
    std::lock_guard<std::mutex> lock(state().m);
    if (!state().events.erase(event))
        return set_error(cudaErrorInvalidResourceHandle, "cudaEventDestroy: invalid event");
    delete event;
    return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
    if (cudaError_t e = check_stream(stream, "cudaEventRecord")) return e;
    {
        std::lock_guard<std::mutex> lock(state().m);
        if (!state().events.count(event))
            return set_error(cudaErrorInvalidResourceHandle, "cudaEventRecord: invalid event");
        event->recorded_in = stream ? stream->capture : nullptr;
    }
    return run_or_record(stream, "cudaEventRecord", [=] {
        std::lock_guard<std::mutex> lock(state().m);
        event->when = std::chrono::steady_clock::now();
        event->recorded = true;
        return cudaSuccess;
    });
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
    if (cudaError_t e = check_not_capturing("cudaEventSynchronize")) return e;
    std::lock_guard<std::mutex> lock(state().m);
    if (!state().events.count(event))
        return set_error(cudaErrorInvalidResourceHandle, "cudaEventSynchronize: invalid event");
    return cudaSuccess;
}

cudaError_t cudaEventQuery(cudaEvent_t event) {
    return cudaEventSynchronize(event);
}

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
    std::lock_guard<std::mutex> lock(state().m);
    if (!state().events.count(start) || !state().events.count(end))
        return set_error(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime: invalid event");
    if (!start->recorded || !end->recorded)
        return set_error(cudaErrorInvalidResourceHandle,
                         "cudaEventElapsedTime: an event was never recorded");
    *ms = std::chrono::duration<float, std::milli>(end->when - start->when).count();
    return cudaSuccess;
}

// ---------------------------------------------------------------------------------------------
// Function attributes
// ---------------------------------------------------------------------------------------------
cudaError_t cudaFuncSetAttribute(const void* func, cudaFuncAttribute attr, int value) {
    if (attr == cudaFuncAttributePreferredSharedMemoryCarveout) return cudaSuccess;
    if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize)
        return set_error(cudaErrorInvalidValue, "cudaFuncSetAttribute: attribute " +
                                                    std::to_string(int(attr)) + " is not emulated");
    if (value < 0 || size_t(value) > kMaxDynamicSharedOptin)
        return set_error(cudaErrorInvalidValue,
                         "cudaFuncSetAttribute: " + std::to_string(value) +
                             " bytes of dynamic shared memory exceed the device's " +
                             std::to_string(kMaxDynamicSharedOptin));
    std::lock_guard<std::mutex> lock(state().m);
    state().dynamic_shared_limit[func] = size_t(value);
    return cudaSuccess;
}

cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* attr, const void* func) {
    *attr = cudaFuncAttributes{};
    attr->maxThreadsPerBlock = int(kMaxThreadsPerBlock);
    attr->maxDynamicSharedSizeBytes = int(max_dynamic_shared(func));
    return cudaSuccess;
}
