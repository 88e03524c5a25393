#if GNET_HAVE_CUDA
#include "kernels/cufft_check.h"

namespace gnet {

const char* cufft_error_string(cufftResult rc) {
    switch (rc) {
        case CUFFT_SUCCESS:
            return "success";
        case CUFFT_INVALID_PLAN:
            return "invalid plan";
        case CUFFT_ALLOC_FAILED:
            return "allocation failed (GPU out of memory?)";
        case CUFFT_INVALID_VALUE:
            return "invalid value";
        case CUFFT_INTERNAL_ERROR:
            return "internal error";
        case CUFFT_EXEC_FAILED:
            return "execution failed";
        case CUFFT_SETUP_FAILED:
            return "setup failed";
        case CUFFT_INVALID_SIZE:
            return "invalid size";
        case CUFFT_INVALID_DEVICE:
            return "invalid device";
        case CUFFT_NO_WORKSPACE:
            return "no workspace";
        case CUFFT_NOT_IMPLEMENTED:
            return "not implemented";
        case CUFFT_NOT_SUPPORTED:
            return "not supported";
        default:
            return "unknown cuFFT error";
    }
}

}  // namespace gnet
#endif
