#include "kernels/error.h"

#include <cstring>

namespace gnet {

void throw_check_failure(const char* library, const char* statement, const char* file, int line,
                         const std::string& reason) {
    // Keep only the file's base name: the message is for users, the line number for developers.
    const char* base = std::strrchr(file, '/');
    base = base ? base + 1 : file;
    std::string msg;
    if (library) {
        msg = std::string(library) + " error: " + reason + " (" + statement + " at " + base + ":" +
              std::to_string(line) + ")";
    } else {
        msg = reason + " (check '" + statement + "' at " + base + ":" + std::to_string(line) + ")";
    }
    throw Error(msg);
}

}  // namespace gnet
