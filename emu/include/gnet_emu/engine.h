// The execution engine of the emulated CUDA device: what the shim headers (cuda_runtime.h, ...)
// call into. Plain C++; not for gnet code to include directly.
//
// A kernel launch runs its blocks on host worker threads; within a block every CUDA thread is a
// fiber, and fibers switch only at block barriers and warp collectives (cooperative scheduling).
// Between two such points a fiber runs alone, so a missing __syncthreads shows up as a wrong
// result in some fiber order (GNET_EMU_ORDER=forward|reverse|shuffle).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

struct uint3 {
    unsigned int x, y, z;
};

struct dim3 {
    unsigned int x, y, z;
    constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1)
        : x(vx), y(vy), z(vz) {}
    constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
    constexpr operator uint3() const { return uint3{x, y, z}; }
};

struct CUstream_st;
typedef CUstream_st* cudaStream_t;

namespace gnet::emu {

// What the current fiber sees; set by the scheduler before it resumes a fiber.
struct BlockContext {
    uint3 block_idx;
    dim3 block_dim;
    dim3 grid_dim;
    void* dynamic_shared;  // the block's dynamic shared memory (its launch's size)
    size_t dynamic_shared_bytes;
};
extern thread_local const uint3* tls_thread_idx;  // null outside a kernel
extern thread_local const BlockContext* tls_block;

[[noreturn]] void outside_kernel(const char* what);
// Stops the calling thread's kernel with an error naming the kernel, block and thread.
[[noreturn]] void kernel_fault(const char* what);

inline const uint3& thread_idx() {
    if (!tls_thread_idx) outside_kernel("threadIdx");
    return *tls_thread_idx;
}
inline const uint3& block_idx() {
    if (!tls_block) outside_kernel("blockIdx");
    return tls_block->block_idx;
}
inline const dim3& block_dim() {
    if (!tls_block) outside_kernel("blockDim");
    return tls_block->block_dim;
}
inline const dim3& grid_dim() {
    if (!tls_block) outside_kernel("gridDim");
    return tls_block->grid_dim;
}
inline void* dynamic_shared() {
    if (!tls_block) outside_kernel("dynamic shared memory");
    return tls_block->dynamic_shared;
}

// __syncthreads(): every thread of the block must reach the same barrier (call site) before any
// goes on; a thread that exits while others wait, or threads at different call sites, are errors.
void syncthreads(const char* file, int line);

// A warp collective: every lane named by `mask` (the caller among them) deposits `io`, the last
// one to arrive runs `complete` over all of them, then all go on. `kind` names the operation;
// lanes of one collective must agree on it and on the mask.
struct WarpIo;
using WarpComplete = void (*)(WarpIo* const lanes[32], unsigned mask, const void* op_data);
void warp_collective(const char* kind, unsigned mask, WarpIo* io, WarpComplete complete,
                     const void* op_data = nullptr);
int lane_id();  // of the calling thread

// cp.async as the PTX ISA defines it, with the latest completion the ISA allows, so that a kernel
// reading shared memory before it waits sees stale bytes here as it could on the device:
// cp_async records the copy of `bytes` (4, 8 or 16; the first `src_bytes` from `src`, the rest
// zero) into the calling thread's open group; cp_async_commit closes that group;
// cp_async_wait(n) performs the copies of every committed group but the newest n.
void cp_async(void* dst, const void* src, unsigned bytes, unsigned src_bytes);
void cp_async_commit();
void cp_async_wait(unsigned pending_groups);

// A launch as the shim hands it over: `thread_body(args)` runs one CUDA thread of the kernel.
struct LaunchRequest {
    const char* name;  // the kernel, for messages
    const void* kernel;
    dim3 grid;
    dim3 block;
    size_t dynamic_shared_bytes;
    void (*thread_body)(const void* args);
    const void* args;
};
// Checks the configuration (an invalid one sets the last error and runs nothing, as CUDA does),
// then runs every block before returning: the emulated streams execute in issue order. On a
// stream being captured (CUDA graphs) the launch is recorded instead; `args` owns what
// request.args points to, so a recorded launch keeps its arguments.
void launch(const LaunchRequest& request, cudaStream_t stream, std::shared_ptr<const void> args);

// How the engine schedules work. GNET_EMU_ORDER (forward|reverse|shuffle), GNET_EMU_SEED and
// GNET_EMU_THREADS (host threads running blocks; default: all cores) set the start; tests change
// it to show that a result does not depend on the schedule.
enum class FiberOrder { Forward, Reverse, Shuffle };
struct Schedule {
    FiberOrder order = FiberOrder::Forward;  // the order fibers resume in between switch points
    uint64_t seed = 1;                       // of the shuffles
    unsigned host_threads = 1;               // at most the number the engine started with
    bool reverse_blocks = false;             // hand out blocks from the last one down
};
Schedule schedule();
void set_schedule(const Schedule& s);

// Kernel arguments that are raw pointers must point into emulated device memory (or pinned host
// memory, which a GPU can address) or be null; anything else sets the last error and is false.
bool check_kernel_pointer(const char* kernel, int arg_index, const void* p);

}  // namespace gnet::emu
