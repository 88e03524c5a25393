#include "cli/evaluation_report.h"

#include "kernels/error.h"
#include "nn/checkpoint.h"
#include "nn/network.h"
#include "nn/resnet18.h"
#include "train/dataset.h"
#include "train/metrics.h"
#include "train/trainer.h"

namespace gnet::cli {

void print_evaluation(const std::string& model_path, const std::string& data_dir,
                      const std::string& split_name, Device device, int batch, ReportLevels levels,
                      std::ostream& out) {
    const Split split = parse_split(split_name);
    const PreparedData data = load_prepared(data_dir);
    const Checkpoint ck = read_checkpoint(model_path);
    if (ck.meta.genres != data.genres)
        throw Error(model_path + ": the model's genres differ from " + data_dir + "/genres.txt");
    const std::vector<int> chunks = data.split_chunks(split);
    if (chunks.empty())
        throw Error(data_dir + "/manifest.csv: no chunk in the " + split_name + " split");
    ResNet18Config cfg;
    cfg.num_genres = data.num_genres();
    cfg.max_batch = batch;
    cfg.init_seed = std::nullopt;  // every weight comes from the checkpoint
    cfg.training = false;          // inference memory only
    const std::unique_ptr<Network> network = make_network(cfg, device);
    Network& model = *network;
    load_checkpoint(ck, model);
    SplitEvaluation ev = evaluate_split(model, data, chunks, batch, ck.meta.thresholds, {});
    const int tracks = int(ev.track_targets.size()) / data.num_genres();
    out << model_path << " on " << data_dir << " (" << split_name << "): " << chunks.size()
        << " chunks of " << tracks << " tracks, loss " << ev.loss << "\n";
    out << "decision thresholds (from the checkpoint):";
    for (size_t g = 0; g < data.genres.size(); ++g)
        out << " " << data.genres[g] << " "
            << (ck.meta.thresholds.empty() ? 0.5f : ck.meta.thresholds[g]);
    out << "\n";
    auto level = [&](const std::string& title, const MetricsReport& r) {
        out << "\n" << title << "\n" << format_metrics_table(r, data.genres);
    };
    if (levels == ReportLevels::All) level("chunk level", ev.chunk);
    level("track level, mean of chunk probabilities", ev.track_mean_report);
    if (levels == ReportLevels::All)
        level("track level, max of chunk probabilities", ev.track_max_report);
}

}  // namespace gnet::cli
