// gnet bench: runs the benchmark programs built beside the gnet binary (bench/bench_*), each of
// which validates every variant against its CPU twin before timing it (see bench/harness.h).
// The programs link cuDNN and cuBLAS as yardsticks; the gnet binary itself does not.
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "kernels/error.h"
#include "nn/atomic_file.h"
#include "nn/device.h"

extern char** environ;

namespace fs = std::filesystem;

namespace gnet::cli {

namespace {

// name on the command line -> program
const std::vector<std::pair<std::string, std::string>> kSuites = {
    {"spectrogram", "bench_spectrogram"},
    {"conv2d", "bench_conv2d"},
    {"ops", "bench_ops"},
    {"train_step", "bench_train_step"},
    {"predict", "bench_predict"},
    {"traffic", "bench_step_traffic"},
};

struct BenchArgs {
    std::string suites;  // comma-separated; empty = all
    std::string device = "auto";
    int batch = 32;
    int repeats = 20;
    bool quick = false;
    std::string json;
};

std::vector<std::string> split_commas(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ','))
        if (!item.empty()) out.push_back(item);
    return out;
}

int run_program(const std::vector<std::string>& argv) {
    std::vector<char*> cargv;
    for (const std::string& a : argv)
        cargv.push_back(const_cast<char*>(a.c_str()));
    cargv.push_back(nullptr);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0].c_str(), nullptr, nullptr, cargv.data(), environ);
    if (rc != 0) throw Error(argv[0] + ": cannot start: " + std::strerror(rc));
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int run_bench(const BenchArgs& a) {
    const fs::path dir = fs::read_symlink("/proc/self/exe").parent_path();
    std::vector<std::string> wanted = split_commas(a.suites);
    for (const std::string& w : wanted) {
        bool known = false;
        for (const auto& s : kSuites)
            known = known || s.first == w;
        if (!known)
            throw UsageError("unknown benchmark '" + w +
                             "' (expected spectrogram, conv2d, ops, train_step or predict)");
    }
    // The "no usable GPU" note once, here, not once per program.
    if (a.device == "auto") resolve_device(DeviceChoice::Auto, &std::cerr);
    ::setenv("GNET_DEVICE_NOTE_SHOWN", "1", 1);
    std::vector<std::string> json_parts;
    int failures = 0;
    for (const auto& [name, program] : kSuites) {
        if (!wanted.empty() && std::find(wanted.begin(), wanted.end(), name) == wanted.end())
            continue;
        fs::path exe = dir / program;
        if (!fs::exists(exe)) {
            std::cerr << "gnet: " << exe.string()
                      << " was not built (configure with -DGNET_BUILD_BENCH=ON)\n";
            ++failures;
            continue;
        }
        std::vector<std::string> argv = {exe.string(),
                                         "--device",
                                         a.device,
                                         "--batch",
                                         std::to_string(a.batch),
                                         "--repeats",
                                         std::to_string(a.repeats)};
        if (a.quick) argv.push_back("--quick");
        std::string part;
        if (!a.json.empty()) {
            part = a.json + "." + name + ".part";
            argv.push_back("--json");
            argv.push_back(part);
        }
        int rc = run_program(argv);
        if (rc != 0) {
            std::cerr << "gnet: benchmark " << name << " failed (exit code " << rc << ")\n";
            ++failures;
        }
        if (!part.empty() && fs::exists(part)) {
            json_parts.push_back(read_file(part));
            fs::remove(part);
        }
        std::cout << std::endl;
    }
    if (!a.json.empty()) {
        std::string all = "[\n";
        for (size_t i = 0; i < json_parts.size(); ++i)
            all += (i ? ",\n" : "") + json_parts[i];
        write_file_atomic(a.json, all + "]\n");
        std::cout << "wrote " << a.json << "\n";
    }
    return failures ? 1 : 0;
}

}  // namespace

void register_bench(CLI::App& app, Context& ctx) {
    auto a = std::make_shared<BenchArgs>();
    CLI::App* cmd = app.add_subcommand(
        "bench",
        "Validate and time gnet's kernels and pipeline against cuDNN/cuBLAS/cuFFT and the "
        "CPU libraries");
    cmd->add_option(
        "--ops", a->suites,
        "Comma-separated: spectrogram, conv2d, ops, train_step, predict (default: all)");
    cmd->add_option("--batch", a->batch, "Batch size")
        ->check(CLI::Range(1, 4096))
        ->capture_default_str();
    cmd->add_option("--repeats", a->repeats, "Timed repeats (the median is reported)")
        ->check(CLI::Range(1, 100000))
        ->capture_default_str();
    cmd->add_flag("--quick", a->quick, "Few repeats and small sizes (a smoke test)");
    cmd->add_option("--json", a->json, "Also write every result as JSON to this file");
    add_device_option(*cmd, a->device);
    cmd->footer(
        "Examples:\n"
        "  gnet bench                                   everything, table on stdout\n"
        "  gnet bench --ops conv2d --batch 32 --json conv.json\n"
        "  gnet bench --device cpu --ops train_step --batch 4");
    cmd->callback([a, &ctx] { ctx.exit_code = run_bench(*a); });
}

}  // namespace gnet::cli
