// The emulated device's execution engine: blocks on host worker threads, CUDA threads as fibers
// (Boost.Context), barriers and warp collectives as the points where fibers switch.
//
// A block runs on one host thread from start to end: its fibers are resumed in rounds, in the
// order GNET_EMU_ORDER asks for (forward, reverse, or a fresh shuffle every round), each until it
// reaches a barrier, a warp collective or its end. __syncthreads releases its waiters when the
// last live thread of the block arrives; a warp collective completes when the last lane named in
// its mask arrives. Everything CUDA leaves undefined and this engine can see is an error that
// names the kernel, the block and the thread: a barrier that only part of the block reaches,
// threads at different barriers, a collective whose mask names an absent or exited lane or leaves
// out its caller, lanes that disagree on a collective, a block that can make no progress.
#include <sys/mman.h>
#include <unistd.h>

#include <boost/context/fiber.hpp>
#include <boost/context/stack_context.hpp>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "emu/runtime_internal.h"

namespace gnet::emu {

thread_local const uint3* tls_thread_idx = nullptr;
thread_local const BlockContext* tls_block = nullptr;

namespace ctx = boost::context;

namespace {

// ---------------------------------------------------------------------------------------------
// Settings: the environment's, changed by set_schedule (read once per launch)
// ---------------------------------------------------------------------------------------------
struct Settings {
    Schedule schedule;
    unsigned max_threads = 1;  // host threads the pool was made for
    size_t stack_bytes = 256 * 1024;
};

Settings from_environment() {
    Settings s;
    if (const char* o = std::getenv("GNET_EMU_ORDER")) {
        if (!std::strcmp(o, "reverse"))
            s.schedule.order = FiberOrder::Reverse;
        else if (!std::strcmp(o, "shuffle"))
            s.schedule.order = FiberOrder::Shuffle;
        else if (*o && std::strcmp(o, "forward")) {
            std::fprintf(stderr, "GNET_EMU_ORDER=%s: expected forward, reverse or shuffle\n", o);
            std::exit(2);
        }
    }
    s.max_threads = std::max(1u, std::thread::hardware_concurrency());
    if (const char* t = std::getenv("GNET_EMU_THREADS"))
        s.max_threads = unsigned(std::max(1, std::atoi(t)));
    s.schedule.host_threads = s.max_threads;
    if (const char* sd = std::getenv("GNET_EMU_SEED"))
        s.schedule.seed = std::strtoull(sd, nullptr, 10);
    if (const char* st = std::getenv("GNET_EMU_STACK_KB"))
        s.stack_bytes = size_t(std::max(16, std::atoi(st))) * 1024;
    return s;
}

std::mutex& settings_mutex() {
    static std::mutex m;
    return m;
}

Settings& settings_storage() {
    static Settings s = from_environment();
    return s;
}

Settings settings() {
    std::lock_guard<std::mutex> lock(settings_mutex());
    return settings_storage();
}

std::string dim_string(uint3 v) {
    return "(" + std::to_string(v.x) + "," + std::to_string(v.y) + "," + std::to_string(v.z) + ")";
}

std::string hex(unsigned v) {
    char b[16];
    std::snprintf(b, sizeof b, "0x%08x", v);
    return b;
}

// Thrown inside a fiber: a rule of the execution model was broken (the message says which).
struct KernelFault {
    std::string what;
};
// Thrown inside a suspended fiber when its block is abandoned after a fault elsewhere.
struct BlockAbort {};

// ---------------------------------------------------------------------------------------------
// Block state
// ---------------------------------------------------------------------------------------------
enum class LaneState { Runnable, AtBarrier, AtWarp, Done };

struct Lane;

struct WarpOp {
    const char* kind;
    unsigned mask;
    unsigned arrived;
    WarpIo* io[32];
    WarpComplete complete;
    const void* data;
};

struct Warp {
    unsigned present = 0;  // lanes that exist (a partial last warp has fewer)
    unsigned exited = 0;
    std::vector<WarpOp> pending;  // collectives some lanes are waiting in (disjoint masks)
};

struct Block {
    const LaunchRequest* request = nullptr;
    BlockContext context{};
    unsigned threads = 0;
    unsigned done = 0;
    unsigned at_barrier = 0;
    const char* barrier_file = nullptr;
    int barrier_line = 0;
    std::vector<Warp> warps;
    bool faulted = false;
    bool aborting = false;
    std::string fault;
};

struct Lane {
    ctx::fiber fiber;  // the suspended fiber, held by the scheduler
    ctx::fiber sink;   // held by the running fiber: the way back to the scheduler
    uint3 tid{};
    unsigned linear = 0;
    LaneState state = LaneState::Done;
    const void* stack_bottom = nullptr;  // the fiber's stack (for AddressSanitizer)
    size_t stack_size = 0;
    void* fake_stack = nullptr;
    // cp.async copies issued and not yet waited for (performed by cp_async_wait, see engine.h).
    struct AsyncCopy {
        void* dst;
        const void* src;
        unsigned bytes, src_bytes;
        unsigned group;  // the commit group it belongs to (committed_groups when still open)
    };
    std::vector<AsyncCopy> async;
    unsigned committed_groups = 0;
};

// One per host thread that runs blocks: its fibers (reused from block to block, so a block costs
// no stack allocation) and its dynamic shared memory.
struct Worker {
    std::vector<std::unique_ptr<Lane>> lanes;
    std::vector<unsigned char> shared;
    Block* block = nullptr;
    bool quit = false;
    std::mt19937_64 rng;
    const void* host_stack_bottom = nullptr;  // the host thread's stack (for AddressSanitizer)
    size_t host_stack_size = 0;

