// Shim of the CUDA runtime header for the emulated device: the same .cu sources compile as plain
// C++ against it and run on the CPU (see emu/README.md). It provides what gnet's kernels and host
// code use: the qualifiers, built-in variables, vector types, intrinsics and warp collectives of
// device code, and the runtime API (memory, copies, streams, events, device properties, errors).
//
// Deliberate differences from nvcc's environment:
//  - __CUDA_ARCH__ is not defined (there is one pass, for host and device alike); code that picks
//    a device intrinsic tests GNET_DEVICE_CODE (kernels/common.h) instead, which the
//    emulator sets, so the intrinsic paths are the ones that run here too.
//  - `extern __shared__` cannot be emulated by a header: dynamic shared memory is declared with
//    GNET_DYNAMIC_SHARED(type, name) (kernels/launch.cuh), which expands to it under nvcc.
//  - <<<...>>> is not C++: launches go through gnet::launch<kernel>(...) (kernels/launch.cuh).
#pragma once

#define GNET_EMU_DEVICE 1

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <type_traits>

#include "gnet_emu/engine.h"

// ---------------------------------------------------------------------------------------------
// Qualifiers
// ---------------------------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
// Block scope `thread_local` is static per host thread, and a block runs on one host thread from
// its first fiber to its last: one copy per block, shared by its threads, as on the device.
#define __shared__ thread_local
#define __constant__ static

// ---------------------------------------------------------------------------------------------
// Built-in variables
// ---------------------------------------------------------------------------------------------
#define threadIdx (::gnet::emu::thread_idx())
#define blockIdx (::gnet::emu::block_idx())
#define blockDim (::gnet::emu::block_dim())
#define gridDim (::gnet::emu::grid_dim())
constexpr int warpSize = 32;

// ---------------------------------------------------------------------------------------------
// Vector types (sizes and alignments as CUDA's vector_types.h)
// ---------------------------------------------------------------------------------------------
#define GNET_EMU_VEC2(T, name, align)             \
    struct __attribute__((aligned(align))) name { \
        T x, y;                                   \
    };
#define GNET_EMU_VEC3(T, name) \
    struct name {              \
        T x, y, z;             \
    };
#define GNET_EMU_VEC4(T, name, align)             \
    struct __attribute__((aligned(align))) name { \
        T x, y, z, w;                             \
    };

GNET_EMU_VEC2(float, float2, 8)
GNET_EMU_VEC3(float, float3)
GNET_EMU_VEC4(float, float4, 16)
GNET_EMU_VEC2(double, double2, 16)
GNET_EMU_VEC2(int, int2, 8)
GNET_EMU_VEC3(int, int3)
GNET_EMU_VEC4(int, int4, 16)
GNET_EMU_VEC2(unsigned int, uint2, 8)
GNET_EMU_VEC4(unsigned int, uint4, 16)
GNET_EMU_VEC2(short, short2, 4)
GNET_EMU_VEC2(unsigned short, ushort2, 4)
GNET_EMU_VEC4(signed char, char4, 4)
GNET_EMU_VEC4(unsigned char, uchar4, 4)
#undef GNET_EMU_VEC2
#undef GNET_EMU_VEC3
#undef GNET_EMU_VEC4

inline float2 make_float2(float x, float y) {
    return float2{x, y};
}
inline float3 make_float3(float x, float y, float z) {
    return float3{x, y, z};
}
inline float4 make_float4(float x, float y, float z, float w) {
    return float4{x, y, z, w};
}
inline double2 make_double2(double x, double y) {
    return double2{x, y};
}
inline int2 make_int2(int x, int y) {
    return int2{x, y};
}
inline int4 make_int4(int x, int y, int z, int w) {
    return int4{x, y, z, w};
}
inline uint2 make_uint2(unsigned x, unsigned y) {
    return uint2{x, y};
}
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) {
    return uint4{x, y, z, w};
}
inline uint3 make_uint3(unsigned x, unsigned y, unsigned z) {
    return uint3{x, y, z};
}
inline dim3 make_dim3(unsigned x, unsigned y, unsigned z) {
    return dim3(x, y, z);
}

// ---------------------------------------------------------------------------------------------
// Device functions: min/max overloads, intrinsics (bit-exact IEEE round-to-nearest where CUDA
// specifies it; the fast-math ones follow the accurate function, which is within their error)
// ---------------------------------------------------------------------------------------------
template <class A, class B,
          class = std::enable_if_t<std::is_arithmetic_v<A> && std::is_arithmetic_v<B>>>
