#include "train/dataset.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include "audio/npy.h"
#include "kernels/error.h"
#include "nn/atomic_file.h"
#include "train/csv.h"

namespace gnet {

const char* split_name(Split s) {
    return s == Split::Train ? "train" : "val";
}

Split parse_split(const std::string& text) {
    if (text == "train") return Split::Train;
    if (text == "val") return Split::Val;
    throw UsageError("unknown split '" + text + "' (expected train or val)");
}

namespace {

std::vector<std::string> read_genres(const std::string& path) {
    std::string text = read_file(path);
    std::vector<std::string> genres;
    std::unordered_set<std::string> seen;
    size_t pos = 0;
    int line = 0;
    while (pos < text.size()) {
        size_t end = text.find('\n', pos);
        if (end == std::string::npos) end = text.size();
        std::string name = text.substr(pos, end - pos);
        ++line;
        pos = end + 1;
        if (!name.empty() && name.back() == '\r') name.pop_back();
        if (name.empty()) continue;
        if (!seen.insert(name).second)
            throw Error(path + ":" + std::to_string(line) + ": genre '" + name + "' listed twice");
        genres.push_back(name);
    }
    if (genres.empty()) throw Error(path + ": no genre names");
    return genres;
}

bool parse_int(const std::string& s, int& out) {
    if (s.empty() || s.size() > 9) return false;
    int v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
        v = v * 10 + (c - '0');
    }
    out = v;
    return true;
}

}  // namespace

PreparedData load_prepared(const std::string& dir) {
    PreparedData d;
    d.dir = dir;
    d.genres = read_genres(dir + "/genres.txt");
    const int G = d.num_genres();
    const std::string manifest = dir + "/manifest.csv";
    std::vector<CsvRecord> recs = csv_read_file(manifest);
    if (recs.empty()) throw Error(manifest + ": empty (expected a header line)");

    const CsvRecord& head = recs[0];
    std::vector<std::string> expect = {"file", "split", "track", "start_s"};
    expect.insert(expect.end(), d.genres.begin(), d.genres.end());
    if (head.fields != expect) {
        std::string want;
        for (const std::string& f : expect)
            want += (want.empty() ? "" : ",") + f;
        throw Error(manifest + ":" + std::to_string(head.line) + ": header does not match " + dir +
                    "/genres.txt; expected: " + want);
    }
    if (recs.size() == 1) throw Error(manifest + ": no chunk rows");

    std::unordered_map<std::string, int> track_id;
    std::vector<Split> track_split;
    std::vector<int> track_first_chunk;
    std::unordered_set<std::string> files;
    d.chunks.reserve(recs.size() - 1);
    d.targets.reserve((recs.size() - 1) * size_t(G));
    for (size_t r = 1; r < recs.size(); ++r) {
        const CsvRecord& rec = recs[r];
        const std::string where = manifest + ":" + std::to_string(rec.line) + ": ";
        if (int(rec.fields.size()) != 4 + G)
            throw Error(where + std::to_string(rec.fields.size()) +
                        " fields where the header has " + std::to_string(4 + G));
        ChunkEntry c;
        c.line = rec.line;
        c.file = rec.fields[0];
        if (c.file.empty()) throw Error(where + "empty file name");
        if (!files.insert(c.file).second) throw Error(where + "file '" + c.file + "' listed twice");
        const std::string& split = rec.fields[1];
        if (split == "train")
            c.split = Split::Train;
        else if (split == "val")
            c.split = Split::Val;
        else
            throw Error(where + "unknown split '" + split + "' (expected train or val)");
        const std::string& track = rec.fields[2];
        if (track.empty()) throw Error(where + "empty track");
        if (!parse_int(rec.fields[3], c.start_s))
            throw Error(where + "start_s '" + rec.fields[3] + "' is not a non-negative integer");
        for (int g = 0; g < G; ++g) {
            const std::string& cell = rec.fields[size_t(4 + g)];
            if (cell != "0" && cell != "1")
                throw Error(where + "genre '" + d.genres[size_t(g)] + "' has '" + cell +
                            "' (expected 0 or 1)");
            d.targets.push_back(cell == "1" ? 1.f : 0.f);
        }
        auto [it, fresh] = track_id.emplace(track, int(d.tracks.size()));
        c.track = it->second;
        int chunk = int(d.chunks.size());
        if (fresh) {
            d.tracks.push_back(track);
            track_split.push_back(c.split);
            track_first_chunk.push_back(chunk);
        } else {
            if (track_split[size_t(c.track)] != c.split)
                throw Error(
                    where + "track '" + track + "' is in both splits (line " +
                    std::to_string(d.chunks[size_t(track_first_chunk[size_t(c.track)])].line) +
                    " puts it in " + split_name(track_split[size_t(c.track)]) + ")");
            const float* first = &d.targets[size_t(track_first_chunk[size_t(c.track)]) * size_t(G)];
            const float* mine = &d.targets[size_t(chunk) * size_t(G)];
            if (!std::equal(first, first + G, mine))
                throw Error(where + "labels differ from another chunk of track '" + track + "'");
        }
        d.chunks.push_back(std::move(c));
    }
    return d;
}

