// Versions of the libraries gnet runs on, read from the libraries themselves at run time.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace gnet::cli {

// (library, version or "not found ...") in a fixed order.
std::vector<std::pair<std::string, std::string>> library_versions();

}  // namespace gnet::cli