inline std::common_type_t<A, B> min(A a, B b) {
    using T = std::common_type_t<A, B>;
    return T(b) < T(a) ? T(b) : T(a);
}
template <class A, class B,
          class = std::enable_if_t<std::is_arithmetic_v<A> && std::is_arithmetic_v<B>>>
inline std::common_type_t<A, B> max(A a, B b) {
    using T = std::common_type_t<A, B>;
    return T(a) < T(b) ? T(b) : T(a);
}

// Device code calls the classification functions unqualified, as CUDA declares them.
using std::isfinite;
using std::isinf;
using std::isnan;

// The _rn arithmetic is never contracted into a fused multiply-add; the volatile keeps the host
// compiler from contracting it either.
inline float __fmul_rn(float a, float b) {
    volatile float r = a * b;
    return r;
}
inline float __fadd_rn(float a, float b) {
    volatile float r = a + b;
    return r;
}
inline float __fsub_rn(float a, float b) {
    volatile float r = a - b;
    return r;
}
inline float __fdiv_rn(float a, float b) {
    volatile float r = a / b;
    return r;
}
inline float __fmaf_rn(float a, float b, float c) {
    return std::fma(a, b, c);
}
inline float __frcp_rn(float a) {
    return __fdiv_rn(1.0f, a);
}
inline float __fsqrt_rn(float a) {
    return std::sqrt(a);
}
inline double __dmul_rn(double a, double b) {
    volatile double r = a * b;
    return r;
}
inline double __dadd_rn(double a, double b) {
    volatile double r = a + b;
    return r;
}
inline float rsqrtf(float a) {
    return 1.0f / std::sqrt(a);
}
inline double rsqrt(double a) {
    return 1.0 / std::sqrt(a);
}
inline float __expf(float a) {
    return std::exp(a);
}
inline float __logf(float a) {
    return std::log(a);
}
inline float __log10f(float a) {
    return std::log10(a);
}
inline float __powf(float a, float b) {
    return std::pow(a, b);
}
inline float __sinf(float a) {
    return std::sin(a);
}
inline float __cosf(float a) {
    return std::cos(a);
}
inline float __fdividef(float a, float b) {
    return a / b;
}
inline float __saturatef(float a) {
    return a < 0.f ? 0.f : (a > 1.f ? 1.f : (a == a ? a : 0.f));
}
inline int __float2int_rn(float a) {
    return int(std::nearbyint(a));
}
inline int __float2int_rz(float a) {
    return int(a);
}
inline float __int2float_rn(int a) {
    return float(a);
}
inline int __float_as_int(float a) {
    int r;
    std::memcpy(&r, &a, 4);
    return r;
}
inline unsigned __float_as_uint(float a) {
    unsigned r;
    std::memcpy(&r, &a, 4);
    return r;
}
inline float __int_as_float(int a) {
    float r;
    std::memcpy(&r, &a, 4);
    return r;
}
inline float __uint_as_float(unsigned a) {
    float r;
    std::memcpy(&r, &a, 4);
    return r;
}
inline unsigned __umulhi(unsigned a, unsigned b) {
    return unsigned((unsigned long long)a * b >> 32);
}
inline int __mulhi(int a, int b) {
    return int((long long)a * b >> 32);
}
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
    return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}
inline int __popc(unsigned a) {
    return __builtin_popcount(a);
}
inline int __popcll(unsigned long long a) {
    return __builtin_popcountll(a);
}
inline int __clz(int a) {
    return a == 0 ? 32 : __builtin_clz(unsigned(a));
}
inline int __ffs(int a) {
    return __builtin_ffs(a);
}
inline unsigned __brev(unsigned a) {
    unsigned r = 0;
    for (int i = 0; i < 32; ++i)
        r |= ((a >> i) & 1u) << (31 - i);
    return r;
}
template <class T>
inline T __ldg(const T* p) {
    return *p;
}

// ---------------------------------------------------------------------------------------------
// Barriers and warp collectives
// ---------------------------------------------------------------------------------------------
#define __syncthreads() ::gnet::emu::syncthreads(__FILE__, __LINE__)

