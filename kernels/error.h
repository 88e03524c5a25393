// gnet::Error and the check macros. Library code throws; only cli/main.cpp turns an Error into
// one line on stderr and an exit code. Every message names where it came from.
#pragma once

#include <stdexcept>
#include <string>

namespace gnet {

class Error : public std::runtime_error {
  public:
    explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// A mistake in how gnet was called (bad option value, wrong shape from the user): exit code 2.
class UsageError : public Error {
  public:
    explicit UsageError(const std::string& what) : Error(what) {}
};

// "file.cpp:42: <statement> failed: <reason>"
[[noreturn]] void throw_check_failure(const char* library, const char* statement, const char* file,
                                      int line, const std::string& reason);

}  // namespace gnet

// Generic precondition: GNET_CHECK(n > 0, "batch must be positive, got " + std::to_string(n));
#define GNET_CHECK(cond, msg)                                                                \
    do {                                                                                     \
        if (!(cond)) ::gnet::throw_check_failure(nullptr, #cond, __FILE__, __LINE__, (msg)); \
    } while (0)

// libsndfile: `expr` returns an sf error code (0 = fine); `sndfile` is the SNDFILE* (or nullptr).
#define GNET_SNDFILE_CHECK(expr, sndfile)                                        \
    do {                                                                         \
        int gnet_sf_rc_ = (expr);                                                \
        if (gnet_sf_rc_ != 0)                                                    \
            ::gnet::throw_check_failure("libsndfile", #expr, __FILE__, __LINE__, \
                                        sf_strerror(sndfile));                   \
    } while (0)
