// The strict bounded JSON parse (nn/json.h) and every checkpoint metadata field built on it.
#include "fuzz/fuzz_common.h"
#include "kernels/error.h"
#include "nn/checkpoint.h"
#include "nn/json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    try {
        gnet::Json j = gnet::json_parse(text);
        (void)gnet::json_dump(j);
    } catch (const gnet::Error&) {
    }
    for (const char* key : {"gnet.audio", "gnet.genres", "gnet.thresholds"}) {
        try {
            gnet::parse_checkpoint_metadata({{key, text}}, 3, "fuzz.safetensors", std::nullopt);
        } catch (const gnet::Error&) {
        }
    }
    return 0;
}