namespace gnet::emu {

struct WarpIo {
    unsigned long long value;  // in: this lane's operand; out: its result
    int arg;                   // source lane, delta or lane mask
    int width;
};

enum class ShuffleMode { Index, Up, Down, Xor };

// The bit pattern a lane gets when it reads from a lane that takes no part (undefined in CUDA):
// all ones, a NaN as float or double, so such a read is hard to miss.
constexpr unsigned long long kPoison = ~0ull;

template <ShuffleMode M>
void complete_shuffle(WarpIo* const lanes[32], unsigned mask, const void*) {
    unsigned long long in[32];
    for (int l = 0; l < 32; ++l)
        if (mask >> l & 1u) in[l] = lanes[l]->value;
    for (int l = 0; l < 32; ++l) {
        if (!(mask >> l & 1u)) continue;
        WarpIo& io = *lanes[l];
        const int w = io.width, base = l & ~(w - 1);
        int src = l;
        if constexpr (M == ShuffleMode::Index) src = base + (io.arg & (w - 1));
        if constexpr (M == ShuffleMode::Up) src = (l - base) >= io.arg ? l - io.arg : l;
        if constexpr (M == ShuffleMode::Down) src = (l - base) + io.arg < w ? l + io.arg : l;
        if constexpr (M == ShuffleMode::Xor) {
            src = l ^ io.arg;
            if (src < 0 || src >= 32 || (src & ~(w - 1)) > base) src = l;
        }
        io.value = (mask >> src & 1u) ? in[src] : kPoison;
    }
}

void check_shuffle_width(const char* kind, int width);

template <ShuffleMode M, class T>
T shuffle(const char* kind, unsigned mask, T v, int arg, int width) {
    static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8, "shuffle of up to 8 bytes");
    check_shuffle_width(kind, width);
    WarpIo io{};
    std::memcpy(&io.value, &v, sizeof(T));
    io.arg = arg;
    io.width = width;
    warp_collective(kind, mask, &io, &complete_shuffle<M>);
    T r;
    std::memcpy(&r, &io.value, sizeof(T));
    return r;
}

void complete_ballot(WarpIo* const lanes[32], unsigned mask, const void*);
void complete_nothing(WarpIo* const lanes[32], unsigned mask, const void*);

}  // namespace gnet::emu

template <class T>
inline T __shfl_sync(unsigned mask, T v, int src_lane, int width = warpSize) {
    return ::gnet::emu::shuffle<::gnet::emu::ShuffleMode::Index>("__shfl_sync", mask, v, src_lane,
                                                                 width);
}
template <class T>
inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = warpSize) {
    return ::gnet::emu::shuffle<::gnet::emu::ShuffleMode::Up>("__shfl_up_sync", mask, v, int(delta),
                                                              width);
}
template <class T>
inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = warpSize) {
    return ::gnet::emu::shuffle<::gnet::emu::ShuffleMode::Down>("__shfl_down_sync", mask, v,
                                                                int(delta), width);
}
template <class T>
inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = warpSize) {
    return ::gnet::emu::shuffle<::gnet::emu::ShuffleMode::Xor>("__shfl_xor_sync", mask, v,
                                                               lane_mask, width);
}
inline unsigned __ballot_sync(unsigned mask, int predicate) {
    ::gnet::emu::WarpIo io{};
    io.value = predicate != 0;
    ::gnet::emu::warp_collective("__ballot_sync", mask, &io, &::gnet::emu::complete_ballot);
    return unsigned(io.value);
}
inline int __any_sync(unsigned mask, int predicate) {
    return __ballot_sync(mask, predicate) != 0;
}
inline int __all_sync(unsigned mask, int predicate) {
    return __ballot_sync(mask, predicate) == mask;
}
inline void __syncwarp(unsigned mask = 0xffffffffu) {
    ::gnet::emu::WarpIo io{};
    ::gnet::emu::warp_collective("__syncwarp", mask, &io, &::gnet::emu::complete_nothing);
}

// ---------------------------------------------------------------------------------------------
// Runtime API
// ---------------------------------------------------------------------------------------------
// Error codes keep CUDA's numbers, so messages that print them read the same.
enum cudaError {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInitializationError = 3,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorInvalidPitchValue = 12,
    cudaErrorInvalidSymbol = 13,
    cudaErrorInvalidDevicePointer = 17,
    cudaErrorInvalidMemcpyDirection = 21,
    cudaErrorInsufficientDriver = 35,
    cudaErrorInvalidDeviceFunction = 98,
    cudaErrorNoDevice = 100,
    cudaErrorInvalidDevice = 101,
    cudaErrorInvalidResourceHandle = 400,
    cudaErrorNotReady = 600,
    cudaErrorIllegalAddress = 700,
    cudaErrorLaunchOutOfResources = 701,
    cudaErrorLaunchFailure = 719,
    cudaErrorStreamCaptureUnsupported = 900,
    cudaErrorStreamCaptureInvalidated = 901,
    cudaErrorStreamCaptureIsolation = 905,
    cudaErrorStreamCaptureImplicit = 906,
    cudaErrorIllegalState = 401,
    cudaErrorUnknown = 999,
};
typedef enum cudaError cudaError_t;

enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4,
};

enum cudaDeviceAttr {
    cudaDevAttrMaxThreadsPerBlock = 1,
    cudaDevAttrMaxBlockDimX = 2,
    cudaDevAttrMaxGridDimX = 5,
    cudaDevAttrMaxGridDimY = 6,
    cudaDevAttrMaxGridDimZ = 7,
    cudaDevAttrMaxSharedMemoryPerBlock = 8,
    cudaDevAttrWarpSize = 10,
    cudaDevAttrMultiProcessorCount = 16,
    cudaDevAttrComputeCapabilityMajor = 75,
    cudaDevAttrComputeCapabilityMinor = 76,
    cudaDevAttrL2CacheSize = 38,
    cudaDevAttrMaxSharedMemoryPerBlockOptin = 97,
};

enum cudaFuncAttribute {
    cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
    cudaFuncAttributePreferredSharedMemoryCarveout = 9,
};

struct cudaDeviceProp {
    char name[256];
    size_t totalGlobalMem;
    size_t sharedMemPerBlock;
    size_t sharedMemPerBlockOptin;
    size_t sharedMemPerMultiprocessor;
    int regsPerBlock;
    int warpSize;
    int maxThreadsPerBlock;
    int maxThreadsDim[3];
    int maxGridSize[3];
    int major;
    int minor;
    int multiProcessorCount;
    int l2CacheSize;
    int maxThreadsPerMultiProcessor;
    int memoryBusWidth;
};

struct cudaFuncAttributes {
    size_t sharedSizeBytes;
    int maxThreadsPerBlock;
    int maxDynamicSharedSizeBytes;
};

struct CUevent_st;
typedef CUevent_st* cudaEvent_t;

// CUDA graphs (emu/graph.cpp): stream capture records the work queued on a stream into a graph
// instead of running it; an instantiated graph replays that work in order.
struct CUgraph_st;
typedef CUgraph_st* cudaGraph_t;
struct CUgraphExec_st;
typedef CUgraphExec_st* cudaGraphExec_t;
enum cudaStreamCaptureMode {
    cudaStreamCaptureModeGlobal = 0,
    cudaStreamCaptureModeThreadLocal = 1,
    cudaStreamCaptureModeRelaxed = 2,
};
enum cudaStreamCaptureStatus {
    cudaStreamCaptureStatusNone = 0,
    cudaStreamCaptureStatusActive = 1,
    cudaStreamCaptureStatusInvalidated = 2,
};

#define cudaStreamNonBlocking 0x01
#define cudaEventDisableTiming 0x02
#define cudaHostAllocDefault 0x00
#define cudaEventDefault 0x00

const char* cudaGetErrorName(cudaError_t error);
const char* cudaGetErrorString(cudaError_t error);
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();

cudaError_t cudaRuntimeGetVersion(int* version);
cudaError_t cudaDriverGetVersion(int* version);
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaDeviceReset();
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes);

cudaError_t cudaMalloc(void** ptr, size_t bytes);
cudaError_t cudaFree(void* ptr);
cudaError_t cudaMallocHost(void** ptr, size_t bytes);
cudaError_t cudaHostAlloc(void** ptr, size_t bytes, unsigned flags);
cudaError_t cudaFreeHost(void* ptr);
cudaError_t cudaMemset(void* ptr, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void* ptr, int value, size_t bytes, cudaStream_t stream = nullptr);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream = nullptr);

cudaError_t cudaStreamCreate(cudaStream_t* stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaStreamQuery(cudaStream_t stream);
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned flags = 0);

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph);
cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* status);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph,
                                 unsigned long long flags = 0);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);
cudaError_t cudaGraphDestroy(cudaGraph_t graph);

cudaError_t cudaEventCreate(cudaEvent_t* event);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventQuery(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);

cudaError_t cudaFuncSetAttribute(const void* func, cudaFuncAttribute attr, int value);
cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* attr, const void* func);
template <class T>
inline cudaError_t cudaFuncSetAttribute(T* func, cudaFuncAttribute attr, int value) {
    return cudaFuncSetAttribute(reinterpret_cast<const void*>(func), attr, value);
}
template <class T>
inline cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* attr, T* func) {
    return cudaFuncGetAttributes(attr, reinterpret_cast<const void*>(func));
}
