// .npy parsing (audio/npy.h): any bytes -> an array or a gnet::Error, never a crash or a huge
// allocation.
#include "audio/npy.h"
#include "fuzz/fuzz_common.h"
#include "kernels/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        gnet::NpyArray a =
            gnet::npy_parse(std::string(reinterpret_cast<const char*>(data), size), "fuzz.npy");
        (void)a.numel();
    } catch (const gnet::Error&) {
    }
    return 0;
}
