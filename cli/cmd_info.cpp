// gnet info: what was built, which GPUs are usable (or why none is), and library versions.
#include <cstdio>
#include <iostream>
#include <thread>

#include "build_info.h"
#include "cli/commands.h"
#include "cli/library_versions.h"
#include "nn/device.h"

namespace gnet::cli {

namespace {

std::string gib(size_t bytes) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f GiB", double(bytes) / double(1ull << 30));
    return buf;
}

void run_info() {
    const GpuProbe& probe = probe_gpus();
    std::cout << "gnet " << GNET_VERSION_STRING << " (commit " << GNET_GIT_COMMIT << ")\n";
    std::cout << "build:       " << GNET_BUILD_TYPE << ", " << GNET_CXX_COMPILER << ", CUDA "
              << (probe.built_with_cuda
                      ? std::string("on (architectures ") + GNET_CUDA_ARCHITECTURES + ")"
                      : std::string("off (CPU-only build)"))
              << "\n";
    if (probe.usable) {
        for (const GpuInfo& g : probe.gpus) {
            std::cout << "GPU " << g.index << ":       " << g.name << ", " << gib(g.total_bytes)
                      << " (" << gib(g.free_bytes) << " free), compute capability " << g.cc_major
                      << "." << g.cc_minor << ", " << g.sm_count << " SMs\n";
        }
    } else {
        std::cout << "GPU:         no usable GPU (" << probe.reason << ")\n";
    }
    std::cout << "CPU threads: " << std::thread::hardware_concurrency() << "\n";
    std::cout << "device:      --device auto runs on "
              << (probe.usable ? "cuda (GPU 0)" : "the CPU") << "\n";
    std::cout << "libraries:\n";
    for (const auto& [name, version] : library_versions()) {
        std::printf("  %-20s %s\n", name.c_str(), version.c_str());
    }
    std::fflush(stdout);
}

}  // namespace

void register_info(CLI::App& app, Context&) {
    CLI::App* cmd =
        app.add_subcommand("info", "Show the build, the GPUs gnet can use and library versions");
    cmd->footer("Example:\n  gnet info");
    cmd->callback([] { run_info(); });
}

}  // namespace gnet::cli
