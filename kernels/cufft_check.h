// Check macro for cuFFT (CUDA builds only).
#pragma once

#include <cufft.h>

#include "kernels/error.h"

namespace gnet {
const char* cufft_error_string(cufftResult rc);
}

#define GNET_CUFFT_CHECK(expr)                                                       \
    do {                                                                             \
        cufftResult gnet_cufft_rc_ = (expr);                                         \
        if (gnet_cufft_rc_ != CUFFT_SUCCESS)                                         \
            ::gnet::throw_check_failure("cuFFT", #expr, __FILE__, __LINE__,          \
                                        ::gnet::cufft_error_string(gnet_cufft_rc_)); \
    } while (0)
