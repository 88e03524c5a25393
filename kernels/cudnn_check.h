// Check macro for cuDNN. Header-only: cuDNN is the yardstick of tests and benchmarks, not part of
// the gnet library.
#pragma once

#include <cudnn.h>

#include "kernels/error.h"

#define GNET_CUDNN_CHECK(expr)                                                \
    do {                                                                      \
        cudnnStatus_t gnet_cudnn_rc_ = (expr);                                \
        if (gnet_cudnn_rc_ != CUDNN_STATUS_SUCCESS)                           \
            ::gnet::throw_check_failure("cuDNN", #expr, __FILE__, __LINE__,   \
                                        cudnnGetErrorString(gnet_cudnn_rc_)); \
    } while (0)
