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

[[noreturn]] void meta_fail(const std::string& path, const char* key, const std::string& why) {
    throw Error(path + ": metadata '" + key + "': " + why);
}

Json parse_meta_json(const std::string& path, const char* key, const std::string& text) {
    try {
        return Json::parse(text);
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

AudioMeta parse_audio(const std::string& path, const std::string& text) {
    Json j = parse_meta_json(path, kAudioKey, text);
    if (!j.is_object()) meta_fail(path, kAudioKey, "not a JSON object");
    AudioMeta a;
    try {
        auto positive_int = [&](const char* key, int& out) {
            if (const Json* v = j.find(key)) {
                int64_t x = v->as_int();
                if (x <= 0 || x > (1 << 30))
                    meta_fail(path, kAudioKey, std::string(key) + " must be a positive integer");
                out = int(x);
            }
        };
        auto positive_number = [&](const char* key, double& out) {
            if (const Json* v = j.find(key)) {
                out = v->as_number();
                if (!(out > 0)) meta_fail(path, kAudioKey, std::string(key) + " must be positive");
            }
        };
        positive_int("sample_rate", a.sample_rate);
        positive_int("n_fft", a.n_fft);
        positive_int("hop_length", a.hop_length);
        positive_int("n_mels", a.n_mels);
        positive_number("chunk_seconds", a.chunk_seconds);
        positive_number("top_db", a.top_db);
        if (const Json* v = j.find("normalisation")) a.normalisation = v->as_string();
    } catch (const JsonError& e) {
        meta_fail(path, kAudioKey, e.what());
    }
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
    Json genres = Json::array();
    for (const std::string& g : meta.genres) genres.push_back(Json(g));
    m[kGenresKey] = genres.dump();

    Json audio = Json::object();
    audio.set("sample_rate", Json(meta.audio.sample_rate));
    audio.set("n_fft", Json(meta.audio.n_fft));
    audio.set("hop_length", Json(meta.audio.hop_length));
    audio.set("n_mels", Json(meta.audio.n_mels));
    audio.set("chunk_seconds", Json(meta.audio.chunk_seconds));
    audio.set("top_db", Json(meta.audio.top_db));
    audio.set("normalisation", Json(meta.audio.normalisation));
    m[kAudioKey] = audio.dump();

    Json thresholds = Json::array();
    if (meta.thresholds.empty())
        for (size_t i = 0; i < meta.genres.size(); ++i)
            thresholds.push_back(Json(double(kDefaultThreshold)));
    for (float t : meta.thresholds) thresholds.push_back(Json(float_for_json(t)));
    m[kThresholdsKey] = thresholds.dump();

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
        std::set<std::string> seen;
        for (const Json& g : j.as_array()) {
            if (!g.is_string() || g.as_string().empty())
                meta_fail(path, kGenresKey, "every genre must be a non-empty string");
            if (!seen.insert(g.as_string()).second)
                meta_fail(path, kGenresKey, "duplicate genre '" + g.as_string() + "'");
            meta.genres.push_back(g.as_string());
        }
        if (int(meta.genres.size()) != fc_rows)
            meta_fail(path, kGenresKey,
                      "lists " + std::to_string(meta.genres.size()) + " genres but fc.weight has " +
                          std::to_string(fc_rows) + " rows");
    } else if (genres_file) {
        meta.genres = read_genres_file(*genres_file);
        if (int(meta.genres.size()) != fc_rows)
            throw Error(*genres_file + ": lists " + std::to_string(meta.genres.size()) +
                        " genres but " + path + " has " + std::to_string(fc_rows) +
                        " outputs (fc.weight rows)");
    } else {
        for (int g = 0; g < fc_rows; ++g) meta.genres.push_back("genre_" + std::to_string(g));
    }

    it = metadata.find(kAudioKey);
    if (it != metadata.end()) meta.audio = parse_audio(path, it->second);

    it = metadata.find(kThresholdsKey);
    if (it != metadata.end()) {
        Json j = parse_meta_json(path, kThresholdsKey, it->second);
        if (!j.is_array()) meta_fail(path, kThresholdsKey, "not a JSON array");
        for (const Json& t : j.as_array()) {
            if (!t.is_number() || !(t.as_number() >= 0.0 && t.as_number() <= 1.0))
                meta_fail(path, kThresholdsKey, "every threshold must be a number in [0, 1]");
            meta.thresholds.push_back(float(t.as_number()));
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

Checkpoint read_checkpoint(const std::string& path,
                           const std::optional<std::string>& genres_file) {
    Checkpoint ck;
    ck.path = path;
    ck.state = safetensors_read(path);
    const StTensor* fc = ck.state.find("fc.weight");
    if (!fc) throw Error(path + ": tensor 'fc.weight' is missing (not a ResNet18 checkpoint?)");
    if (fc->shape.size() != 2 || fc->shape[0] < 1 || fc->shape[1] != 512)
        throw Error(path + ": tensor 'fc.weight' has shape " + shape_string(fc->shape) +
                    ", expected [genres, 512]");
    const int fc_rows = int(fc->shape[0]);
    ck.meta = parse_checkpoint_metadata(ck.state.metadata, fc_rows, path, genres_file);
    check_state_dict(ck.state, fc_rows, path);
    return ck;
}

void load_checkpoint(const Checkpoint& checkpoint, ResNet18& model) {
    if (checkpoint.num_genres() != model.num_genres())
        throw Error(checkpoint.path + ": has " + std::to_string(checkpoint.num_genres()) +
                    " genres but the model was built for " + std::to_string(model.num_genres()));
    model.load_state_dict(checkpoint.state, checkpoint.path);
}

void write_checkpoint(const std::string& path, const ResNet18& model, const CheckpointMeta& meta) {
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

void write_optimizer_state(const std::string& path, const ResNet18& model) {
    safetensors_write(path, model.optimizer_state());
}

void read_optimizer_state(const std::string& path, ResNet18& model) {
    model.load_optimizer_state(safetensors_read(path), path);
}

}  // namespace gnet
