// Determinism checks: run a computation under several schedules and compare the results bit for
// bit. On the emulated device the schedules differ for real (fiber order forward, reverse and
// shuffled with two seeds; one host thread with blocks in reverse order and all host threads), so a
// result that depends on the order threads or blocks run in fails. On a GPU the computation runs
// twice, in whatever order the hardware picks (a float atomic there would show).
#pragma once

#include <cuda_runtime.h>

#include <functional>
#include <vector>

namespace gnet::test {

template <class F>
auto results_under_varied_schedules(F compute) -> std::vector<decltype(compute())> {
    std::vector<decltype(compute())> out;
#if defined(GNET_EMU_DEVICE)
    using emu::FiberOrder;
    const emu::Schedule saved = emu::schedule();
    const emu::Schedule variants[] = {
        {FiberOrder::Forward, 1, 1, false},
        {FiberOrder::Reverse, 1, 1, true},
        {FiberOrder::Shuffle, 7, 64, false},
        {FiberOrder::Shuffle, 8, 1, true},
    };
    for (const emu::Schedule& s : variants) {
        emu::set_schedule(s);
        out.push_back(compute());
    }
    emu::set_schedule(saved);
#else
    out.push_back(compute());
    out.push_back(compute());
#endif
    return out;
}

// True when every result equals the first one.
template <class T>
bool all_equal(const std::vector<T>& results) {
    for (const T& r : results)
        if (!(r == results.front())) return false;
    return true;
}

}  // namespace gnet::test
