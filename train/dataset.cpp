#include "train/dataset.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
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

namespace {

bool parse_int64(const std::string& s, int64_t& out) {
    if (s.empty() || s.size() > 15) return false;
    int64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
        v = v * 10 + (c - '0');
    }
    out = v;
    return true;
}

bool parse_hex32(const std::string& s, uint32_t& out) {
    if (s.size() != 8) return false;
    uint32_t v = 0;
    for (char c : s) {
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return false;
        v = v * 16 + uint32_t(d);
    }
    out = v;
    return true;
}

// shards/index.csv -> d.shard_files, d.shard_headers, d.spans (tracks by name into d.tracks).
void load_span_index(PreparedData& d, std::unordered_map<std::string, int>& track_id) {
    const std::string index = d.dir + "/shards/index.csv";
    std::vector<CsvRecord> recs = csv_read_file(index);
    const std::vector<std::string> expect = {"shard", "frame", "frames", "crc32", "track"};
    if (recs.empty() || recs[0].fields != expect)
        throw Error(index + ":1: header is not shard,frame,frames,crc32,track");
    std::unordered_map<std::string, int> shard_id;
    std::vector<int64_t> shard_end;  // frames used so far, per shard: spans in order, no overlap
    for (size_t r = 1; r < recs.size(); ++r) {
        const CsvRecord& rec = recs[r];
        const std::string where = index + ":" + std::to_string(rec.line) + ": ";
        if (rec.fields.size() != expect.size())
            throw Error(where + std::to_string(rec.fields.size()) +
                        " fields where the header has " + std::to_string(expect.size()));
        SpanEntry s;
        s.line = rec.line;
        const std::string& file = rec.fields[0];
        if (file.empty() || file.find("..") != std::string::npos || file[0] == '/')
            throw Error(where + "bad shard file '" + file + "'");
        auto [it, fresh] = shard_id.emplace(file, int(d.shard_files.size()));
        if (fresh) {
            d.shard_files.push_back(file);
            d.shard_headers.push_back(read_shard_header(d.dir + "/" + file));
            shard_end.push_back(0);
        }
        s.shard = it->second;
        if (!parse_int64(rec.fields[1], s.frame) || !parse_int64(rec.fields[2], s.frames) ||
            s.frames < kFrames)
            throw Error(where + "frame '" + rec.fields[1] + "' / frames '" + rec.fields[2] +
                        "' are not integers with frames >= " + std::to_string(kFrames));
        if (!parse_hex32(rec.fields[3], s.crc32))
            throw Error(where + "crc32 '" + rec.fields[3] + "' is not 8 lower-case hex digits");
        if (s.frame < shard_end[size_t(s.shard)])
            throw Error(where + "span overlaps the previous span of " + file);
        if (s.frame + s.frames > d.shard_headers[size_t(s.shard)].frames)
            throw Error(where + "span ends at frame " + std::to_string(s.frame + s.frames) +
                        " but " + file + " holds " +
                        std::to_string(d.shard_headers[size_t(s.shard)].frames) +
                        " frames (a truncated or replaced shard; run gnet prepare again)");
        shard_end[size_t(s.shard)] = s.frame + s.frames;
        const std::string& track = rec.fields[4];
        if (track.empty()) throw Error(where + "empty track");
        auto [t, new_track] = track_id.emplace(track, int(d.tracks.size()));
        if (new_track) d.tracks.push_back(track);
        s.track = t->second;
        d.spans.push_back(s);
    }
    if (d.spans.empty()) throw Error(index + ": no span rows");
}

}  // namespace

std::string span_index_header() {
    return csv_line({"shard", "frame", "frames", "crc32", "track"});
}

std::string span_index_row(const std::string& shard_file, const SpanEntry& span,
                           const std::string& track) {
    char crc[16];
    std::snprintf(crc, sizeof crc, "%08x", span.crc32);
    return csv_line(
        {shard_file, std::to_string(span.frame), std::to_string(span.frames), crc, track});
}