    ~Worker();
};

// Every switch between the host thread's stack and a fiber's goes through these two, which tell
// AddressSanitizer (when built with it) which stack is live: it cannot follow Boost.Context's
// stack switches on its own.
void enter_fiber(Worker& w, Lane& l) {
#if defined(__SANITIZE_ADDRESS__)
    void* host_fake = nullptr;
    __sanitizer_start_switch_fiber(&host_fake, l.stack_bottom, l.stack_size);
    l.fiber = std::move(l.fiber).resume();
    __sanitizer_finish_switch_fiber(host_fake, nullptr, nullptr);
#else
    (void)w;
    l.fiber = std::move(l.fiber).resume();
#endif
}

// Inside the fiber: back to the host thread's stack until resumed; `last` when the fiber ends.
void leave_fiber(Worker& w, Lane& l, bool last) {
#if defined(__SANITIZE_ADDRESS__)
    __sanitizer_start_switch_fiber(last ? nullptr : &l.fake_stack, w.host_stack_bottom,
                                   w.host_stack_size);
    if (last) return;  // the caller returns the sink; Boost switches back
    l.sink = std::move(l.sink).resume();
    __sanitizer_finish_switch_fiber(l.fake_stack, &w.host_stack_bottom, &w.host_stack_size);
#else
    (void)w;
    if (!last) l.sink = std::move(l.sink).resume();
#endif
}

// Called first thing on the fiber's own stack.
void fiber_started(Worker& w) {
#if defined(__SANITIZE_ADDRESS__)
    __sanitizer_finish_switch_fiber(nullptr, &w.host_stack_bottom, &w.host_stack_size);
#else
    (void)w;
#endif
}

Worker::~Worker() {
    quit = true;
    for (auto& l : lanes)
        if (l->fiber) enter_fiber(*this, *l);
}

// Fiber stacks: mmap'ed with a guard page below (an overflow faults instead of corrupting a
// neighbour), and "coloured": lane i's stack top sits i * kColorStep bytes (mod kColorSpan) below
// its region's end. Without it every fiber's hot frame has the same address modulo the page size
// and the stacks of a block fight over the same few cache sets.
class FiberStack {
  public:
    static constexpr size_t kColorStep = 1600, kColorSpan = 64 * 1024;
    FiberStack(size_t bytes, unsigned lane_index, Lane* lane)
        : bytes_(bytes), color_((lane_index * kColorStep) % kColorSpan / 64 * 64), lane_(lane) {}

