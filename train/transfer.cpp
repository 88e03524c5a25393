#include "train/transfer.h"

#include <map>
#include <set>

#include "kernels/error.h"
#include "nn/checkpoint.h"
#include "nn/json.h"
#include "nn/safetensors.h"

namespace gnet {

std::string InitReport::summary() const {
    std::string s = "--init " + path + ": " + std::to_string(loaded) + " tensors loaded";
    if (!adapted.empty()) s += ", " + std::to_string(adapted.size()) + " adapted";
    if (!reinitialised.empty())
        s += ", " + std::to_string(reinitialised.size()) + " re-initialised";
    if (!ignored.empty()) s += ", " + std::to_string(ignored.size()) + " in the file not used";
    s += "\n  head (fc): " + head_reason + "\n";
    for (const std::string& a : adapted)
        s += "  adapted: " + a + "\n";
    for (const std::string& r : reinitialised)
        s += "  re-initialised: " + r + "\n";
    const size_t shown = std::min<size_t>(ignored.size(), 5);
    for (size_t i = 0; i < shown; ++i)
        s += "  not used: " + ignored[i] + "\n";
    if (ignored.size() > shown)
        s += "  ... and " + std::to_string(ignored.size() - shown) + " more not used\n";
    return s;
}

namespace {

std::string strip_prefix(const std::string& name) {
    const std::string p = "module.";
    return name.compare(0, p.size(), p) == 0 ? name.substr(p.size()) : name;
}

// The genre names a checkpoint's metadata gives (empty when it gives none).
std::vector<std::string> file_genres(const StFile& f, int fc_rows, const std::string& path) {
    if (f.metadata.find("gnet.genres") == f.metadata.end() || fc_rows <= 0) return {};
    return parse_checkpoint_metadata(f.metadata, fc_rows, path, std::nullopt).genres;
}

}  // namespace

InitReport init_from_checkpoint(const std::string& path, const std::vector<std::string>& genres,
                                Network& model) {
    const StFile src = safetensors_read(path);
    std::map<std::string, const StTensor*> by_name;
    for (const StTensor& t : src.tensors)
        by_name[strip_prefix(t.name)] = &t;
    const StTensor* src_fc = by_name.count("fc.weight") ? by_name["fc.weight"] : nullptr;
    const int src_rows = src_fc && src_fc->shape.size() == 2 ? int(src_fc->shape[0]) : 0;
    const std::vector<std::string> src_genres = file_genres(src, src_rows, path);

    InitReport r;
    r.path = path;
    // The head: kept, reordered or re-initialised.
    std::vector<int> row_of;  // new genre g -> row in the file's fc
    if (src_genres.empty()) {
        r.head_reason = src_fc ? "re-initialised: the checkpoint names no genres (its " +
                                     std::to_string(src_rows) + " outputs are not gnet's " +
                                     std::to_string(genres.size()) + " genres)"
                               : "re-initialised: the checkpoint has no fc";
    } else if (src_genres == genres) {
        r.head_kept = true;
        r.head_reason = "kept: the same " + std::to_string(genres.size()) + " genres";
        for (size_t g = 0; g < genres.size(); ++g)
            row_of.push_back(int(g));
    } else if (std::set<std::string>(src_genres.begin(), src_genres.end()) ==
               std::set<std::string>(genres.begin(), genres.end())) {
        r.head_kept = true;
        r.head_reason = "kept, rows reordered: the same genres in another order";
        for (const std::string& g : genres)
            row_of.push_back(
                int(std::find(src_genres.begin(), src_genres.end(), g) - src_genres.begin()));
    } else {
        std::string only_new, only_old;
        for (const std::string& g : genres)
            if (std::find(src_genres.begin(), src_genres.end(), g) == src_genres.end())
                only_new += (only_new.empty() ? "" : ", ") + g;
        for (const std::string& g : src_genres)
            if (std::find(genres.begin(), genres.end(), g) == genres.end())
                only_old += (only_old.empty() ? "" : ", ") + g;
        r.head_reason =
            "re-initialised: the genre set differs (new here: " +
            (only_new.empty() ? std::string("none") : only_new) +
            "; only in the checkpoint: " + (only_old.empty() ? std::string("none") : only_old) +
            ")";
    }

    StFile state = model.state_dict();
    std::set<std::string> used;
    for (StTensor& t : state.tensors) {
        auto it = by_name.find(t.name);
        const bool head = t.name == "fc.weight" || t.name == "fc.bias";
        if (it == by_name.end()) {
            r.reinitialised.push_back(t.name + " (not in the file)");
            continue;
        }
        const StTensor& s = *it->second;
        used.insert(it->first);
        if (head) {
            if (!r.head_kept) continue;
            const int64_t cols = t.name == "fc.weight" ? t.shape[1] : 1;
            const bool fits = s.dtype == StDtype::F32 && s.shape.size() == t.shape.size() &&
                              int64_t(s.f32.size()) == int64_t(src_rows) * cols &&
                              (t.name == "fc.bias" || s.shape[1] == t.shape[1]);
            if (!fits) {
                r.head_kept = false;
                r.head_reason = "re-initialised: fc has shape " + shape_string(s.shape);
                continue;
            }
            for (size_t g = 0; g < row_of.size(); ++g)
                std::copy_n(s.f32.begin() + int64_t(row_of[g]) * cols, cols,
                            t.f32.begin() + int64_t(g) * cols);
            ++r.loaded;
            continue;
        }
        if (s.dtype == t.dtype && s.shape == t.shape) {
            t.f32 = s.f32;
            t.i64 = s.i64;
            ++r.loaded;
        } else if (t.name == "conv1.weight" && s.dtype == StDtype::F32 && s.shape.size() == 4 &&
                   s.shape[0] == t.shape[0] && s.shape[2] == t.shape[2] &&
                   s.shape[3] == t.shape[3] && s.shape[1] > 1) {
            const int64_t C = s.shape[1], K = s.shape[2] * s.shape[3];
            for (int64_t o = 0; o < t.shape[0]; ++o)
                for (int64_t k = 0; k < K; ++k) {
                    float sum = 0;
                    for (int64_t c = 0; c < C; ++c)
                        sum += s.f32[size_t((o * C + c) * K + k)];
                    t.f32[size_t(o * K + k)] = sum;
                }
            r.adapted.push_back("conv1.weight: " + std::to_string(C) +
                                " input channels summed into 1");
        } else {
            r.reinitialised.push_back(t.name + " (the file's is " + st_dtype_name(s.dtype) + " " +
                                      shape_string(s.shape) + ", the model's " +
                                      st_dtype_name(t.dtype) + " " + shape_string(t.shape) + ")");
        }
    }
    if (!r.head_kept) {
        r.reinitialised.push_back("fc.weight (head)");
        r.reinitialised.push_back("fc.bias (head)");
    }
    for (const auto& [name, t] : by_name)
        if (!used.count(name)) r.ignored.push_back(name);
    if (r.loaded == 0 && r.adapted.empty())
        throw Error(path +
                    ": no tensor fits a ResNet18 (is it a ResNet18 state_dict with "
                    "torchvision names?)");
    model.load_state_dict(state, path);
    return r;
}

}  // namespace gnet
