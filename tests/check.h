// Comparators shared by every test: |got - ref| <= atol + rtol * |ref|, every value finite.
// A failure reports the max abs/rel error, the worst index and the first mismatches.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <cstdio>
#include <string>
#include <vector>

namespace gnet::test {

struct Tolerance {
    double atol;
    double rtol;
};

struct Comparison {
    bool ok = true;
    std::string report;
};

template <class A, class B>
Comparison compare_arrays(const A* got, const B* ref, size_t n, Tolerance tol) {
    Comparison c;
    double max_abs = 0, max_rel = 0;
    size_t worst = 0, bad = 0, nonfinite = 0;
    std::string first;
    for (size_t i = 0; i < n; ++i) {
        double g = double(got[i]), r = double(ref[i]);
        if (!std::isfinite(g) || !std::isfinite(r)) {
            if (nonfinite++ < 3)
                first += "  [" + std::to_string(i) + "] non-finite got=" + std::to_string(g) +
                         " ref=" + std::to_string(r) + "\n";
            continue;
        }
        double abs_err = std::fabs(g - r);
        double rel_err = abs_err / std::max(std::fabs(r), 1e-30);
        if (abs_err > max_abs) {
            max_abs = abs_err;
            worst = i;
        }
        if (std::fabs(r) > tol.atol) max_rel = std::max(max_rel, rel_err);
        if (abs_err > tol.atol + tol.rtol * std::fabs(r)) {
            if (bad++ < 5) {
                char buf[160];
                std::snprintf(buf, sizeof buf, "  [%zu] got=%.9g ref=%.9g abs=%.3g\n", i, g, r,
                              abs_err);
                first += buf;
            }
        }
    }
    c.ok = bad == 0 && nonfinite == 0;
    char head[256];
    std::snprintf(head, sizeof head,
                  "%zu values, %zu mismatches, %zu non-finite; max abs err %.3g at [%zu], max rel "
                  "err %.3g (atol %.3g, rtol %.3g)\n",
                  n, bad, nonfinite, max_abs, worst, max_rel, tol.atol, tol.rtol);
    c.report = head + first;
    return c;
}

template <class A, class B>
Comparison compare_arrays(const std::vector<A>& got, const std::vector<B>& ref, Tolerance tol) {
    if (got.size() != ref.size()) {
        Comparison c;
        c.ok = false;
        c.report = "size mismatch: got " + std::to_string(got.size()) + " values, ref " +
                   std::to_string(ref.size());
        return c;
    }
    return compare_arrays(got.data(), ref.data(), got.size(), tol);
}

template <class T>
bool all_finite(const std::vector<T>& v) {
    for (const T& x : v)
        if (!std::isfinite(double(x))) return false;
    return true;
}

}  // namespace gnet::test

// CHECK that two arrays (vectors, or pointer + count) agree; prints the report when not.
#define GNET_CHECK_CLOSE(got, ref, tol)                                     \
    do {                                                                    \
        auto gnet_cmp_ = ::gnet::test::compare_arrays((got), (ref), (tol)); \
        INFO(gnet_cmp_.report);                                             \
        CHECK(gnet_cmp_.ok);                                                \
    } while (0)

#define GNET_CHECK_CLOSE_N(got, ref, n, tol)                                     \
    do {                                                                         \
        auto gnet_cmp_ = ::gnet::test::compare_arrays((got), (ref), (n), (tol)); \
        INFO(gnet_cmp_.report);                                                  \
        CHECK(gnet_cmp_.ok);                                                     \
    } while (0)
