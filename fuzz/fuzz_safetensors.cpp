// .safetensors parsing (nn/safetensors.h) and the checkpoint metadata it carries
// (nn/checkpoint.h).
#include "fuzz/fuzz_common.h"
#include "kernels/error.h"
#include "nn/checkpoint.h"
#include "nn/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        gnet::StFile f = gnet::safetensors_parse(
            std::string(reinterpret_cast<const char*>(data), size), "fuzz.safetensors");
        int rows = 2;
        if (const gnet::StTensor* fc = f.find("fc.weight"))
            if (!fc->shape.empty() && fc->shape[0] > 0 && fc->shape[0] < 5000)
                rows = int(fc->shape[0]);
        gnet::parse_checkpoint_metadata(f.metadata, rows, "fuzz.safetensors", std::nullopt);
    } catch (const gnet::Error&) {
    }
    return 0;
}
