// A persistent pool of CPU worker threads for the fast CPU backend (gnet::cpu_fast).
//
// parallel_for(n, fn) splits [0, n) into one contiguous range per thread (the same split for the
// same n and thread count, so results never depend on scheduling) and runs fn(begin, end) on
// each, the caller taking the first range; it returns when every range is done. One parallel
// region runs at a time: a call made while another is running (from another thread, or nested
// inside fn) runs its whole range inline on the calling thread, so callers never deadlock. If fn
// throws, the first exception is rethrown on the calling thread after every range has finished.
// Threads: GNET_CPU_THREADS when set (>= 1), else std::thread::hardware_concurrency().
#pragma once

#include <cstdint>
#include <functional>

namespace gnet::cpu_fast {

int thread_count();

void parallel_for(int64_t n, const std::function<void(int64_t begin, int64_t end)>& fn);

// fn(i) for every i in [0, n), in contiguous per-thread ranges.
template <class Fn>
void parallel_for_each(int64_t n, const Fn& fn) {
    parallel_for(n, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i)
            fn(i);
    });
}

}  // namespace gnet::cpu_fast
