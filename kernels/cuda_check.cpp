#include <cstdlib>
#include <cstring>
#include <string>

#if GNET_HAVE_CUDA
#include "kernels/cuda_check.h"
#endif

namespace gnet {

bool sync_debug_enabled() {
    static const bool enabled = [] {
        const char* v = std::getenv("GNET_SYNC_DEBUG");
        return v && *v && std::strcmp(v, "0") != 0;
    }();
    return enabled;
}

#if GNET_HAVE_CUDA
namespace launch_detail {

std::string kernel_name(const char* pretty) {
    // "... [with auto Kernel = ns::{anonymous}::name<args>; Args = ...]"
    const std::string s(pretty);
    const size_t at = s.find("Kernel = ");
    if (at == std::string::npos) return s;
    size_t begin = at + 9, end = begin;
    int depth = 0;
    for (; end < s.size(); ++end) {
        const char c = s[end];
        if (c == '<' || c == '(') ++depth;
        if (c == '>' || c == ')') --depth;
        if (depth == 0 && (c == ';' || c == ']')) break;
        if (depth < 0) break;
    }
    std::string full = s.substr(begin, end - begin);
    if (full.rfind("& ", 0) == 0) full = full.substr(2);
    // Drop the namespaces: the last "::" outside template arguments.
    size_t name_begin = 0;
    depth = 0;
    for (size_t i = 0; i + 1 < full.size(); ++i) {
        if (full[i] == '<') ++depth;
        if (full[i] == '>') --depth;
        if (depth == 0 && full[i] == ':' && full[i + 1] == ':') name_begin = i + 2;
    }
    std::string name = full.substr(name_begin);
    const size_t lt = name.find('<');
    if (lt != std::string::npos && name.size() > 60) name = name.substr(0, lt) + "<...>";
    return name;
}

void throw_launch_failure(const std::string& kernel, const char* stage, cudaError_t rc) {
    throw Error("CUDA error: " + std::string(cudaGetErrorName(rc)) + ": " + cudaGetErrorString(rc) +
                " (" + stage + " of kernel " + kernel + ")");
}

}  // namespace launch_detail
#endif

}  // namespace gnet
