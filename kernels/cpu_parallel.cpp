// The worker pool behind cpu_fast::parallel_for. Workers sleep on a condition variable between
// regions after a short spin (back-to-back layer calls then skip the wake-up latency). An
// exception thrown by fn on any thread is rethrown by parallel_for once every range has ended.
#include "kernels/cpu_parallel.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace gnet::cpu_fast {
namespace {

// How long a worker polls for new work before it sleeps: long enough to bridge the gap between
// two layer calls, short enough not to steal a shared core for long.
constexpr auto kSpin = std::chrono::microseconds(100);

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

thread_local bool t_inside_region = false;

class Pool {
  public:
    explicit Pool(int threads) : threads_(threads) {
        for (int t = 1; t < threads_; ++t)
            workers_.emplace_back([this, t] { work(t); });
    }
    ~Pool() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            stop_ = true;
            ++generation_;
        }
        wake_.notify_all();
        for (std::thread& w : workers_)
            w.join();
    }

    int threads() const { return threads_; }

    void run(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
        std::unique_lock<std::mutex> region(region_mutex_, std::try_to_lock);
        if (!region.owns_lock() || t_inside_region || threads_ == 1 || n <= 1) {
            fn(0, n);
            return;
        }
        t_inside_region = true;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            fn_ = &fn;
            n_ = n;
            pending_.store(threads_ - 1);
            generation_.fetch_add(1);
        }
        wake_.notify_all();
        range(0);
        while (pending_.load(std::memory_order_acquire) != 0)
            std::this_thread::yield();
        t_inside_region = false;
        if (error_) {  // the first exception of any range, rethrown on the calling thread
            std::exception_ptr e = error_;
            error_ = nullptr;
            std::rethrow_exception(e);
        }
    }

  private:
    void range(int t) {
        const int64_t begin = n_ * t / threads_, end = n_ * (t + 1) / threads_;
        if (begin >= end) return;
        try {
            (*fn_)(begin, end);
        } catch (...) {
            std::lock_guard<std::mutex> lock(error_mutex_);
            if (!error_) error_ = std::current_exception();
        }
    }

    void work(int t) {
        t_inside_region = true;
        uint64_t seen = 0;
        for (;;) {
            const auto spin_until = std::chrono::steady_clock::now() + kSpin;
            while (generation_.load() == seen && std::chrono::steady_clock::now() < spin_until)
                for (int i = 0; i < 64; ++i)
                    cpu_relax();
            {
                std::unique_lock<std::mutex> lock(mutex_);
                wake_.wait(lock, [&] { return generation_.load() != seen; });
                seen = generation_.load();
                if (stop_) return;
            }
            range(t);
            pending_.fetch_sub(1, std::memory_order_release);
        }
    }

    const int threads_;
    std::vector<std::thread> workers_;
    std::mutex region_mutex_;  // one region at a time
    std::mutex mutex_;
    std::condition_variable wake_;
    std::atomic<uint64_t> generation_{0};
    std::atomic<int> pending_{0};
    const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
    std::mutex error_mutex_;
    std::exception_ptr error_;
    int64_t n_ = 0;
    bool stop_ = false;
};

int configured_threads() {
    if (const char* s = std::getenv("GNET_CPU_THREADS")) {
        const int v = std::atoi(s);
        if (v >= 1) return std::min(v, 256);
    }
    return int(std::max(1u, std::thread::hardware_concurrency()));
}

Pool& pool() {
    static Pool p(configured_threads());
    return p;
}

}  // namespace

int thread_count() {
    return pool().threads();
}

void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
    if (n <= 0) return;
    pool().run(n, fn);
}

}  // namespace gnet::cpu_fast
