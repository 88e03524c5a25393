// linear CPU twin: against direct double loops, central finite differences, += semantics of dw/db,
// optional dx/db/bias.
#include <doctest/doctest.h>

#include <algorithm>
#include <functional>
#include <random>
#include <vector>

#include "kernels/error.h"
#include "kernels/linear.h"
#include "tests/check.h"

using namespace gnet;
using gnet::test::Tolerance;

namespace {

constexpr Tolerance kTwinVsDirect{1e-4, 1e-4};
// linear is affine in x, w, b: a large step is exact up to float rounding of the forward pass.
constexpr Tolerance kFiniteDiff{2e-3, 2e-3};
constexpr double kFdStep = 0.5;

std::vector<float> random_vector(size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    std::vector<float> v(n);
    for (float& e : v)
        e = u(rng);
    return v;
}

double loss(const LinearParams& p, const std::vector<float>& x, const std::vector<float>& w,
            const std::vector<float>& b, const std::vector<float>& r) {
    std::vector<float> y(size_t(p.N) * p.OUT);
    cpu::linear_forward(p, x.data(), w.data(), b.data(), y.data());
    double s = 0;
    for (size_t i = 0; i < y.size(); ++i)
        s += double(y[i]) * r[i];
    return s;
}

// Central differences of `loss` with respect to every element of v (restored afterwards).
std::vector<double> finite_differences(std::vector<float>& v, const std::function<double()>& f) {
    std::vector<double> g(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
        const float keep = v[i];
        v[i] = float(keep + kFdStep);
        const double up = f();
        v[i] = float(keep - kFdStep);
        const double down = f();
        v[i] = keep;
        g[i] = (up - down) / (2 * kFdStep);
    }
    return g;
}

}  // namespace

TEST_CASE("linear forward and backward match direct double loops") {
    for (LinearParams p :
         {LinearParams{1, 7, 3}, LinearParams{5, 512, 10}, LinearParams{33, 17, 64}}) {
        CAPTURE(p.N);
        CAPTURE(p.IN);
        CAPTURE(p.OUT);
        const auto x = random_vector(size_t(p.N) * p.IN, 1);
        const auto w = random_vector(size_t(p.OUT) * p.IN, 2);
        const auto b = random_vector(size_t(p.OUT), 3);
        const auto dy = random_vector(size_t(p.N) * p.OUT, 4);
        const auto dw0 = random_vector(size_t(p.OUT) * p.IN, 5);
        const auto db0 = random_vector(size_t(p.OUT), 6);

        std::vector<double> y_ref(size_t(p.N) * p.OUT), y_nob(y_ref.size());
        std::vector<double> dx_ref(size_t(p.N) * p.IN), dw_ref(dw0.size()), db_ref(db0.size());
        for (int n = 0; n < p.N; ++n)
            for (int o = 0; o < p.OUT; ++o) {
                double s = 0;
                for (int i = 0; i < p.IN; ++i)
                    s += double(x[n * p.IN + i]) * w[o * p.IN + i];
                y_nob[n * p.OUT + o] = s;
                y_ref[n * p.OUT + o] = s + b[o];
            }
        for (int n = 0; n < p.N; ++n)
            for (int i = 0; i < p.IN; ++i) {
                double s = 0;
                for (int o = 0; o < p.OUT; ++o)
                    s += double(dy[n * p.OUT + o]) * w[o * p.IN + i];
                dx_ref[n * p.IN + i] = s;
            }
        for (int o = 0; o < p.OUT; ++o) {
            double sb = db0[o];
            for (int n = 0; n < p.N; ++n)
                sb += dy[n * p.OUT + o];
            db_ref[o] = sb;
            for (int i = 0; i < p.IN; ++i) {
                double s = dw0[o * p.IN + i];
                for (int n = 0; n < p.N; ++n)
                    s += double(dy[n * p.OUT + o]) * x[n * p.IN + i];
                dw_ref[o * p.IN + i] = s;
            }
        }

        std::vector<float> y(y_ref.size(), 9.f);
        cpu::linear_forward(p, x.data(), w.data(), b.data(), y.data());
        GNET_CHECK_CLOSE(y, y_ref, kTwinVsDirect);
        std::fill(y.begin(), y.end(), 9.f);
        cpu::linear_forward(p, x.data(), w.data(), nullptr, y.data());
        GNET_CHECK_CLOSE(y, y_nob, kTwinVsDirect);

        std::vector<float> dx(dx_ref.size(), 9.f), dw = dw0, db = db0;
        cpu::linear_backward(p, x.data(), w.data(), dy.data(), dx.data(), dw.data(), db.data());
        GNET_CHECK_CLOSE(dx, dx_ref, kTwinVsDirect);  // overwritten
        GNET_CHECK_CLOSE(dw, dw_ref, kTwinVsDirect);  // accumulated
        GNET_CHECK_CLOSE(db, db_ref, kTwinVsDirect);  // accumulated

        // dx and db may be skipped; dw still accumulates.
        std::vector<float> dw2 = dw0;
        cpu::linear_backward(p, x.data(), w.data(), dy.data(), nullptr, dw2.data(), nullptr);
        GNET_CHECK_CLOSE(dw2, dw_ref, kTwinVsDirect);
    }
}

TEST_CASE("linear backward against central finite differences") {
    const LinearParams p{3, 6, 4};
    auto x = random_vector(size_t(p.N) * p.IN, 11);
    auto w = random_vector(size_t(p.OUT) * p.IN, 12);
    auto b = random_vector(size_t(p.OUT), 13);
    const auto r = random_vector(size_t(p.N) * p.OUT, 14);  // dL/dy

    std::vector<float> dx(x.size()), dw(w.size(), 0.f), db(b.size(), 0.f);
    cpu::linear_backward(p, x.data(), w.data(), r.data(), dx.data(), dw.data(), db.data());

    auto f = [&] { return loss(p, x, w, b, r); };
    GNET_CHECK_CLOSE(dx, finite_differences(x, f), kFiniteDiff);
    GNET_CHECK_CLOSE(dw, finite_differences(w, f), kFiniteDiff);
    GNET_CHECK_CLOSE(db, finite_differences(b, f), kFiniteDiff);
}

TEST_CASE("linear rejects non-positive sizes") {
    std::vector<float> v(16);
    CHECK_THROWS_AS(
        cpu::linear_forward(LinearParams{0, 4, 4}, v.data(), v.data(), nullptr, v.data()), Error);
}
