// gnet embed FILE_OR_DIR... --model M -o OUT: the 512-d pooled ResNet18 features of every track and
// of every window, for clustering, similarity search or another classifier.
//   OUT.npy   -> OUT.npy (tracks, 512), OUT.segments.npy (windows, 512) and OUT.csv, the index:
//                kind,row,file,start_s,end_s (kind = track | segment; row = the row in its .npy)
//   OUT.json  -> one document: [{"file", "duration_s", "windows", "hop_s", "embedding": [512],
//                "segments": [{"start_s", "end_s", "embedding": [512]}, ...]}, ...]
// A track's embedding is the mean of its windows' (the same aggregation predict's mean uses).
#include <filesystem>
#include <iostream>
#include <optional>

#include "audio/npy.h"
#include "cli/commands.h"
#include "kernels/error.h"
#include "nn/atomic_file.h"
#include "nn/checkpoint.h"
#include "nn/json.h"
#include "nn/network.h"
#include "train/csv.h"
#include "train/predict.h"

namespace gnet::cli {

namespace {

struct EmbedArgs {
    std::vector<std::string> inputs;
    std::string model = "model.safetensors";
    std::string out;
    std::string genres_file;
    double hop = 0;
    int batch = 32;
    int jobs = 0;
    std::string device = "auto";
};

bool ends_with(const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}
bool out_is_json(const std::string& out) {
    return ends_with(out, ".json");
}

std::string with_suffix(const std::string& out, const std::string& suffix) {
    const std::string stem = out.substr(0, out.size() - 4);  // without ".npy"
    return stem + suffix;
}

int run_embed(const EmbedArgs& a) {
    const bool json = out_is_json(a.out);
    if (!json && !ends_with(a.out, ".npy"))
        throw UsageError("-o " + a.out +
                         ": give a .npy (arrays + a .csv index) or .json file name");
    std::vector<std::string> missing;
    std::vector<std::string> files = expand_inputs(a.inputs, &missing);
    if (files.empty() && missing.empty()) throw Error("no audio files found in the given folders");
    Checkpoint ckpt = read_checkpoint(
        a.model, a.genres_file.empty() ? std::nullopt : std::optional<std::string>(a.genres_file));
    const Device device = resolve_device(parse_device_choice(a.device), &std::cerr);
    // The pooled features come from the float32 model (the bf16 model does not expose them yet).
    set_precision_choice(Precision::Fp32);
    PredictOptions opt;
    opt.batch = a.batch;
    opt.jobs = a.jobs;
    opt.hop_s = a.hop;
    opt.embeddings = true;
    Tagger tagger(ckpt, device, opt);

    int failed = 0;
    for (const std::string& m : missing) {
        ++failed;
        std::cerr << "gnet: " << m << ": no such file or folder\n";
    }
    std::vector<float> tracks, segments;
    std::vector<std::vector<std::string>> index = {{"kind", "row", "file", "start_s", "end_s"}};
    OrderedJson doc = OrderedJson::array();
    int64_t n_tracks = 0, n_segments = 0;
    tagger.tag_files(
        files,
        [&](const TrackPrediction& t) {
            if (json) {
                OrderedJson segs = OrderedJson::array();
                for (const SegmentPrediction& s : t.segments)
                    segs.push_back(
                        {{"start_s", s.start_s}, {"end_s", s.end_s}, {"embedding", s.embedding}});
                doc.push_back({{"file", t.file},
                               {"duration_s", t.duration_s},
                               {"windows", t.chunks},
                               {"hop_s", t.hop_s},
                               {"embedding", t.embedding},
                               {"segments", std::move(segs)}});
                return;
            }
            tracks.insert(tracks.end(), t.embedding.begin(), t.embedding.end());
            index.push_back(
                {"track", std::to_string(n_tracks++), t.file, "0", std::to_string(t.duration_s)});
            for (const SegmentPrediction& s : t.segments) {
                segments.insert(segments.end(), s.embedding.begin(), s.embedding.end());
                index.push_back({"segment", std::to_string(n_segments++), t.file,
                                 std::to_string(s.start_s), std::to_string(s.end_s)});
            }
        },
        [&](const std::string& file, const std::string& reason) {
            ++failed;
            std::cerr << "gnet: "
                      << (reason.find(file) == std::string::npos ? file + ": " + reason : reason)
                      << "\n";
        });
    const int64_t D = 512;
    if (json) {
        write_file_atomic(a.out, json_dump(doc, 1) + "\n");
        std::cerr << "wrote " << doc.size() << " track embeddings (" << D << "-d) to " << a.out
                  << "\n";
    } else {
        const std::string seg_path = with_suffix(a.out, ".segments.npy"),
                          csv_path = with_suffix(a.out, ".csv");
        npy_write(a.out, tracks.data(), {n_tracks, D});
        npy_write(seg_path, segments.data(), {n_segments, D});
        std::string csv;
        for (const auto& row : index)
            csv += csv_line(row);
        write_file_atomic(csv_path, csv);
        std::cerr << "wrote " << n_tracks << " track and " << n_segments << " window embeddings ("
                  << D << "-d) to " << a.out << ", " << seg_path << " (index: " << csv_path
                  << ")\n";
    }
    if (failed)
        std::cerr << "gnet: " << failed << " of " << files.size() + missing.size()
                  << " inputs could not be embedded\n";
    return failed ? 1 : 0;
}

}  // namespace

void register_embed(CLI::App& app, Context& ctx) {
    auto a = std::make_shared<EmbedArgs>();
    CLI::App* cmd = app.add_subcommand(
        "embed", "Write the 512-d ResNet18 features of tracks and windows (.npy or .json)");
    cmd->add_option("inputs", a->inputs, "Audio files and folders (searched recursively)")
        ->required();
    cmd->add_option("--model,-m", a->model,
                    "Checkpoint from gnet train (or a torchvision-named "
                    "ResNet18 state_dict with --genres)")
        ->capture_default_str();
    cmd->add_option("--out,-o", a->out,
                    "OUT.npy: OUT.npy (tracks x 512), OUT.segments.npy (windows x 512), OUT.csv "
                    "(index); OUT.json: one JSON document")
        ->required();
    cmd->add_option("--hop", a->hop, "Seconds between window starts, up to 10 (default 10)")
        ->check(positive_real());
    cmd->add_option("--genres", a->genres_file,
                    "Genre names, one per line, for a checkpoint without gnet metadata")
        ->check(CLI::ExistingFile);
    cmd->add_option("--batch", a->batch, "Windows per forward pass")
        ->check(CLI::Range(1, 4096))
        ->capture_default_str();
    cmd->add_option("--jobs,-j", a->jobs, "Decoding threads (0 = all cores)")
        ->check(non_negative_integer())
        ->capture_default_str();
    add_device_option(*cmd, a->device);
    cmd->footer(
        "Examples:\n"
        "  gnet embed music/ --model run/best.safetensors -o emb.npy\n"
        "      emb.npy (tracks x 512), emb.segments.npy (windows x 512), emb.csv (which row is "
        "what)\n"
        "  gnet embed song.mp3 --model run/best.safetensors --hop 5 -o song.json\n"
        "  python3 -c \"import numpy; print(numpy.load('emb.npy').shape)\"");
    cmd->callback([a, &ctx] { ctx.exit_code = run_embed(*a); });
}

}  // namespace gnet::cli
