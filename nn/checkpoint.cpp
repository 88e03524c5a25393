#include "nn/checkpoint.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <sstream>

#include "kernels/error.h"
#include "nn/atomic_file.h"
#include "nn/json.h"

namespace gnet {

namespace {

constexpr const char* kGenresKey = "gnet.genres";
constexpr const char* kAudioKey = "gnet.audio";
constexpr const char* kThresholdsKey = "gnet.thresholds";
constexpr const char* kTrainKey = "gnet.train";
constexpr float kDefaultThreshold = 0.5f;
constexpr int64_t kMinSampleRate = 1000, kMaxSampleRate = 192000;
constexpr double kMaxChunkValues = 8.0 * 128 * 431;  // 8x the default image
constexpr size_t kMaxGenres = 4096;

[[noreturn]] void meta_fail(const std::string& path, const char* key, const std::string& why) {
    throw Error(path + ": metadata '" + key + "': " + why);
}

// Metadata values are small; a megabyte and 64k nodes is far beyond any honest one.
Json parse_meta_json(const std::string& path, const char* key, const std::string& text) {
    JsonLimits limits;
    limits.max_bytes = size_t(1) << 20;
    limits.max_nodes = size_t(1) << 16;
    limits.max_depth = 8;
    try {
        return json_parse(text, limits);
    } catch (const JsonError& e) {
        meta_fail(path, key, e.what());
    }
}

std::string trim(const std::string& s) {
    size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
    return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// The double nearest to the shortest decimal that reads back as `v` in float: thresholds are
// written as 0.3, not 0.30000001192092896.
double float_for_json(float v) {
    char buf[32];
    for (int prec = 1; prec <= 9; ++prec) {
        std::snprintf(buf, sizeof buf, "%.*g", prec, double(v));
        if (std::strtof(buf, nullptr) == v) break;
    }
    return std::strtod(buf, nullptr);
}

std::string short_number(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
}

// The audio settings size the model's input and predict's buffers, so every field is bounded to
// what a music tagger could honestly use (a checkpoint asking for 8 MHz audio or one-minute chunks
// would otherwise make predict allocate hundreds of GB).
AudioMeta parse_audio(const std::string& path, const std::string& text) {
    Json j = parse_meta_json(path, kAudioKey, text);
    if (!j.is_object()) meta_fail(path, kAudioKey, "not a JSON object");
    AudioMeta a;
    try {
        auto bounded_int = [&](const char* key, int& out, int64_t lo, int64_t hi) {
            auto it = j.find(key);
            if (it == j.end()) return;
            int64_t x = json_int(*it, std::string("'") + key + "'");
            if (x < lo || x > hi)
                meta_fail(path, kAudioKey,
                          std::string(key) + " " + std::to_string(x) + " is outside [" +
                              std::to_string(lo) + ", " + std::to_string(hi) + "]");
            out = int(x);
        };
        auto bounded_number = [&](const char* key, double& out, double lo, double hi) {
            auto it = j.find(key);
            if (it == j.end()) return;
            out = json_number(*it, std::string("'") + key + "'");
            if (!(out >= lo && out <= hi))
                meta_fail(path, kAudioKey,
                          std::string(key) + " " + short_number(out) + " is outside [" +
                              short_number(lo) + ", " + short_number(hi) + "]");
        };
        bounded_int("sample_rate", a.sample_rate, kMinSampleRate, kMaxSampleRate);
        bounded_int("n_fft", a.n_fft, 16, 16384);
        bounded_int("hop_length", a.hop_length, 16, 16384);
        bounded_int("n_mels", a.n_mels, 1, 512);
        bounded_number("chunk_seconds", a.chunk_seconds, 1.0, 30.0);
        bounded_number("top_db", a.top_db, 1.0, 200.0);
        if (j.contains("normalisation"))
            a.normalisation = json_string(j["normalisation"], "'normalisation'");
    } catch (const JsonError& e) {
        meta_fail(path, kAudioKey, e.what());
    }
    // The image one chunk becomes.
    const double frames = 1.0 + a.sample_rate * a.chunk_seconds / a.hop_length;
    if (frames * a.n_mels > kMaxChunkValues)
        meta_fail(path, kAudioKey,
                  "a chunk would become a " + std::to_string(a.n_mels) + " x " +
                      std::to_string(int64_t(frames)) + " image, more than " +
                      std::to_string(kMaxChunkValues) + " values");
    return a;
}

}  // namespace

bool AudioMeta::operator==(const AudioMeta& o) const {
    return sample_rate == o.sample_rate && n_fft == o.n_fft && hop_length == o.hop_length &&
           n_mels == o.n_mels && chunk_seconds == o.chunk_seconds && top_db == o.top_db &&
           normalisation == o.normalisation;
}

std::vector<std::string> read_genres_file(const std::string& path) {
    std::istringstream in(read_file(path));
    std::vector<std::string> genres;
    std::set<std::string> seen;
    std::string line;
    for (int line_no = 1; std::getline(in, line); ++line_no) {
        std::string name = trim(line);
        if (name.empty()) continue;
        if (!seen.insert(name).second)
            throw Error(path + ":" + std::to_string(line_no) + ": duplicate genre '" + name + "'");
        genres.push_back(name);
    }
    if (genres.empty()) throw Error(path + ": no genre names in the genres file");
    return genres;
}

std::map<std::string, std::string> checkpoint_metadata(const CheckpointMeta& meta) {
    std::map<std::string, std::string> m;
    m[kGenresKey] = json_dump(Json(meta.genres));

    OrderedJson audio = {{"sample_rate", meta.audio.sample_rate},     {"n_fft", meta.audio.n_fft},
                         {"hop_length", meta.audio.hop_length},       {"n_mels", meta.audio.n_mels},
                         {"chunk_seconds", meta.audio.chunk_seconds}, {"top_db", meta.audio.top_db},
                         {"normalisation", meta.audio.normalisation}};
    m[kAudioKey] = json_dump(audio);

    Json thresholds = Json::array();
    if (meta.thresholds.empty())
        for (size_t i = 0; i < meta.genres.size(); ++i)
            thresholds.push_back(double(kDefaultThreshold));
    for (float t : meta.thresholds)
        thresholds.push_back(float_for_json(t));
    m[kThresholdsKey] = json_dump(thresholds);

    if (!meta.train.empty()) m[kTrainKey] = meta.train;
    return m;
}

CheckpointMeta parse_checkpoint_metadata(const std::map<std::string, std::string>& metadata,
                                         int fc_rows, const std::string& path,
                                         const std::optional<std::string>& genres_file) {
    CheckpointMeta meta;
    auto it = metadata.find(kGenresKey);
    if (it != metadata.end()) {
        Json j = parse_meta_json(path, kGenresKey, it->second);
        if (!j.is_array()) meta_fail(path, kGenresKey, "not a JSON array");
        if (j.size() > kMaxGenres)
            meta_fail(path, kGenresKey,
                      "lists " + std::to_string(j.size()) + " genres (at most " +
                          std::to_string(kMaxGenres) + ")");
        std::set<std::string> seen;
        for (const Json& g : j) {
            if (!g.is_string() || g.get_ref<const std::string&>().empty())
                meta_fail(path, kGenresKey, "every genre must be a non-empty string");
            const std::string& name = g.get_ref<const std::string&>();
            for (unsigned char c : name)
                if (c < 0x20 || c == 0x7f)
                    meta_fail(path, kGenresKey,
                              "genre '" + utf8_or_escaped(name) + "' holds a control character");
            if (!seen.insert(name).second)
                meta_fail(path, kGenresKey, "duplicate genre '" + name + "'");
            meta.genres.push_back(name);
        }
        if (int(meta.genres.size()) != fc_rows)
            meta_fail(path, kGenresKey,
                      "lists " + std::to_string(meta.genres.size()) + " genres but fc.weight has " +
                          std::to_string(fc_rows) + " rows");
        // --genres names the outputs of a checkpoint without names; overriding names the model
        // was trained with would silently mislabel every output.
        if (genres_file && read_genres_file(*genres_file) != meta.genres)
            throw UsageError("--genres " + *genres_file + ": " + path +
                             " has its own genre names in its metadata (gnet.genres), and they "
                             "differ; --genres is only for checkpoints without them");
    } else if (genres_file) {
        meta.genres = read_genres_file(*genres_file);
        if (int(meta.genres.size()) != fc_rows)
            throw Error(*genres_file + ": lists " + std::to_string(meta.genres.size()) +
                        " genres but " + path + " has " + std::to_string(fc_rows) +
                        " outputs (fc.weight rows)");
    } else {
        for (int g = 0; g < fc_rows; ++g)
            meta.genres.push_back("genre_" + std::to_string(g));
    }

    it = metadata.find(kAudioKey);
    if (it != metadata.end()) meta.audio = parse_audio(path, it->second);

    it = metadata.find(kThresholdsKey);
    if (it != metadata.end()) {
        Json j = parse_meta_json(path, kThresholdsKey, it->second);
        if (!j.is_array()) meta_fail(path, kThresholdsKey, "not a JSON array");
        for (const Json& t : j) {
            if (!t.is_number() || !(t.get<double>() >= 0.0 && t.get<double>() <= 1.0))
                meta_fail(path, kThresholdsKey, "every threshold must be a number in [0, 1]");
            meta.thresholds.push_back(float(t.get<double>()));
        }
        if (meta.thresholds.size() != meta.genres.size())
            meta_fail(path, kThresholdsKey,
                      "has " + std::to_string(meta.thresholds.size()) + " values for " +
                          std::to_string(meta.genres.size()) + " genres");
    } else {
        meta.thresholds.assign(meta.genres.size(), kDefaultThreshold);
    }

    it = metadata.find(kTrainKey);
    if (it != metadata.end()) meta.train = it->second;
    return meta;
}

Checkpoint read_checkpoint(const std::string& path, const std::optional<std::string>& genres_file) {
    Checkpoint ck;
    ck.path = path;
    ck.state = safetensors_read(path);
    const StTensor* fc = ck.state.find("fc.weight");
    if (!fc) throw Error(path + ": tensor 'fc.weight' is missing (not a ResNet18 checkpoint?)");
    if (fc->shape.size() != 2 || fc->shape[0] < 1 || fc->shape[1] != 512)
        throw Error(path + ": tensor 'fc.weight' has shape " + shape_string(fc->shape) +
                    ", expected [genres, 512]");
    if (fc->shape[0] > int64_t(kMaxGenres))
        throw Error(path + ": tensor 'fc.weight' has " + std::to_string(fc->shape[0]) +
                    " rows (genres); at most " + std::to_string(kMaxGenres) + " are supported");
    const int fc_rows = int(fc->shape[0]);
    ck.meta = parse_checkpoint_metadata(ck.state.metadata, fc_rows, path, genres_file);
    check_state_dict(ck.state, fc_rows, path);
    // A NaN or infinite weight makes every score NaN: refuse the file rather than tag with it.
    for (const StTensor& t : ck.state.tensors)
        for (size_t i = 0; i < t.f32.size(); ++i)
            if (!std::isfinite(t.f32[i]))
                throw Error(path + ": tensor '" + t.name + "' holds a non-finite value (" +
                            (std::isnan(t.f32[i]) ? "NaN" : "infinity") + ") at index " +
                            std::to_string(i) + "; the checkpoint is corrupt or training diverged");
    return ck;
}

void load_checkpoint(const Checkpoint& checkpoint, Network& model) {
    if (checkpoint.num_genres() != model.num_genres())
        throw Error(checkpoint.path + ": has " + std::to_string(checkpoint.num_genres()) +
                    " genres but the model was built for " + std::to_string(model.num_genres()));
    model.load_state_dict(checkpoint.state, checkpoint.path);
}

void write_checkpoint(const std::string& path, const Network& model, const CheckpointMeta& meta) {
    GNET_CHECK(int(meta.genres.size()) == model.num_genres(),
               path + ": " + std::to_string(meta.genres.size()) + " genre names for a model with " +
                   std::to_string(model.num_genres()) + " outputs");
    GNET_CHECK(meta.thresholds.empty() || meta.thresholds.size() == meta.genres.size(),
               path + ": " + std::to_string(meta.thresholds.size()) + " thresholds for " +
                   std::to_string(meta.genres.size()) + " genres");
    StFile state = model.state_dict();
    state.metadata = checkpoint_metadata(meta);
    safetensors_write(path, state);
}

void write_optimizer_state(const std::string& path, const Network& model) {
    safetensors_write(path, model.optimizer_state());
}

void read_optimizer_state(const std::string& path, Network& model) {
    model.load_optimizer_state(safetensors_read(path), path);
}

}  // namespace gnet