PreparedData load_prepared(const std::string& dir) {
    PreparedData d;
    d.dir = dir;
    d.genres = read_genres(dir + "/genres.txt");
    const int G = d.num_genres();
    const std::string manifest = dir + "/manifest.csv";
    std::vector<CsvRecord> recs = csv_read_file(manifest);
    if (recs.empty()) throw Error(manifest + ": empty (expected a header line)");

    const CsvRecord& head = recs[0];
    const bool sharded = !head.fields.empty() && head.fields[0] == "shard";
    d.layout = sharded ? DataLayout::Shards : DataLayout::ChunkFiles;
    std::vector<std::string> expect =
        sharded ? std::vector<std::string>{"shard", "frame", "split", "track", "start_s"}
                : std::vector<std::string>{"file", "split", "track", "start_s"};
    const int K = int(expect.size());  // fields before the genres
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
    std::unordered_map<std::string, int> shard_id;
    // Shards: per shard, its span indices in frame order (index.csv keeps them in order).
    std::vector<std::vector<int>> shard_spans;
    if (sharded) {
        load_span_index(d, track_id);
        for (size_t i = 0; i < d.shard_files.size(); ++i)
            shard_id.emplace(d.shard_files[i], int(i));
        shard_spans.resize(d.shard_files.size());
        for (size_t s = 0; s < d.spans.size(); ++s)
            shard_spans[size_t(d.spans[s].shard)].push_back(int(s));
    }
    std::vector<int> track_first_chunk(d.tracks.size(), -1);
    std::vector<Split> track_split(d.tracks.size(), Split::Train);
    std::unordered_set<std::string> files;
    std::unordered_set<int64_t> positions;  // Shards: (shard, frame) of every chunk
    d.chunks.reserve(recs.size() - 1);
    d.targets.reserve((recs.size() - 1) * size_t(G));
    const int f_split = sharded ? 2 : 1, f_track = f_split + 1, f_start = f_split + 2;
    for (size_t r = 1; r < recs.size(); ++r) {
        const CsvRecord& rec = recs[r];
        const std::string where = manifest + ":" + std::to_string(rec.line) + ": ";
        if (int(rec.fields.size()) != K + G)
            throw Error(where + std::to_string(rec.fields.size()) +
                        " fields where the header has " + std::to_string(K + G));
        ChunkEntry c;
        c.line = rec.line;
        c.file = rec.fields[0];
        if (c.file.empty()) throw Error(where + "empty file name");
        if (sharded) {
            auto s = shard_id.find(c.file);
            if (s == shard_id.end())
                throw Error(where + "shard '" + c.file + "' is not in shards/index.csv");
            if (!parse_int64(rec.fields[1], c.frame))
                throw Error(where + "frame '" + rec.fields[1] + "' is not a non-negative integer");
            if (!positions.insert((int64_t(s->second) << 40) | c.frame).second)
                throw Error(where + "frame " + rec.fields[1] + " of '" + c.file + "' listed twice");
            // The span holding [frame, frame + 431): the last one starting at or before frame.
            const std::vector<int>& spans = shard_spans[size_t(s->second)];
            auto it = std::upper_bound(spans.begin(), spans.end(), c.frame, [&](int64_t f, int i) {
                return f < d.spans[size_t(i)].frame;
            });
            if (it != spans.begin()) {
                const SpanEntry& sp = d.spans[size_t(*(it - 1))];
                if (c.frame + kFrames <= sp.frame + sp.frames) c.span = *(it - 1);
            }
            if (c.span < 0)
                throw Error(where + "frames " + rec.fields[1] + ".." +
                            std::to_string(c.frame + kFrames) + " of '" + c.file +
                            "' lie in no span of shards/index.csv");
        } else if (!files.insert(c.file).second) {
            throw Error(where + "file '" + c.file + "' listed twice");
        }
        const std::string& split = rec.fields[size_t(f_split)];
        if (split == "train")
            c.split = Split::Train;
        else if (split == "val")
            c.split = Split::Val;
        else
            throw Error(where + "unknown split '" + split + "' (expected train or val)");
        const std::string& track = rec.fields[size_t(f_track)];
        if (track.empty()) throw Error(where + "empty track");
        if (!parse_int(rec.fields[size_t(f_start)], c.start_s))
            throw Error(where + "start_s '" + rec.fields[size_t(f_start)] +
                        "' is not a non-negative integer");
        for (int g = 0; g < G; ++g) {
            const std::string& cell = rec.fields[size_t(K + g)];
            if (cell != "0" && cell != "1")
                throw Error(where + "genre '" + d.genres[size_t(g)] + "' has '" + cell +
                            "' (expected 0 or 1)");
            d.targets.push_back(cell == "1" ? 1.f : 0.f);
        }
        auto [it, fresh] = track_id.emplace(track, int(d.tracks.size()));
        c.track = it->second;
        if (fresh) {
            d.tracks.push_back(track);
            track_first_chunk.push_back(-1);
            track_split.push_back(c.split);
        }
        if (sharded && d.spans[size_t(c.span)].track != c.track)
            throw Error(where + "the chunk lies in a span of track '" +
                        d.tracks[size_t(d.spans[size_t(c.span)].track)] + "' (index.csv:" +
                        std::to_string(d.spans[size_t(c.span)].line) + "), not of '" + track + "'");
        const int chunk = int(d.chunks.size());
        int& first_chunk = track_first_chunk[size_t(c.track)];
        if (first_chunk < 0) {
            first_chunk = chunk;
            track_split[size_t(c.track)] = c.split;
        } else {
            if (track_split[size_t(c.track)] != c.split)
                throw Error(where + "track '" + track + "' is in both splits (line " +
                            std::to_string(d.chunks[size_t(first_chunk)].line) + " puts it in " +
                            split_name(track_split[size_t(c.track)]) + ")");
            const float* first = &d.targets[size_t(first_chunk) * size_t(G)];
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

std::string PreparedData::shard_path(int shard) const {
    return dir + "/" + shard_files[size_t(shard)];
}

void PreparedData::read_span(int span, std::vector<float>& frames) const {
    GNET_CHECK(layout == DataLayout::Shards && span >= 0 && span < int(spans.size()),
               "span index out of range");
    const SpanEntry& s = spans[size_t(span)];
    frames.resize(size_t(s.frames) * kShardBands);
    read_shard_frames(shard_path(s.shard), shard_headers[size_t(s.shard)], s.frame, s.frames,
                      frames.data(), &s.crc32);
}

void PreparedData::read_chunk(int chunk, float* out) const {
    GNET_CHECK(chunk >= 0 && chunk < num_chunks(), "chunk index out of range");
    if (layout == DataLayout::Shards) {
        const ChunkEntry& c = chunks[size_t(chunk)];
        const SpanEntry& s = spans[size_t(c.span)];
        std::vector<float> frames(size_t(kFrames) * kShardBands);
        read_shard_frames(shard_path(s.shard), shard_headers[size_t(s.shard)], c.frame, kFrames,
                          frames.data());
        window_from_frames(frames.data(), 0, out, top_db, shard_path(s.shard));
        return;
    }
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