std::vector<int> PreparedData::split_chunks(Split s) const {
    std::vector<int> out;
    for (int i = 0; i < num_chunks(); ++i)
        if (chunks[size_t(i)].split == s) out.push_back(i);
    return out;
}

std::string PreparedData::chunk_path(int chunk) const {
    return dir + "/" + chunks[size_t(chunk)].file;
}

void PreparedData::read_chunk(int chunk, float* out) const {
    GNET_CHECK(chunk >= 0 && chunk < num_chunks(), "chunk index out of range");
    std::vector<float> v = npy_read_f32(chunk_path(chunk), {kMelBands, kFrames});
    for (size_t i = 0; i < v.size(); ++i)
        if (!std::isfinite(v[i]))
            throw Error(chunk_path(chunk) + ": value " + std::to_string(v[i]) + " at [" +
                        std::to_string(i / kFrames) + ", " + std::to_string(i % kFrames) +
                        "] is not finite (a corrupt chunk; run gnet prepare again)");
    std::memcpy(out, v.data(), sizeof(float) * size_t(kChunkFloats));
}

TrackGroups group_by_track(const PreparedData& data, const std::vector<int>& chunks) {
    TrackGroups g;
    std::unordered_map<int, int> local;
    g.chunk_track.reserve(chunks.size());
    for (int c : chunks) {
        int global = data.chunks[size_t(c)].track;
        auto [it, fresh] = local.emplace(global, g.count());
        if (fresh) g.tracks.push_back(global);
        g.chunk_track.push_back(it->second);
    }
    return g;
}

std::vector<float> track_targets(const PreparedData& data, const std::vector<int>& chunks,
                                 const TrackGroups& groups) {
    const size_t G = size_t(data.num_genres());
    std::vector<float> out(size_t(groups.count()) * G);
    std::vector<bool> done(size_t(groups.count()), false);
    for (size_t i = 0; i < chunks.size(); ++i) {
        int t = groups.chunk_track[i];
        if (done[size_t(t)]) continue;
        done[size_t(t)] = true;
        std::copy_n(&data.targets[size_t(chunks[i]) * G], G, &out[size_t(t) * G]);
    }
    return out;
}

std::vector<float> positive_weights(const PreparedData& data, const std::vector<int>& chunks,
                                    float lo, float hi) {
    const int G = data.num_genres();
    std::vector<double> pos(size_t(G), 0.0);
    for (int c : chunks)
        for (int g = 0; g < G; ++g)
            pos[size_t(g)] += data.targets[size_t(c) * size_t(G) + size_t(g)];
    std::vector<float> w(size_t(G), 1.f);
    for (int g = 0; g < G; ++g) {
        if (pos[size_t(g)] == 0) continue;
        double neg = double(chunks.size()) - pos[size_t(g)];
        w[size_t(g)] = float(std::clamp(neg / pos[size_t(g)], double(lo), double(hi)));
    }
    return w;
}

std::vector<double> balanced_sample_weights(const PreparedData& data,
                                            const std::vector<int>& chunks) {
    const int G = data.num_genres();
    std::map<int, int> track_chunks;  // track -> chunks of it in the subset
    for (int c : chunks)
        ++track_chunks[data.chunks[size_t(c)].track];
    std::vector<double> tracks_with(size_t(G), 0.0);
    std::map<int, bool> counted;
    for (int c : chunks) {
        const int t = data.chunks[size_t(c)].track;
        if (counted[t]) continue;
        counted[t] = true;
        for (int g = 0; g < G; ++g)
            tracks_with[size_t(g)] += data.targets[size_t(c) * size_t(G) + size_t(g)] > 0.5f;
    }
    std::vector<double> w(chunks.size(), 0.0);
    double smallest = 0;
    for (size_t i = 0; i < chunks.size(); ++i) {
        const int c = chunks[i];
        for (int g = 0; g < G; ++g)
            if (data.targets[size_t(c) * size_t(G) + size_t(g)] > 0.5f)
                w[i] = std::max(w[i], 1.0 / tracks_with[size_t(g)]);
        w[i] /= track_chunks[data.chunks[size_t(c)].track];
        if (w[i] > 0 && (smallest == 0 || w[i] < smallest)) smallest = w[i];
    }
    for (double& v : w)
        if (v == 0) v = smallest > 0 ? smallest : 1.0;
    return w;
}

}  // namespace gnet
