// linear CPU twin: OpenBLAS sgemm for the three products, a plain loop for the bias. See linear.h.
#include "kernels/linear.h"

#include <cblas.h>

#include <cstdint>
#include <string>

#include "kernels/error.h"

namespace gnet::cpu {

namespace {
void check_params(const LinearParams& p) {
    GNET_CHECK(p.N > 0 && p.IN > 0 && p.OUT > 0,
               "linear: sizes must be positive, got N" + std::to_string(p.N) + " IN" +
                   std::to_string(p.IN) + " OUT" + std::to_string(p.OUT));
}
}  // namespace

void linear_forward(const LinearParams& p, const float* x, const float* w, const float* b,
                    float* y) {
    check_params(p);
    float beta = 0.f;
    if (b) {
        for (int n = 0; n < p.N; ++n)
            for (int o = 0; o < p.OUT; ++o)
                y[int64_t(n) * p.OUT + o] = b[o];
        beta = 1.f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, p.N, p.OUT, p.IN, 1.f, x, p.IN, w, p.IN,
                beta, y, p.OUT);
}

void linear_backward(const LinearParams& p, const float* x, const float* w, const float* dy,
                     float* dx, float* dw, float* db) {
    check_params(p);
    if (dx)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, p.N, p.IN, p.OUT, 1.f, dy, p.OUT, w,
                    p.IN, 0.f, dx, p.IN);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, p.OUT, p.IN, p.N, 1.f, dy, p.OUT, x, p.IN,
                1.f, dw, p.IN);
    if (db)
        for (int o = 0; o < p.OUT; ++o) {
            float s = 0.f;
            for (int n = 0; n < p.N; ++n)
                s += dy[int64_t(n) * p.OUT + o];
            db[o] += s;
        }
}

}  // namespace gnet::cpu
