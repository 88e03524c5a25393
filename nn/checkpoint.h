// Model checkpoints: a .safetensors file holding torchvision's ResNet18 state_dict (names,
// shapes, dtypes; PyTorch loads it with load_state_dict, gnet loads one saved from PyTorch) and
// in "__metadata__" (string values, JSON-encoded where structured):
//   gnet.genres      JSON array of genre names in output order   missing -> --genres FILE, else
//                                                                 genre_0, genre_1, ...
//   gnet.audio       JSON object {sample_rate, n_fft, hop_length, n_mels, chunk_seconds, top_db,
//                    normalisation}                               missing -> SPEC.md defaults
//   gnet.thresholds  JSON array of per-genre decision thresholds  missing -> 0.5 each
//   gnet.train       free-form training provenance (JSON text by convention)
// Reading validates the file (nn/safetensors.h), every metadata value, every tensor name, shape
// and dtype against ResNet18's layout, and the genre count (fc.weight rows vs genres and
// thresholds); every failure is an Error naming the file and, where there is one, the tensor.
//
// Optimizer state (for --resume) is kept apart, in its own .safetensors: "exp_avg.<param>",
// "exp_avg_sq.<param>" per parameter and "step" (I64 scalar). All writes are atomic.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "nn/network.h"
#include "nn/resnet18.h"
#include "nn/safetensors.h"

namespace gnet {

struct AudioMeta {  // defaults: SPEC.md's front end
    int sample_rate = 22050;
    int n_fft = 2048;
    int hop_length = 512;
    int n_mels = 128;
    double chunk_seconds = 10.0;
    double top_db = 80.0;
    std::string normalisation = "minmax";  // per chunk, to [0, 1]
    bool operator==(const AudioMeta& o) const;
};

struct CheckpointMeta {
    std::vector<std::string> genres;
    AudioMeta audio;
    std::vector<float> thresholds;  // one per genre
    std::string train;              // provenance, free form; "" = none
};

struct Checkpoint {
    std::string path;
    CheckpointMeta meta;
    StFile state;  // validated against resnet18_state_layout(num_genres())
    int num_genres() const { return int(meta.genres.size()); }
};

// Genre names, one per line (DATA_DIR/genres.txt); blank lines and surrounding whitespace are
// ignored; an empty list or a duplicate name is an Error naming the file and line.
std::vector<std::string> read_genres_file(const std::string& path);

// Reads and validates a checkpoint. `genres_file` names the genres when the metadata has none.
Checkpoint read_checkpoint(const std::string& path,
                           const std::optional<std::string>& genres_file = std::nullopt);
// Builds nothing: loads a validated checkpoint into a model with the same genre count.
void load_checkpoint(const Checkpoint& checkpoint, Network& model);
// Writes the model's state_dict and `meta` (genres must match the model's genre count; empty
// thresholds are written as 0.5 each).
void write_checkpoint(const std::string& path, const Network& model, const CheckpointMeta& meta);

// The metadata map <-> CheckpointMeta (`fc_rows` = genre count found in the tensors; `path`
// names the file in errors).
std::map<std::string, std::string> checkpoint_metadata(const CheckpointMeta& meta);
CheckpointMeta parse_checkpoint_metadata(const std::map<std::string, std::string>& metadata,
                                         int fc_rows, const std::string& path,
                                         const std::optional<std::string>& genres_file);

void write_optimizer_state(const std::string& path, const Network& model);
void read_optimizer_state(const std::string& path, Network& model);

}  // namespace gnet
