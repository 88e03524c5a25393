// Check macro for cuBLAS. Header-only: cuBLAS is a yardstick used by tests and benchmarks, and
// the gnet library itself does not link it.
#pragma once

#include <cublas_v2.h>

#include "kernels/error.h"

#define GNET_CUBLAS_CHECK(expr)                                                  \
    do {                                                                         \
        cublasStatus_t gnet_cublas_rc_ = (expr);                                 \
        if (gnet_cublas_rc_ != CUBLAS_STATUS_SUCCESS)                            \
            ::gnet::throw_check_failure("cuBLAS", #expr, __FILE__, __LINE__,     \
                                        cublasGetStatusString(gnet_cublas_rc_)); \
    } while (0)