    ctx::stack_context allocate() {
        const size_t page = size_t(sysconf(_SC_PAGESIZE));
        const size_t total = page + bytes_ + kColorSpan;
        void* base =
            mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (base == MAP_FAILED) throw std::bad_alloc();
        mprotect(base, page, PROT_NONE);
        ctx::stack_context sc;
        sc.size = bytes_ + kColorSpan - color_;
        sc.sp = static_cast<char*>(base) + total - color_;
        lane_->stack_bottom = static_cast<char*>(sc.sp) - sc.size;
        lane_->stack_size = sc.size;
        return sc;
    }
    void deallocate(ctx::stack_context& sc) noexcept {
        const size_t page = size_t(sysconf(_SC_PAGESIZE));
        const size_t total = page + bytes_ + kColorSpan;
        munmap(static_cast<char*>(sc.sp) + color_ - total, total);
    }

  private:
    size_t bytes_, color_;
    Lane* lane_;
};

thread_local Worker* tls_worker = nullptr;
thread_local Lane* tls_lane = nullptr;

Worker& worker() {
    thread_local Worker w;
    tls_worker = &w;
    return w;
}

Block& current_block() {
    if (!tls_worker || !tls_worker->block || !tls_lane)
        outside_kernel("a barrier or warp collective");
    return *tls_worker->block;
}

std::string where(const Block& b, const Lane& l) {
    return "kernel " + std::string(b.request->name) + ", block " + dim_string(b.context.block_idx) +
           ", thread " + dim_string(l.tid);
}

[[noreturn]] void fault(const std::string& what) {
    throw KernelFault{where(current_block(), *tls_lane) + ": " + what};
}

// Back to the scheduler; returns when the scheduler resumes this fiber.
void yield() {
    leave_fiber(*tls_worker, *tls_lane, false);
    if (tls_worker->block->aborting) throw BlockAbort{};
}

void record_fault(Block& b, const std::string& what) {
    if (!b.faulted) {
        b.faulted = true;
        b.fault = what;
    }
}

// A thread has returned from the kernel: nobody may be waiting for it.
void on_exit(Block& b, Lane& l) {
    l.state = LaneState::Done;
    ++b.done;
    Warp& w = b.warps[l.linear / 32];
    const unsigned bit = 1u << (l.linear % 32);
    w.exited |= bit;
    if (b.faulted) return;
    for (const WarpOp& op : w.pending)
        if (op.mask & bit & ~op.arrived)
            record_fault(b, where(b, l) + ": exited while lanes " + hex(op.arrived) +
                                " wait for it in " + op.kind + " (mask " + hex(op.mask) + ")");
    if (b.at_barrier > 0)
        record_fault(b, where(b, l) + ": exited while " + std::to_string(b.at_barrier) + " of " +
                            std::to_string(b.threads) + " threads wait at __syncthreads (" +
                            b.barrier_file + ":" + std::to_string(b.barrier_line) +
                            "): a barrier reached by only part of the block");
}

void fiber_loop(Worker& w, Lane& l) {
    while (!w.quit) {
        Block& b = *w.block;
        try {
            // A lane not yet started when its block is abandoned skips the kernel.
            if (!b.aborting) b.request->thread_body(b.request->args);
        } catch (const BlockAbort&) {
        } catch (const KernelFault& f) {
            record_fault(b, f.what);
        } catch (const std::exception& e) {
            record_fault(b, where(b, l) + ": exception in device code: " + e.what());
        }
        on_exit(b, l);
        leave_fiber(w, l, false);
    }
    leave_fiber(w, l, true);
}

void ensure_lanes(Worker& w, unsigned n) {
    while (w.lanes.size() < n) {
        auto lane = std::make_unique<Lane>();
        Lane* lp = lane.get();
        Worker* wp = &w;
        lane->fiber = ctx::fiber(std::allocator_arg,
                                 FiberStack(settings().stack_bytes, unsigned(w.lanes.size()), lp),
                                 [wp, lp](ctx::fiber&& sink) {
                                     fiber_started(*wp);
                                     lp->sink = std::move(sink);
                                     fiber_loop(*wp, *lp);
                                     return std::move(lp->sink);
                                 });
        w.lanes.push_back(std::move(lane));
    }
}

std::string deadlock_report(const Block& b) {
    std::string s = "no thread can go on (" + std::to_string(b.done) + " exited, " +
                    std::to_string(b.at_barrier) + " at __syncthreads";
    if (b.at_barrier) s += " " + std::string(b.barrier_file) + ":" + std::to_string(b.barrier_line);
    s += ")";
    for (size_t wi = 0; wi < b.warps.size(); ++wi)
        for (const WarpOp& op : b.warps[wi].pending)
            s += "; warp " + std::to_string(wi) + ": lanes " + hex(op.arrived) + " wait in " +
                 op.kind + " for mask " + hex(op.mask);
    return s;
}

void run_block(Worker& w, const LaunchRequest& r, const Schedule& sched, uint64_t sequence,
               uint3 block_idx, Block& b) {
    const unsigned n = r.block.x * r.block.y * r.block.z;
    ensure_lanes(w, n);
    if (w.shared.size() < r.dynamic_shared_bytes + 128)
        w.shared.resize(r.dynamic_shared_bytes + 128);
    unsigned char* smem = w.shared.data();
    smem += (128 - reinterpret_cast<uintptr_t>(smem) % 128) % 128;
    // Shared memory starts undefined on the device: here it starts as NaN bytes.
    std::memset(smem, 0xff, r.dynamic_shared_bytes);

    b = Block{};
    b.request = &r;
    b.context = BlockContext{block_idx, r.block, r.grid, smem, r.dynamic_shared_bytes};
    b.threads = n;
    b.warps.assign((n + 31) / 32, Warp{});
    for (unsigned i = 0; i < n; ++i) {
        Lane& l = *w.lanes[i];
        l.linear = i;
        l.tid = uint3{i % r.block.x, (i / r.block.x) % r.block.y, i / (r.block.x * r.block.y)};
        l.state = LaneState::Runnable;
        l.async.clear();  // copies a thread of the last block never waited for are dropped
        l.committed_groups = 0;
        b.warps[i / 32].present |= 1u << (i % 32);
    }
    w.block = &b;
    tls_block = &b.context;

    std::vector<unsigned> order;
    if (sched.order == FiberOrder::Shuffle) {
        order.resize(n);
        std::iota(order.begin(), order.end(), 0u);
        w.rng.seed((sched.seed + sequence) * 0x9E3779B97F4A7C15ull + (uint64_t(block_idx.z) << 42) +
                   (uint64_t(block_idx.y) << 21) + block_idx.x);
    }

    // Resumes lane i if it can run; false when it cannot.
    auto step = [&](unsigned i) {
        Lane& l = *w.lanes[i];
        if (l.state != LaneState::Runnable) return false;
        tls_lane = &l;
        tls_thread_idx = &l.tid;
        enter_fiber(w, l);
        return true;
    };
    const unsigned warps = (n + 31) / 32;
    while (b.done < n) {
        bool progress = false;
        if (sched.order == FiberOrder::Shuffle) {
            // Every round a fresh permutation of all the block's threads.
            std::shuffle(order.begin(), order.end(), w.rng);
            for (unsigned i : order) {
                progress |= step(i);
                if (b.faulted) break;
            }
        } else {
            // Warp by warp (forward: warp 0 first, lane 0 first; reverse: the opposite), each warp
            // until all its lanes wait at the block barrier or have exited: a warp's shuffles then
            // find its 32 stacks still in cache.
            for (unsigned k = 0; k < warps && !b.faulted; ++k) {
                const unsigned wi = sched.order == FiberOrder::Forward ? k : warps - 1 - k;
                const unsigned first = wi * 32, last = std::min(n, first + 32);
                for (bool warp_progress = true; warp_progress && !b.faulted;) {
                    warp_progress = false;
                    for (unsigned j = first; j < last && !b.faulted; ++j)
                        warp_progress |=
                            step(sched.order == FiberOrder::Forward ? j : last - 1 - (j - first));
                    progress |= warp_progress;
                }
            }
        }
        if (!b.faulted && !progress)
            record_fault(b, "kernel " + std::string(r.name) + ", block " + dim_string(block_idx) +
                                ": " + deadlock_report(b));
        if (b.faulted) {
            // Unwind every fiber still inside the kernel, so each is ready for the next block.
            b.aborting = true;
            for (unsigned i = 0; i < n; ++i) {
                Lane& l = *w.lanes[i];
                if (l.state == LaneState::Done) continue;
                tls_lane = &l;
                tls_thread_idx = &l.tid;
                enter_fiber(w, l);
            }
            break;
        }
    }
    tls_lane = nullptr;
    tls_thread_idx = nullptr;
    tls_block = nullptr;
    w.block = nullptr;
}

// ---------------------------------------------------------------------------------------------
// Host worker pool: the launching thread and settings().threads - 1 helpers take blocks from a
// shared counter. Blocks are independent (no atomics in gnet's kernels), so results do not
// depend on which host thread ran which block.
// ---------------------------------------------------------------------------------------------
struct Grid {
    const LaunchRequest* request;
    Schedule schedule;
    uint64_t sequence;  // the launch's number in this process (varies the shuffles)
    uint64_t blocks;
    std::atomic<uint64_t> next{0};
    std::atomic<bool> failed{false};
    std::mutex fault_mutex;
    uint64_t fault_block = ~0ull;
    std::string fault;
};

void run_blocks(Grid& g) {
    Worker& w = worker();
    Block b;
    const dim3 grid = g.request->grid;
    for (;;) {
        const uint64_t k = g.next.fetch_add(1);
        if (k >= g.blocks || g.failed.load()) return;
        const uint64_t i = g.schedule.reverse_blocks ? g.blocks - 1 - k : k;
        const uint3 idx{unsigned(i % grid.x), unsigned((i / grid.x) % grid.y),
                        unsigned(i / (uint64_t(grid.x) * grid.y))};
        run_block(w, *g.request, g.schedule, g.sequence, idx, b);
        if (b.faulted) {
            std::lock_guard<std::mutex> lock(g.fault_mutex);
            if (i < g.fault_block) {  // report the first faulting block in grid order
                g.fault_block = i;
                g.fault = b.fault;
            }
            g.failed = true;
        }
    }
}

class Pool {
  public:
    static Pool& get() {
        static Pool pool(settings().max_threads - 1);
        return pool;
    }

