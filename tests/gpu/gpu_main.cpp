// Entry point of the GPU tests: without a usable GPU the whole executable reports SKIP
// (exit code 77, which ctest maps to "skipped"); with one, doctest runs every case.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

#include "nn/device.h"

int main(int argc, char** argv) {
    const gnet::GpuProbe& probe = gnet::probe_gpus();
    if (!probe.usable) {
        std::printf("SKIP: no usable GPU (%s)\n", probe.reason.c_str());
        return 77;
    }
    std::printf("GPU 0: %s\n", probe.gpus[0].name.c_str());
    doctest::Context ctx(argc, argv);
    return ctx.run();
}
