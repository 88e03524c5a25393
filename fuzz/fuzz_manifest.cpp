// A prepared folder's genres.txt and manifest.csv (train/dataset.h). The input is split at its
// first NUL byte: genres.txt before, manifest.csv after.
#include <cstring>
#include <filesystem>

#include "fuzz/fuzz_common.h"
#include "kernels/error.h"
#include "train/dataset.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    namespace fs = std::filesystem;
    static const std::string dir = [] {
        const std::string d = gnet::fuzz::scratch_dir() + "/data";
        fs::create_directories(d);
        return d;
    }();
    const void* nul = std::memchr(data, 0, size);
    const size_t split = nul ? size_t(static_cast<const uint8_t*>(nul) - data) : size;
    try {
        gnet::fuzz::write_scratch("data/genres.txt", data, split);
        gnet::fuzz::write_scratch("data/manifest.csv", data + std::min(size, split + 1),
                                  size - std::min(size, split + 1));
        gnet::PreparedData d = gnet::load_prepared(dir);
        (void)d.split_chunks(gnet::Split::Train);
    } catch (const gnet::Error&) {
    }
    return 0;
}
