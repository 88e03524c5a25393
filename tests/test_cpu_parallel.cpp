// The fast CPU backend's worker pool: every index once, contiguous per-thread ranges, nested and
// concurrent calls run inline (no deadlock), an exception in any range reaches the caller.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "kernels/cpu_parallel.h"

using namespace gnet;

TEST_CASE("parallel_for visits every index exactly once, in contiguous ranges") {
    for (int64_t n : {0, 1, 2, 3, 17, 1000}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        std::atomic<int> ranges{0};
        cpu_fast::parallel_for(n, [&](int64_t b, int64_t e) {
            CHECK(b < e);
            ++ranges;
            for (int64_t i = b; i < e; ++i)
                ++hits[size_t(i)];
        });
        for (auto& h : hits)
            CHECK(h.load() == 1);
        CHECK(ranges.load() <= std::max(1, cpu_fast::thread_count()));
    }
}

TEST_CASE("nested and concurrent parallel_for calls complete") {
    std::atomic<int64_t> sum{0};
    cpu_fast::parallel_for_each(8, [&](int64_t i) {
        cpu_fast::parallel_for_each(10, [&](int64_t j) { sum += i * 10 + j; });
    });
    CHECK(sum.load() == 79 * 80 / 2);
    std::atomic<int64_t> a{0}, b{0};
    std::thread other([&] {
        for (int r = 0; r < 50; ++r)
            cpu_fast::parallel_for_each(100, [&](int64_t i) { a += i; });
    });
    for (int r = 0; r < 50; ++r)
        cpu_fast::parallel_for_each(100, [&](int64_t i) { b += i; });
    other.join();
    CHECK(a.load() == 50 * 4950);
    CHECK(b.load() == 50 * 4950);
}

TEST_CASE("an exception in a parallel range reaches the caller; the pool keeps working") {
    CHECK_THROWS_WITH_AS(cpu_fast::parallel_for_each(100,
                                                     [&](int64_t i) {
                                                         if (i == 99)
                                                             throw std::runtime_error("boom");
                                                     }),
                         "boom", std::runtime_error);
    std::atomic<int> count{0};
    cpu_fast::parallel_for_each(100, [&](int64_t) { ++count; });
    CHECK(count.load() == 100);
}