    // One launch at a time, from whichever host thread: the device runs them in issue order.
    void run(Grid& g) {
        std::lock_guard<std::mutex> one_at_a_time(launch_);
        const unsigned helpers = unsigned(std::min<uint64_t>(
            {uint64_t(threads_.size()), uint64_t(g.schedule.host_threads) - 1, g.blocks - 1}));
        if (helpers == 0) {
            run_blocks(g);
            return;
        }
        std::unique_lock<std::mutex> lock(m_);
        grid_ = &g;
        wanted_ = helpers;
        busy_ = helpers;
        ++generation_;
        start_.notify_all();
        lock.unlock();
        run_blocks(g);
        lock.lock();
        finished_.wait(lock, [&] { return busy_ == 0; });
        grid_ = nullptr;
    }

    ~Pool() {
        {
            std::lock_guard<std::mutex> lock(m_);
            quit_ = true;
        }
        start_.notify_all();
        for (std::thread& t : threads_)
            t.join();
    }

  private:
    explicit Pool(unsigned n) {
        for (unsigned i = 0; i < n; ++i)
            threads_.emplace_back([this] { loop(); });
    }

    void loop() {
        uint64_t seen = 0;
        for (;;) {
            std::unique_lock<std::mutex> lock(m_);
            start_.wait(lock, [&] { return quit_ || (generation_ != seen && wanted_ > 0); });
            if (quit_) return;
            seen = generation_;
            --wanted_;
            Grid* g = grid_;
            lock.unlock();
            run_blocks(*g);
            lock.lock();
            if (--busy_ == 0) finished_.notify_all();
        }
    }

