#include "train/predict.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <thread>

#include "audio/audio_files.h"
#include "audio/chunk.h"
#include "audio/load_audio.h"
#include "audio/spectrogram.h"
#include "kernels/error.h"
#include "kernels/sigmoid.h"
#include "nn/resnet18.h"
#include "train/metrics.h"

namespace fs = std::filesystem;

namespace gnet {

Aggregation parse_aggregation(const std::string& text) {
    if (text == "mean") return Aggregation::Mean;
    if (text == "max") return Aggregation::Max;
    throw UsageError("unknown --strategy '" + text + "' (expected mean or max)");
}

const char* aggregation_name(Aggregation a) {
    return a == Aggregation::Max ? "max" : "mean";
}

std::vector<std::string> expand_inputs(const std::vector<std::string>& inputs) {
    std::vector<std::string> out;
    for (const std::string& in : inputs) {
        std::error_code ec;
        if (fs::is_directory(in, ec)) {
            for (const std::string& rel : list_audio_files(in))
                out.push_back((fs::path(in) / rel).string());
        } else if (fs::exists(in, ec)) {
            out.push_back(in);
        } else {
            throw Error(in + ": no such file or folder");
        }
    }
    return out;
}

std::vector<float> aggregate_chunks(const std::vector<float>& probs, int chunks, int G,
                                    Aggregation a) {
    GNET_CHECK(chunks > 0 && probs.size() == size_t(chunks) * size_t(G),
               "aggregate_chunks: probabilities do not match chunks x genres");
    // One track holding every chunk.
    return aggregate_tracks(chunks, G, probs.data(), std::vector<int>(size_t(chunks), 0), 1, a);
}

std::vector<GenreScore> rank_genres(const std::vector<float>& probs,
                                    const std::vector<std::string>& genres,
                                    const std::vector<float>& thresholds) {
    std::vector<GenreScore> out;
    for (size_t g = 0; g < genres.size(); ++g)
        out.push_back({genres[g], probs[g], probs[g] >= thresholds[g]});
    std::stable_sort(out.begin(), out.end(), [](const GenreScore& a, const GenreScore& b) {
        return a.probability > b.probability;
    });
    return out;
}

namespace {

struct DecodedTrack {
    bool ok = false;
    std::string reason;
    std::vector<float> chunks;  // (n_chunks, chunk_samples)
    int n_chunks = 0;
    double duration_s = 0;
    bool padded = false;
};

SpectrogramConfig config_from(const AudioMeta& a) {
    SpectrogramConfig c;
    c.sample_rate = a.sample_rate;
    c.n_fft = a.n_fft;
    c.hop = a.hop_length;
    c.n_mels = a.n_mels;
    c.fmax = a.sample_rate / 2.0;
    c.top_db = a.top_db;
    c.chunk_seconds = int(std::lround(a.chunk_seconds));
    if (std::fabs(a.chunk_seconds - c.chunk_seconds) > 1e-9)
        throw Error("checkpoint audio settings: chunk_seconds " + std::to_string(a.chunk_seconds) +
                    " is not a whole number of seconds");
    if (a.normalisation != "minmax")
        throw Error("checkpoint audio settings: normalisation '" + a.normalisation +
                    "' is not supported (gnet computes 'minmax' per chunk)");
    c.validate();
    return c;
}

}  // namespace

struct Tagger::Impl {
    CheckpointMeta meta;
    std::vector<float> thresholds;
    PredictOptions opt;
    SpectrogramConfig cfg;
    std::unique_ptr<ResNet18> model;
    std::unique_ptr<CpuSpectrogram> cpu_spec;
#if GNET_HAVE_CUDA
    std::unique_ptr<GpuSpectrogram> gpu_spec;
#endif

    DecodedTrack decode(const std::string& path) const {
        DecodedTrack t;
        try {
            LoadedAudio a = load_audio(path, cfg.sample_rate);
            t.duration_s = a.duration_seconds;
            const std::vector<float>& mono = a.samples;
            if (mono.empty()) throw Error(path + ": no audio samples");
            t.n_chunks =
                int(chunk_count(int64_t(mono.size()), cfg.chunk_samples(), Remainder::PadIfShort));
            t.padded = int64_t(mono.size()) < cfg.chunk_samples();
            t.chunks = make_chunks(mono, cfg.chunk_samples(), Remainder::PadIfShort);
            t.ok = true;
        } catch (const std::exception& e) {
            t.reason = e.what();
        }
        return t;
    }

    std::vector<float> spectrograms(const std::vector<float>& audio, int64_t n_chunks) {
#if GNET_HAVE_CUDA
        if (gpu_spec) return gpu_spec->compute_host(audio.data(), n_chunks);
#endif
        std::vector<float> out(size_t(n_chunks * cfg.chunk_values()));
        cpu_spec->compute(audio.data(), n_chunks, out.data());
        return out;
    }

