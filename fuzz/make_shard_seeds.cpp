// Writes seeds of fuzz_shards: small sharded prepared folders (train/synthetic_data.h, float32 and
// float16, with and without a remainder after the last chunk) packed as fuzz_shards.cpp reads
// them: genres.txt NUL manifest.csv NUL shards/index.csv NUL shard-00000.npy.
// Usage: fuzz_make_shard_seeds OUT_DIR
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "train/synthetic_data.h"

namespace fs = std::filesystem;

namespace {
std::string slurp(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}
}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: fuzz_make_shard_seeds OUT_DIR\n");
        return 2;
    }
    const fs::path out = argv[1];
    fs::create_directories(out);
    const fs::path tmp =
        fs::temp_directory_path() / ("gnet-shard-seeds-" + std::to_string(::getpid()));
    int made = 0;
    for (const gnet::ShardDtype dtype : {gnet::ShardDtype::F16, gnet::ShardDtype::F32})
        for (const int extra : {0, 37}) {
            fs::remove_all(tmp);
            gnet::SyntheticDataOptions o;
            o.layout = gnet::DataLayout::Shards;
            o.shard_dtype = dtype;
            o.train_tracks = 1;
            o.val_tracks = 1;
            o.chunks_per_track = 1;
            o.extra_frames = extra;
            gnet::write_synthetic_prepared(tmp.string(), o);
            std::string seed = slurp(tmp / "genres.txt") + '\0' + slurp(tmp / "manifest.csv") +
                               '\0' + slurp(tmp / "shards" / "index.csv") + '\0' +
                               slurp(tmp / "shards" / "shard-00000.npy");
            std::ofstream(out / ("seed-" + std::to_string(made++)), std::ios::binary) << seed;
        }
    fs::remove_all(tmp);
    return 0;
}
