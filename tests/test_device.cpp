// Device resolution: never throws in probing, auto falls back to the CPU with a note, cuda without
// a GPU is a clear error, bad names are usage errors.
#include <doctest/doctest.h>

#include <algorithm>

#include <sstream>

#include "kernels/error.h"
#include "nn/device.h"

using namespace gnet;

TEST_CASE("parse_device_choice") {
    CHECK(parse_device_choice("auto") == DeviceChoice::Auto);
    CHECK(parse_device_choice("cpu") == DeviceChoice::Cpu);
    CHECK(parse_device_choice("cuda") == DeviceChoice::Cuda);
    CHECK(parse_device_choice("gpu") == DeviceChoice::Cuda);
    CHECK_THROWS_AS(parse_device_choice("tpu"), UsageError);
}

TEST_CASE("probe_gpus is consistent and never throws") {
    const GpuProbe& p = probe_gpus();
    CHECK(&p == &probe_gpus());  // cached
    CHECK(p.usable == !p.gpus.empty());
    if (!p.usable) CHECK(!p.reason.empty());
#if GNET_HAVE_CUDA
    CHECK(p.built_with_cuda);
#else
    CHECK(!p.built_with_cuda);
    CHECK(p.reason.find("without CUDA") != std::string::npos);
#endif
}

TEST_CASE("resolve_device") {
    std::ostringstream note;
    CHECK(resolve_device(DeviceChoice::Cpu, &note) == Device::CPU);
    CHECK(note.str().empty());
    if (probe_gpus().usable) {
        CHECK(resolve_device(DeviceChoice::Auto, &note) == Device::CUDA);
        CHECK(resolve_device(DeviceChoice::Cuda, &note) == Device::CUDA);
    } else {
        CHECK(resolve_device(DeviceChoice::Auto, &note) == Device::CPU);
        CHECK(note.str().find("no usable GPU") != std::string::npos);
        CHECK(note.str().find("running on the CPU") != std::string::npos);
        const std::string text = note.str();
        CHECK(std::count(text.begin(), text.end(), '\n') == 1);
        CHECK_THROWS_WITH_AS(resolve_device(DeviceChoice::Cuda, nullptr),
                             doctest::Contains("no usable GPU"), Error);
    }
}
