// Helpers for tests: temporary directories, running the gnet binary, locating data.
#pragma once

#include <string>

namespace gnet::test {

// A fresh directory under the system temp dir, removed with everything in it on destruction.
class TempDir {
  public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }
    std::string file(const std::string& name) const { return path_ + "/" + name; }

  private:
    std::string path_;
};

struct RunResult {
    int exit_code = -1;
    std::string out;  // stdout
    std::string err;  // stderr
};

// Runs a shell command line; captures stdout and stderr separately.
RunResult run_command(const std::string& command_line);
// Runs the gnet binary under test with the given arguments (already shell-quoted where needed).
RunResult run_gnet(const std::string& args);
std::string gnet_binary();

// The repository's tests/fixtures and ../shared/data (may not exist: callers skip).
std::string fixtures_dir();
std::string shared_data_dir();
bool path_exists(const std::string& path);

void write_text(const std::string& path, const std::string& text);

// Ends a test program that has nothing to run here with exit code 77, which ctest reports as
// "Skipped" (SKIP_RETURN_CODE), after saying why on stdout.
[[noreturn]] void skip_program(const std::string& why);
std::string read_text(const std::string& path);

}  // namespace gnet::test
