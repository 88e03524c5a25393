#include "tests/helpers.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace fs = std::filesystem;

namespace gnet::test {

TempDir::TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "gnet-test-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
}

TempDir::~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
}

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void write_text(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
}

RunResult run_command(const std::string& command_line) {
    TempDir tmp;
    std::string out = tmp.file("stdout"), err = tmp.file("stderr");
    std::string full = command_line + " >'" + out + "' 2>'" + err + "' </dev/null";
    int status = std::system(full.c_str());
    RunResult r;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = read_text(out);
    r.err = read_text(err);
    return r;
}

void skip_program(const std::string& why) {
    std::printf("skipped: %s\n", why.c_str());
    std::fflush(stdout);
    std::_Exit(77);
}

std::string gnet_binary() {
    return GNET_TEST_BINARY;
}

RunResult run_gnet(const std::string& args) {
    return run_command("'" + gnet_binary() + "' " + args);
}

std::string fixtures_dir() {
    return GNET_TEST_FIXTURES;
}
std::string shared_data_dir() {
    return GNET_TEST_SHARED_DATA;
}
bool path_exists(const std::string& path) {
    return fs::exists(path);
}

}  // namespace gnet::test