    // Chunk spectrograms (n, n_mels, frames) -> probabilities (n, G).
    std::vector<float> probabilities(const std::vector<float>& specs, int64_t n) {
        const int G = int(meta.genres.size());
        std::vector<float> probs(size_t(n) * size_t(G));
        for (int64_t b0 = 0; b0 < n; b0 += opt.batch) {
            int64_t nb = std::min<int64_t>(opt.batch, n - b0);
            Tensor x = Tensor::view(const_cast<float*>(specs.data()) + b0 * cfg.chunk_values(),
                                    {nb, 1, cfg.n_mels, cfg.frames()}, Device::CPU);
            std::vector<float> logits = model->forward(x).to_host();
            cpu::sigmoid_forward(int64_t(logits.size()), logits.data(),
                                 &probs[size_t(b0) * size_t(G)]);
        }
        return probs;
    }
};

Tagger::Tagger(const Checkpoint& checkpoint, Device device, const PredictOptions& options)
    : impl_(std::make_unique<Impl>()) {
    Impl& m = *impl_;
    GNET_CHECK(options.batch >= 1, "--batch must be at least 1");
    m.meta = checkpoint.meta;
    m.opt = options;
    if (m.opt.jobs <= 0) m.opt.jobs = int(std::max(1u, std::thread::hardware_concurrency()));
    m.cfg = config_from(m.meta.audio);
    m.thresholds = m.meta.thresholds;
    if (options.threshold >= 0) m.thresholds.assign(m.meta.genres.size(), options.threshold);
    ResNet18Config mc;
    mc.num_genres = checkpoint.num_genres();
    mc.max_batch = options.batch;
    mc.height = m.cfg.n_mels;
    mc.width = m.cfg.frames();
    mc.init_seed = std::nullopt;  // every weight comes from the checkpoint
    mc.training = false;          // inference memory only, grown to the largest batch tagged
    m.model = std::make_unique<ResNet18>(mc, device);
    load_checkpoint(checkpoint, *m.model);
    m.model->set_mode(Mode::Eval);
#if GNET_HAVE_CUDA
    // The spectrogram engine works in slices of its own batch; ~7 MB of GPU memory per chunk.
    if (device == Device::CUDA)
        m.gpu_spec = std::make_unique<GpuSpectrogram>(std::min(options.batch, 64), m.cfg);
#endif
    if (device == Device::CPU) m.cpu_spec = std::make_unique<CpuSpectrogram>(m.cfg, m.opt.jobs);
}

Tagger::~Tagger() = default;

const std::vector<std::string>& Tagger::genres() const {
    return impl_->meta.genres;
}

void Tagger::tag_files(
    const std::vector<std::string>& files,
    const std::function<void(const TrackPrediction&)>& on_result,
    const std::function<void(const std::string&, const std::string&)>& on_error) {
    Impl& m = *impl_;
    const int G = int(m.meta.genres.size());
    const size_t group = size_t(std::max(8, 2 * m.opt.jobs));
    for (size_t g0 = 0; g0 < files.size(); g0 += group) {
        const size_t n = std::min(group, files.size() - g0);
        std::vector<DecodedTrack> tracks(n);
        std::atomic<size_t> next{0};
        auto worker = [&] {
            for (size_t i; (i = next.fetch_add(1)) < n;)
                tracks[i] = m.decode(files[g0 + i]);
        };
        std::vector<std::thread> pool;
        for (int j = 0; j < std::min<int>(m.opt.jobs, int(n)); ++j)
            pool.emplace_back(worker);
        for (std::thread& t : pool)
            t.join();

        int64_t total = 0;
        for (const DecodedTrack& t : tracks)
            total += t.ok ? t.n_chunks : 0;
        std::vector<float> audio;
        audio.reserve(size_t(total * m.cfg.chunk_samples()));
        for (const DecodedTrack& t : tracks)
            if (t.ok) audio.insert(audio.end(), t.chunks.begin(), t.chunks.end());
        std::vector<float> probs;
        if (total > 0) probs = m.probabilities(m.spectrograms(audio, total), total);

        int64_t c0 = 0;
        for (size_t i = 0; i < n; ++i) {
            const DecodedTrack& t = tracks[i];
            if (!t.ok) {
                on_error(files[g0 + i], t.reason);
                continue;
            }
            std::vector<float> p(probs.begin() + c0 * G, probs.begin() + (c0 + t.n_chunks) * G);
            c0 += t.n_chunks;
            TrackPrediction r;
            r.file = files[g0 + i];
            r.duration_s = t.duration_s;
            r.chunks = t.n_chunks;
            r.padded = t.padded;
            r.strategy = m.opt.strategy;
            r.genres = rank_genres(aggregate_chunks(p, t.n_chunks, G, m.opt.strategy),
                                   m.meta.genres, m.thresholds);
            for (int c = 0; c < t.n_chunks; ++c) {
                SegmentPrediction s;
                s.start_s = double(c) * m.cfg.chunk_seconds;
                s.end_s = std::min(t.duration_s, double(c + 1) * m.cfg.chunk_seconds);
                std::vector<float> pc(p.begin() + c * G, p.begin() + (c + 1) * G);
                s.genres = rank_genres(pc, m.meta.genres, m.thresholds);
                r.segments.push_back(std::move(s));
            }
            on_result(r);
        }
    }
}

}  // namespace gnet
