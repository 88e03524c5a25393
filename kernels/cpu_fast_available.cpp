// cpu_fast::available(): compiled WITHOUT -mavx2 so that asking is safe on any x86-64 CPU.
#include "kernels/gemm_cpu_fast.h"

namespace gnet::cpu_fast {

bool available() {
#if defined(__x86_64__) || defined(__i386__)
    static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return ok;
#else
    return false;
#endif
}

}  // namespace gnet::cpu_fast