    std::vector<std::thread> threads_;
    std::mutex launch_, m_;
    std::condition_variable start_, finished_;
    Grid* grid_ = nullptr;
    unsigned wanted_ = 0, busy_ = 0;
    uint64_t generation_ = 0;
    bool quit_ = false;
};

// GNET_EMU_PROFILE=1: at exit, per kernel the launches, blocks, threads and host seconds spent,
// most expensive first (where an emulated test spends its time).
class Profile {
  public:
    static Profile* get() {
        static Profile* p = std::getenv("GNET_EMU_PROFILE") ? new Profile : nullptr;
        return p;
    }
    void add(const char* name, uint64_t blocks, uint64_t threads, double seconds) {
        std::lock_guard<std::mutex> lock(m_);
        Row& r = rows_[name];
        ++r.launches;
        r.blocks += blocks;
        r.threads += threads;
        r.seconds += seconds;
    }
    ~Profile() = default;

  private:
    struct Row {
        uint64_t launches = 0, blocks = 0, threads = 0;
        double seconds = 0;
    };
    Profile() {
        std::atexit([] { get()->print(); });
    }
    void print() {
        std::vector<std::pair<std::string, Row>> v(rows_.begin(), rows_.end());
        std::sort(v.begin(), v.end(),
                  [](const auto& a, const auto& b) { return a.second.seconds > b.second.seconds; });
        std::fprintf(stderr, "gnet emulated device profile: %-60s %9s %11s %13s %9s\n", "kernel",
                     "launches", "blocks", "threads", "seconds");
        for (const auto& [name, r] : v)
            std::fprintf(stderr, "gnet emulated device profile: %-60s %9llu %11llu %13llu %9.3f\n",
                         name.c_str(), (unsigned long long)r.launches, (unsigned long long)r.blocks,
                         (unsigned long long)r.threads, r.seconds);
    }
    std::mutex m_;
    std::map<std::string, Row> rows_;
};

bool check_config(const LaunchRequest& r, cudaStream_t stream) {
    const std::string k = "launch of " + std::string(r.name) + ": ";
    const dim3 g = r.grid, bl = r.block;
    if (!valid_stream(stream)) {
        set_error(cudaErrorInvalidResourceHandle, k + "invalid stream");
        return false;
    }
    if (!g.x || !g.y || !g.z || !bl.x || !bl.y || !bl.z) {
        set_error(cudaErrorInvalidConfiguration,
                  k + "empty grid " + dim_string(g) + " or block " + dim_string(bl));
        return false;
    }
    const unsigned bd[3] = {bl.x, bl.y, bl.z}, gd[3] = {g.x, g.y, g.z};
    const uint64_t threads = uint64_t(bl.x) * bl.y * bl.z;
    for (int i = 0; i < 3; ++i)
        if (bd[i] > kMaxBlockDim[i] || threads > kMaxThreadsPerBlock) {
            set_error(cudaErrorInvalidConfiguration,
                      k + "block " + dim_string(bl) + " exceeds the limits (1024 threads; 1024, " +
                          "1024, 64 per axis)");
            return false;
        }
    for (int i = 0; i < 3; ++i)
        if (gd[i] > kMaxGridDim[i]) {
            set_error(cudaErrorInvalidConfiguration,
                      k + "grid " + dim_string(g) + " exceeds the limits (2^31-1, 65535, 65535)");
            return false;
        }
    const size_t limit = max_dynamic_shared(r.kernel);
    if (r.dynamic_shared_bytes > limit) {
        set_error(cudaErrorInvalidValue,
                  k + std::to_string(r.dynamic_shared_bytes) +
                      " bytes of dynamic shared memory exceed the kernel's limit of " +
                      std::to_string(limit) +
                      (limit == kDefaultDynamicShared
                           ? " (raise it with cudaFuncSetAttribute(kernel, "
                             "cudaFuncAttributeMaxDynamicSharedMemorySize, bytes))"
                           : ""));
        return false;
    }
    return true;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Called from device code
// ---------------------------------------------------------------------------------------------
void outside_kernel(const char* what) {
    std::fprintf(stderr, "gnet emulated device: %s used outside a kernel\n", what);
    std::abort();
}

int lane_id() {
    current_block();
    return int(tls_lane->linear % 32);
}

void syncthreads(const char* file, int line) {
    Block& b = current_block();
    Lane& l = *tls_lane;
    if (b.at_barrier == 0) {
        b.barrier_file = file;
        b.barrier_line = line;
    } else if (line != b.barrier_line ||
               (file != b.barrier_file && std::strcmp(file, b.barrier_file) != 0)) {
        fault("waits at __syncthreads " + std::string(file) + ":" + std::to_string(line) +
              " while " + std::to_string(b.at_barrier) + " threads wait at " + b.barrier_file +
              ":" + std::to_string(b.barrier_line));
    }
    if (b.done > 0)
        fault("reaches __syncthreads (" + std::string(file) + ":" + std::to_string(line) +
              ") after " + std::to_string(b.done) + " of " + std::to_string(b.threads) +
              " threads of the block have exited: a barrier reached by only part of the block");
    l.state = LaneState::AtBarrier;
    if (++b.at_barrier == b.threads) {
        for (unsigned i = 0; i < b.threads; ++i)
            tls_worker->lanes[i]->state = LaneState::Runnable;
        b.at_barrier = 0;
    }
    yield();
}

void check_shuffle_width(const char* kind, int width) {
    if (width < 1 || width > 32 || (width & (width - 1)) != 0)
        fault(std::string(kind) + ": width " + std::to_string(width) +
              " is not a power of two in [1, 32]");
}

void warp_collective(const char* kind, unsigned mask, WarpIo* io, WarpComplete complete,
                     const void* op_data) {
    Block& b = current_block();
    Lane& l = *tls_lane;
    const unsigned lane = l.linear % 32, bit = 1u << lane;
    Warp& w = b.warps[l.linear / 32];
    if (!(mask & bit))
        fault(std::string(kind) + ": the mask " + hex(mask) + " leaves out the calling lane " +
              std::to_string(lane));
    if (mask & ~w.present)
        fault(std::string(kind) + ": the mask " + hex(mask) + " names lanes " +
              hex(mask & ~w.present) + " that this block does not have (its warp has lanes " +
              hex(w.present) + ")");
    if (mask & w.exited)
        fault(std::string(kind) + ": the mask " + hex(mask) + " names lanes " +
              hex(mask & w.exited) + " that have exited");
    WarpOp* op = nullptr;
    for (WarpOp& p : w.pending)
        if (p.mask & mask) {
            if (p.mask != mask || (p.kind != kind && std::strcmp(p.kind, kind) != 0))
                fault("calls " + std::string(kind) + " with mask " + hex(mask) + " while lanes " +
                      hex(p.arrived) + " wait in " + p.kind + " with mask " + hex(p.mask));
            op = &p;
            break;
        }
    if (!op) {
        w.pending.push_back(WarpOp{kind, mask, 0, {}, complete, op_data});
        op = &w.pending.back();
    }
    op->io[lane] = io;
    op->arrived |= bit;
    if (op->arrived == mask) {
        op->complete(op->io, mask, op->data);
        for (unsigned i = 0; i < 32; ++i)
            if (mask >> i & 1u)
                tls_worker->lanes[(l.linear & ~31u) + i]->state = LaneState::Runnable;
        w.pending.erase(w.pending.begin() + (op - w.pending.data()));
    } else {
        l.state = LaneState::AtWarp;
    }
    yield();
}

void kernel_fault(const char* what) {
    fault(what);
}

void cp_async(void* dst, const void* src, unsigned bytes, unsigned src_bytes) {
    current_block();
    if (bytes != 4 && bytes != 8 && bytes != 16)
        fault("cp.async of " + std::to_string(bytes) + " bytes (4, 8 or 16)");
    if (src_bytes > bytes)
        fault("cp.async: source size " + std::to_string(src_bytes) + " exceeds the copy size " +
              std::to_string(bytes));
    if (reinterpret_cast<uintptr_t>(dst) % bytes ||
        (src_bytes && reinterpret_cast<uintptr_t>(src) % bytes))
        fault("cp.async of " + std::to_string(bytes) +
              " bytes between addresses not aligned to it");
    Lane& l = *tls_lane;
    l.async.push_back(Lane::AsyncCopy{dst, src, bytes, src_bytes, l.committed_groups});
}

void cp_async_commit() {
    current_block();
    ++tls_lane->committed_groups;
}

void cp_async_wait(unsigned pending_groups) {
    current_block();
    Lane& l = *tls_lane;
    // Complete every copy of the committed groups but the newest `pending_groups`.
    const unsigned done =
        l.committed_groups > pending_groups ? l.committed_groups - pending_groups : 0;
    size_t kept = 0;
    for (const Lane::AsyncCopy& c : l.async) {
        if (c.group < done) {
            std::memcpy(c.dst, c.src, c.src_bytes);
            std::memset(static_cast<unsigned char*>(c.dst) + c.src_bytes, 0, c.bytes - c.src_bytes);
        } else {
            l.async[kept++] = c;
        }
    }
    l.async.resize(kept);
}

void complete_ballot(WarpIo* const lanes[32], unsigned mask, const void*) {
    unsigned bits = 0;
    for (int i = 0; i < 32; ++i)
        if ((mask >> i & 1u) && lanes[i]->value) bits |= 1u << i;
    for (int i = 0; i < 32; ++i)
        if (mask >> i & 1u) lanes[i]->value = bits;
}

void complete_nothing(WarpIo* const[32], unsigned, const void*) {}

// ---------------------------------------------------------------------------------------------
// Schedule and launch
// ---------------------------------------------------------------------------------------------
Schedule schedule() {
    return settings().schedule;
}

void set_schedule(const Schedule& s) {
    std::lock_guard<std::mutex> lock(settings_mutex());
    Settings& st = settings_storage();
    st.schedule = s;
    st.schedule.host_threads = std::max(1u, std::min(s.host_threads, st.max_threads));
}

namespace {
cudaError_t run_launch(const LaunchRequest& r) {
    static std::atomic<uint64_t> launches{0};
    Grid g;
    g.request = &r;
    g.schedule = settings().schedule;
    g.sequence = launches.fetch_add(1);
    g.blocks = uint64_t(r.grid.x) * r.grid.y * r.grid.z;
    const auto start = std::chrono::steady_clock::now();
    Pool::get().run(g);
    if (Profile* p = Profile::get())
        p->add(r.name, g.blocks, g.blocks * r.block.x * r.block.y * r.block.z,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    if (g.failed) return set_error(cudaErrorLaunchFailure, "emulated device: " + g.fault);
    return cudaSuccess;
}
}  // namespace

void launch(const LaunchRequest& r, cudaStream_t stream, std::shared_ptr<const void> args) {
    if (tls_lane) outside_kernel("a kernel launch from device code (dynamic parallelism)");
    if (!check_config(r, stream)) return;
    // Run now, or (stream capture) later from a copy of the request, whose arguments `args` owns.
    run_or_record(stream, r.name, [r, args = std::move(args)] { return run_launch(r); });
}

bool check_kernel_pointer(const char* kernel, int arg_index, const void* p) {
    if (!p || memory_kind(p, 0) != MemoryKind::None) return true;
    set_error(cudaErrorInvalidValue, "launch of " + std::string(kernel) + ": argument " +
                                         std::to_string(arg_index) + " is " + describe_pointer(p) +
                                         ", not device memory");
    return false;
}

}  // namespace gnet::emu
