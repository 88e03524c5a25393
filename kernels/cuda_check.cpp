#include <cstdlib>
#include <cstring>

namespace gnet {

bool sync_debug_enabled() {
    static const bool enabled = [] {
        const char* v = std::getenv("GNET_SYNC_DEBUG");
        return v && *v && std::strcmp(v, "0") != 0;
    }();
    return enabled;
}

}  // namespace gnet
