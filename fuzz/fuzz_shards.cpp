// A sharded prepared folder (train/shards.h, train/dataset.h): genres.txt, manifest.csv,
// shards/index.csv and one shard, shards/shard-00000.npy. The input is split at its first three
// NUL bytes into the three text files; what follows the third is the shard's bytes (binary, so it
// may hold NULs). Every span the folder loads is read back, which checks its CRC and cuts it.
#include <cstring>
#include <filesystem>
#include <vector>

#include "fuzz/fuzz_common.h"
#include "kernels/error.h"
#include "train/dataset.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    namespace fs = std::filesystem;
    static const std::string dir = [] {
        const std::string d = gnet::fuzz::scratch_dir() + "/sharded";
        fs::create_directories(d + "/shards");
        return d;
    }();
    const char* names[4] = {"sharded/genres.txt", "sharded/manifest.csv",
                            "sharded/shards/index.csv", "sharded/shards/shard-00000.npy"};
    size_t at = 0;
    for (int part = 0; part < 4; ++part) {
        size_t end = size;
        if (part < 3) {
            const void* nul = std::memchr(data + at, 0, size - at);
            if (nul) end = size_t(static_cast<const uint8_t*>(nul) - data);
        }
        gnet::fuzz::write_scratch(names[part], data + at, end - at);
        at = std::min(size, end + 1);
    }
    try {
        gnet::PreparedData d = gnet::load_prepared(dir);
        std::vector<float> frames;
        for (size_t s = 0; s < d.spans.size() && s < 64; ++s) {
            try {
                d.read_span(int(s), frames);
            } catch (const gnet::Error&) {
            }
        }
        std::vector<float> chunk(static_cast<size_t>(gnet::kChunkFloats));
        for (int c = 0; c < d.num_chunks() && c < 64; ++c) {
            try {
                d.read_chunk(c, chunk.data());
            } catch (const gnet::Error&) {
            }
        }
    } catch (const gnet::Error&) {
    }
    return 0;
}
