#include "train/synthetic_data.h"

#include <filesystem>
#include <memory>
#include <random>

#include "audio/npy.h"
#include "nn/atomic_file.h"
#include "train/csv.h"
#include "train/dataset.h"

namespace gnet {

void write_synthetic_prepared(const std::string& dir, const SyntheticDataOptions& opt) {
    namespace fs = std::filesystem;
    const int G = int(opt.genres.size());
    fs::create_directories(dir);
    if (opt.layout == DataLayout::ChunkFiles) {
        fs::create_directories(dir + "/train");
        fs::create_directories(dir + "/val");
    }
    std::string genres_txt;
    for (const std::string& g : opt.genres)
        genres_txt += g + "\n";
    write_file_atomic(dir + "/genres.txt", genres_txt);

    const bool sharded = opt.layout == DataLayout::Shards;
    std::vector<std::string> header =
        sharded ? std::vector<std::string>{"shard", "frame", "split", "track", "start_s"}
                : std::vector<std::string>{"file", "split", "track", "start_s"};
    header.insert(header.end(), opt.genres.begin(), opt.genres.end());
    std::string manifest = csv_line(header);
    std::string index = span_index_header();
    std::unique_ptr<ShardWriter> writer;
    if (sharded) {
        fs::create_directories(dir + "/shards");
        writer = std::make_unique<ShardWriter>(dir + "/shards", opt.shard_dtype, opt.shard_bytes);
    }
    std::vector<float> span;  // one track, frame-major dB (image * 80 dB)
    std::mt19937_64 rng(opt.seed);
    std::uniform_real_distribution<float> noise(0.f, 0.3f);
    const int band = kMelBands / G;
    std::vector<float> x(kChunkFloats);
    int counter[2] = {0, 0};
    for (int t = 0; t < opt.train_tracks + opt.val_tracks; ++t) {
        const bool train = t < opt.train_tracks;
        std::vector<int> labels(size_t(G), 0);
        labels[size_t(t % G)] =
            1;  // every genre appears, in both splits when there are enough tracks
        if (rng() % 3 == 0) labels[size_t(rng() % uint64_t(G))] = 1;
        const std::string track =
            std::string(train ? "a" : "b") + "/tråck, " + std::to_string(t) + ".mp3";
        span.assign(size_t(opt.chunks_per_track * kFrames + opt.extra_frames) * kShardBands, 0.f);
        for (size_t i = size_t(opt.chunks_per_track) * kFrames * kShardBands; i < span.size(); ++i)
            span[i] = 80.f * noise(rng);
        std::vector<std::vector<std::string>> rows;
        for (int c = 0; c < opt.chunks_per_track; ++c) {
            for (float& v : x)
                v = noise(rng);
            for (int g = 0; g < G; ++g)
                if (labels[size_t(g)])
                    for (int f = g * band; f < (g + 1) * band; ++f)
                        for (int w = 0; w < kFrames; ++w)
                            x[size_t(f) * kFrames + size_t(w)] += 0.7f;
            const char* split = train ? "train" : "val";
            if (sharded) {
                for (int m = 0; m < kMelBands; ++m)
                    for (int w = 0; w < kFrames; ++w)
                        span[(size_t(c) * kFrames + size_t(w)) * kShardBands + size_t(m)] =
                            80.f * x[size_t(m) * kFrames + size_t(w)];
                std::vector<std::string> row = {"", std::to_string(c * kFrames), split, track,
                                                std::to_string(10 * c)};
                for (int l : labels)
                    row.push_back(std::to_string(l));
                rows.push_back(row);
                continue;
            }
            char name[32];
            std::snprintf(name, sizeof name, "%06d.npy", counter[train ? 0 : 1]++);
            const std::string file = std::string(split) + "/" + name;
            npy_write(dir + "/" + file, x.data(), {kMelBands, kFrames});
            std::vector<std::string> row = {file, split, track, std::to_string(10 * c)};
            for (int l : labels)
                row.push_back(std::to_string(l));
            manifest += csv_line(row);
        }
        if (sharded) {
            ShardLocation loc = writer->append(span.data(), int64_t(span.size() / kShardBands));
            const std::string shard = "shards/" + writer->shard_names()[size_t(loc.shard)];
            SpanEntry e;
            e.frame = loc.frame;
            e.frames = int64_t(span.size() / kShardBands);
            e.crc32 = loc.crc32;
            index += span_index_row(shard, e, track);
            for (auto& row : rows) {
                row[0] = shard;
                row[1] = std::to_string(loc.frame + std::stoll(row[1]));
                manifest += csv_line(row);
            }
        }
    }
    if (sharded) {
        writer->finish();
        write_file_atomic(dir + "/shards/index.csv", index);
    }
    write_file_atomic(dir + "/manifest.csv", manifest);
}

}  // namespace gnet
