#include "train/predict.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <numeric>
#include <thread>

#include "audio/audio_files.h"
#include "audio/chunk.h"
#include "audio/load_audio.h"
#include "audio/spectrogram.h"
#include "kernels/error.h"
#include "kernels/sigmoid.h"
#include "nn/network.h"
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

std::vector<std::string> expand_inputs(const std::vector<std::string>& inputs,
                                       std::vector<std::string>* missing) {
    std::vector<std::string> out;
    for (const std::string& in : inputs) {
        std::error_code ec;
        if (fs::is_directory(in, ec)) {
            for (const std::string& rel : list_audio_files(in))
                out.push_back((fs::path(in) / rel).string());
        } else if (fs::exists(in, ec) || fs::is_symlink(in, ec)) {
            out.push_back(in);
        } else if (missing) {
            missing->push_back(in);
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

// Up to `batch` chunks of one track on their way from a decoding thread to the scoring thread.
struct ChunkBlock {
    size_t track = 0;
    std::vector<float> audio;  // (n_chunks, chunk_samples)
    int n_chunks = 0;
    bool last = false;  // the track's final block: duration and padding are known
    double duration_s = 0;
    bool padded = false;          // the track is shorter than one chunk
    bool mostly_padding = false;  // ... and shorter than half of one
    std::string error;            // the track failed (the block holds no chunks)
};

// A bounded queue (in chunks) from the decoding threads to the scoring thread.
class BlockQueue {
  public:
    explicit BlockQueue(int64_t capacity_chunks) : capacity_(capacity_chunks) {}
    void push(ChunkBlock b) {
        std::unique_lock<std::mutex> lock(m_);
        not_full_.wait(lock, [&] { return held_ == 0 || held_ + b.n_chunks <= capacity_; });
        held_ += b.n_chunks;
        q_.push_back(std::move(b));
        not_empty_.notify_one();
    }
    void producer_done() {
        std::lock_guard<std::mutex> lock(m_);
        ++done_producers_;
        not_empty_.notify_all();
    }
    // Waits for a block; false once every producer is done and nothing is left.
    bool pop(ChunkBlock& out, int producers) {
        std::unique_lock<std::mutex> lock(m_);
        not_empty_.wait(lock, [&] { return !q_.empty() || done_producers_ == producers; });
        if (q_.empty()) return false;
        out = std::move(q_.front());
        q_.pop_front();
        held_ -= out.n_chunks;
        not_full_.notify_all();
        return true;
    }
    bool empty() {
        std::lock_guard<std::mutex> lock(m_);
        return q_.empty();
    }

  private:
    std::mutex m_;
    std::condition_variable not_empty_, not_full_;
    std::deque<ChunkBlock> q_;
    int64_t capacity_;
    int64_t held_ = 0;
    int done_producers_ = 0;
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
    int64_t hop_samples = 0;
    double hop_s = 0;
    std::unique_ptr<Network> model;
    std::unique_ptr<CpuSpectrogram> cpu_spec;
#if GNET_HAVE_CUDA
    std::unique_ptr<GpuSpectrogram> gpu_spec;
#endif

    // Streams one file into blocks of at most `batch` chunks: whole chunks as they are decoded,
    // then the remainder (zero-padded) when it is at least half a chunk, or when the whole track
    // is shorter than one chunk.
    // Windows of L samples every H samples, from the start of `buf` (which always begins at the
    // next window's first sample): how many fit whole.
    static int64_t whole_windows(int64_t samples, int64_t L, int64_t H) {
        return samples >= L ? (samples - L) / H + 1 : 0;
    }
    // Copies `n` windows out of the front of `buf` into a block and drops the samples no later
    // window needs.
    static void take_windows(std::vector<float>& buf, int64_t n, int64_t L, int64_t H,
                             ChunkBlock& b) {
        b.n_chunks = int(n);
        b.audio.resize(size_t(n * L));
        for (int64_t k = 0; k < n; ++k) {
            const int64_t from = k * H, have = std::min<int64_t>(L, int64_t(buf.size()) - from);
            std::copy_n(buf.begin() + from, have, b.audio.begin() + k * L);
            std::fill(b.audio.begin() + k * L + have, b.audio.begin() + (k + 1) * L, 0.f);
        }
        buf.erase(buf.begin(), buf.begin() + std::min<int64_t>(n * H, int64_t(buf.size())));
    }

    void stream_track(size_t track, const std::string& path, BlockQueue& queue) const {
        const int64_t L = cfg.chunk_samples(), H = hop_samples;
        const int64_t per_block = std::max(1, opt.batch);
        const size_t want = size_t((per_block - 1) * H + L);  // samples for a full block
        try {
            AudioStream stream(path, cfg.sample_rate);
            std::vector<float> buf;
            int64_t chunks_sent = 0;
            bool more = true;
            while (more) {
                more = stream.read(buf, want - std::min(buf.size(), want));
                const int64_t whole = std::min(per_block, whole_windows(int64_t(buf.size()), L, H));
                if (more && whole > 0) {
                    ChunkBlock b;
                    b.track = track;
                    take_windows(buf, whole, L, H, b);
                    chunks_sent += whole;
                    queue.push(std::move(b));
                }
            }
            ChunkBlock b;
            b.track = track;
            b.last = true;
            b.duration_s = stream.seconds_decoded();
            const int64_t whole = whole_windows(int64_t(buf.size()), L, H);
            // Audio left from the first start after the whole windows (less than L).
            const int64_t rest = int64_t(buf.size()) - whole * H;
            const bool keep_rest = rest > 0 && (rest * 2 >= L || chunks_sent + whole == 0);
            const int64_t n = whole + (keep_rest ? 1 : 0);
            if (chunks_sent + n == 0) throw Error(path + ": no audio samples");
            b.padded = chunks_sent + whole == 0;
            b.mostly_padding = b.padded && rest * 2 < L;
            take_windows(buf, n, L, H, b);
            queue.push(std::move(b));
        } catch (const std::exception& e) {
            ChunkBlock b;
            b.track = track;
            b.last = true;
            b.error = e.what();
            queue.push(std::move(b));
        }
    }

    std::vector<float> spectrograms(const std::vector<float>& audio, int64_t n_chunks) {
#if GNET_HAVE_CUDA
        if (gpu_spec) return gpu_spec->compute_host(audio.data(), n_chunks);
#endif
        std::vector<float> out(size_t(n_chunks * cfg.chunk_values()));
        cpu_spec->compute(audio.data(), n_chunks, out.data());
        return out;
    }

    // Chunk spectrograms (n, n_mels, frames) -> probabilities (n, G), and with embeddings the
    // pooled features (n, 512) into `features`.
    std::vector<float> probabilities(const std::vector<float>& specs, int64_t n,
                                     std::vector<float>* features) {
        const int G = int(meta.genres.size());
        std::vector<float> probs(size_t(n) * size_t(G));
        for (int64_t b0 = 0; b0 < n; b0 += opt.batch) {
            int64_t nb = std::min<int64_t>(opt.batch, n - b0);
            Tensor x = Tensor::view(const_cast<float*>(specs.data()) + b0 * cfg.chunk_values(),
                                    {nb, 1, cfg.n_mels, cfg.frames()}, Device::CPU);
            std::vector<float> logits = model->forward(x).to_host();
            cpu::sigmoid_forward(int64_t(logits.size()), logits.data(),
                                 &probs[size_t(b0) * size_t(G)]);
            if (features) {
                std::vector<float> f = model->features().to_host();
                features->insert(features->end(), f.begin(), f.end());
            }
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
    const double chunk_s = double(m.cfg.chunk_seconds);
    if (options.hop_s != 0 && !(options.hop_s > 0 && options.hop_s <= chunk_s))
        throw UsageError("--hop " + std::to_string(options.hop_s) + " is outside (0, " +
                         std::to_string(m.cfg.chunk_seconds) +
                         "] seconds (the window length); a longer hop would skip audio");
    m.hop_samples = options.hop_s > 0
                        ? std::max<int64_t>(1, std::llround(options.hop_s * m.cfg.sample_rate))
                        : m.cfg.chunk_samples();
    m.hop_s = double(m.hop_samples) / m.cfg.sample_rate;
    m.thresholds = m.meta.thresholds;
    if (options.threshold >= 0) m.thresholds.assign(m.meta.genres.size(), options.threshold);
    ResNet18Config mc;
    mc.num_genres = checkpoint.num_genres();
    mc.max_batch = options.batch;
    mc.height = m.cfg.n_mels;
    mc.width = m.cfg.frames();
    mc.init_seed = std::nullopt;  // every weight comes from the checkpoint
    mc.training = false;          // inference memory only, grown to the largest batch tagged
    m.model = make_network(mc, device);
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
    if (files.empty()) return;
    // Decoding threads stream tracks into a queue that holds at most `budget` chunks of audio;
    // the scoring thread (this one) batches chunks across tracks and keeps only each track's
    // small (chunks x genres) score table, so memory does not grow with track length.
    const int producers = std::max(1, std::min<int>(m.opt.jobs, int(files.size())));
    const int64_t budget = std::max<int64_t>(2 * int64_t(m.opt.batch), 16);
    BlockQueue queue(budget);
    std::atomic<size_t> next{0};
    std::vector<std::thread> pool;
    for (int j = 0; j < producers; ++j)
        pool.emplace_back([&] {
            for (size_t i; (i = next.fetch_add(1)) < files.size();)
                m.stream_track(i, files[i], queue);
            queue.producer_done();
        });

    constexpr int kEmbed = 512;
    struct TrackState {
        std::vector<float> probs;     // (chunks so far, G)
        std::vector<float> features;  // (chunks so far, 512) with embeddings
        bool finished = false;
        ChunkBlock tail;  // the last block's facts (duration, padding, error)
    };
    std::vector<TrackState> state(files.size());
    size_t emitted = 0;
    auto emit_ready = [&] {
        for (; emitted < files.size() && state[emitted].finished; ++emitted) {
            TrackState& t = state[emitted];
            if (!t.tail.error.empty()) {
                on_error(files[emitted], t.tail.error);
            } else {
                const int n = int(t.probs.size()) / G;
                bool finite = true;
                for (float v : t.probs)
                    finite = finite && std::isfinite(v);
                if (!finite) {
                    on_error(files[emitted], "the model produced non-finite scores");
                } else {
                    TrackPrediction r;
                    r.file = files[emitted];
                    r.duration_s = t.tail.duration_s;
                    r.chunks = n;
                    r.padded = t.tail.padded;
                    r.mostly_padding = t.tail.mostly_padding;
                    r.strategy = m.opt.strategy;
                    r.hop_s = m.hop_s;
                    if (m.opt.embeddings)
                        r.embedding = aggregate_chunks(t.features, n, kEmbed, Aggregation::Mean);
                    r.genres = rank_genres(aggregate_chunks(t.probs, n, G, m.opt.strategy),
                                           m.meta.genres, m.thresholds);
                    if (r.mostly_padding)  // scores of a chunk that is mostly zeros: no tags
                        for (GenreScore& g : r.genres)
                            g.predicted = false;
                    for (int c = 0; c < n; ++c) {
                        SegmentPrediction sp;
                        sp.start_s = double(c) * m.hop_s;
                        sp.end_s = std::min(r.duration_s, sp.start_s + m.cfg.chunk_seconds);
                        if (m.opt.embeddings)
                            sp.embedding.assign(t.features.begin() + int64_t(c) * kEmbed,
                                                t.features.begin() + int64_t(c + 1) * kEmbed);
                        std::vector<float> pc(t.probs.begin() + c * G,
                                              t.probs.begin() + (c + 1) * G);
                        sp.genres = rank_genres(pc, m.meta.genres, m.thresholds);
                        r.segments.push_back(std::move(sp));
                    }
                    on_result(r);
                }
            }
            t.probs = {};
            t.features = {};
        }
    };

    std::vector<ChunkBlock> pending;
    int64_t pending_chunks = 0;
    auto score_pending = [&] {
        if (pending_chunks > 0) {
            std::vector<float> audio;
            audio.reserve(size_t(pending_chunks * m.cfg.chunk_samples()));
            for (const ChunkBlock& b : pending)
                audio.insert(audio.end(), b.audio.begin(), b.audio.end());
            std::vector<float> features;
            std::vector<float> probs =
                m.probabilities(m.spectrograms(audio, pending_chunks), pending_chunks,
                                m.opt.embeddings ? &features : nullptr);
            int64_t c0 = 0;
            for (const ChunkBlock& b : pending) {
                std::vector<float>& dst = state[b.track].probs;
                dst.insert(dst.end(), probs.begin() + c0 * G,
                           probs.begin() + (c0 + b.n_chunks) * G);
                if (m.opt.embeddings) {
                    std::vector<float>& f = state[b.track].features;
                    f.insert(f.end(), features.begin() + c0 * kEmbed,
                             features.begin() + (c0 + b.n_chunks) * kEmbed);
                }
                c0 += b.n_chunks;
            }
        }
        for (ChunkBlock& b : pending)
            if (b.last) {
                state[b.track].finished = true;
                b.audio = {};
                state[b.track].tail = std::move(b);
            }
        pending.clear();
        pending_chunks = 0;
        emit_ready();
    };
    try {
        ChunkBlock b;
        while (queue.pop(b, producers)) {
            pending_chunks += b.n_chunks;
            pending.push_back(std::move(b));
            // Score a full batch, or whatever is there when no more is waiting.
            if (pending_chunks >= m.opt.batch || queue.empty()) score_pending();
        }
        score_pending();
    } catch (...) {
        // Let the producers finish (the queue must keep draining), then report.
        ChunkBlock b;
        while (queue.pop(b, producers)) {
        }
        for (std::thread& t : pool)
            t.join();
        throw;
    }
    for (std::thread& t : pool)
        t.join();
}

}  // namespace gnet
