// Audio decoding (audio/decode.h: libsndfile and FFmpeg behind one interface). The first byte
// picks the file's extension (so both backends and their format guesses are reached); at most
// 10 s of audio is decoded per input.
#include "audio/decode.h"
#include "fuzz/fuzz_common.h"
#include "kernels/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const char* const kExt[] = {"wav", "flac", "ogg",  "mp3", "m4a", "aiff",
                                       "au",  "wma",  "opus", "caf", "mka", "aac"};
    if (size < 1) return 0;
    const std::string name = std::string("in.") + kExt[data[0] % (sizeof kExt / sizeof *kExt)];
    try {
        const std::string path = gnet::fuzz::write_scratch(name, data + 1, size - 1);
        gnet::AudioDecoder dec(path);
        std::vector<float> out;
        const size_t limit = size_t(dec.info().sample_rate) * 10;
        while (out.size() < limit && dec.read(out, 1 << 15) > 0) {
        }
    } catch (const gnet::Error&) {
    }
    return 0;
}
