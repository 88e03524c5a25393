// gnet info: what was built, which GPUs are usable (or why none is), and library versions.
#include <cstdio>
#include <iostream>
#include <thread>

#include "build_info.h"
#include "cli/commands.h"
#include "cli/library_versions.h"
#include "kernels/cpu_parallel.h"
#include "nn/device.h"
#include "nn/layers.h"

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
    const CpuBackend cpu = effective_cpu_backend(default_cpu_backend());
    std::cout << "CPU kernels: " << cpu_backend_name(cpu)
              << (cpu == CpuBackend::Fast
                      ? " (AVX2+FMA: Winograd/packed-GEMM convolutions, " +
                            std::to_string(cpu_fast::thread_count()) + " worker threads)"
                      : std::string(" (the reference twins") +
                            (default_cpu_backend() == CpuBackend::Reference
                                 ? ", GNET_CPU_BACKEND=reference)"
                                 : ": this CPU has no AVX2+FMA)"))
              << "\n";
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
