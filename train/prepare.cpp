#include "train/prepare.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <mutex>
#include <ostream>
#include <thread>

#include "audio/chunk.h"
#include "audio/load_audio.h"
#include "audio/npy.h"
#include "audio/spectrogram.h"
#include "build_info.h"
#include "kernels/error.h"
#include "nn/atomic_file.h"
#include "nn/json.h"
#include "train/csv.h"
#include "train/labels.h"
#include "train/split.h"

namespace fs = std::filesystem;

namespace gnet {

namespace {

constexpr const char* kStagingDir = ".partial";

struct TrackResult {
    bool ok = false;
    std::string reason;
    int64_t n_chunks = 0;
    double seconds = 0;
};

// Decoded chunks of one track on their way to the GPU thread.
struct PendingTrack {
    size_t track = 0;
    std::vector<float> audio;  // (n_chunks, chunk_samples)
    int64_t n_chunks = 0;
};

// A bounded queue from the decoding threads to the GPU thread; closed when the last producer ends.
class TrackQueue {
  public:
    TrackQueue(size_t capacity, int producers) : capacity_(capacity), producers_(producers) {}
    void push(PendingTrack t) {
        std::unique_lock<std::mutex> lock(m_);
        not_full_.wait(lock, [&] { return q_.size() < capacity_; });
        q_.push_back(std::move(t));
        not_empty_.notify_one();
    }
    void producer_done() {
        std::lock_guard<std::mutex> lock(m_);
        if (--producers_ == 0) not_empty_.notify_all();
    }
    // false when the wait timed out, or when the queue is closed and empty (then *closed = true).
    bool pop(PendingTrack& out, bool* closed) {
        std::unique_lock<std::mutex> lock(m_);
        not_empty_.wait_for(lock, std::chrono::milliseconds(100),
                            [&] { return !q_.empty() || producers_ == 0; });
        *closed = q_.empty() && producers_ == 0;
        if (q_.empty()) return false;
        out = std::move(q_.front());
        q_.pop_front();
        not_full_.notify_one();
        return true;
    }

  private:
    std::mutex m_;
    std::condition_variable not_empty_, not_full_;
    std::deque<PendingTrack> q_;
    size_t capacity_;
    int producers_;
};

std::string chunk_file_name(size_t track, int64_t chunk) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%06zu_%03lld.npy", track, static_cast<long long>(chunk));
    return buf;
}

void prepare_out_dir(const std::string& out_dir, bool force) {
    std::error_code ec;
    const char* ours[] = {"manifest.csv", "genres.txt", "prepare.json",
                          "train",        "val",        kStagingDir};
    bool has_ours = false;
    for (const char* name : ours)
        has_ours = has_ours || fs::exists(fs::path(out_dir) / name, ec);
    if (has_ours && !force)
        throw Error(out_dir +
                    ": already holds a prepared data set; use --force to rebuild it, or "
                    "choose another --out");
    if (has_ours)
        for (const char* name : ours)
            fs::remove_all(fs::path(out_dir) / name, ec);
    fs::create_directories(fs::path(out_dir) / kStagingDir, ec);
    if (ec) throw Error(out_dir + ": cannot create folder: " + ec.message());
}

std::string with_path(const std::string& path, const std::string& what) {
    return what.find(path) != std::string::npos ? what : path + ": " + what;
}

}  // namespace

PrepareSummary prepare_dataset(const PrepareOptions& opt,
                               const std::function<void(const SkippedTrack&)>& on_skip,
                               const std::function<void(const PrepareProgress&)>& on_progress) {
    const auto t_start = std::chrono::steady_clock::now();
    const SpectrogramConfig cfg;
    GNET_CHECK(opt.gpu_batch > 0, "gpu batch must be positive");

    LabelSet labels = opt.labels_csv.empty() ? labels_from_folders(opt.audio_dir)
                                             : labels_from_csv(opt.labels_csv, opt.audio_dir);
    if (labels.tracks.empty())
        throw Error((opt.labels_csv.empty() ? opt.audio_dir : opt.labels_csv) +
                    ": no labelled audio track to prepare");
    prepare_out_dir(opt.out_dir, opt.force);
    const fs::path out(opt.out_dir);
    const fs::path staging = out / kStagingDir;

    const size_t n = labels.tracks.size();
    std::vector<TrackResult> results(n);
    std::atomic<size_t> next{0};
    std::atomic<int64_t> done{0};
    std::mutex skip_mutex;
    PrepareSummary summary;
    summary.genres = labels.genres;
    summary.warnings = labels.warnings;
    summary.tracks_total = int64_t(n);

    auto fail_track = [&](size_t i, const std::string& reason) {
        results[i].ok = false;
        results[i].reason = reason;
        std::lock_guard<std::mutex> lock(skip_mutex);
        if (on_skip) on_skip({labels.tracks[i].path, reason});
    };
    auto write_chunks = [&](size_t i, const float* specs, int64_t n_chunks) {
        for (int64_t c = 0; c < n_chunks; ++c)
            npy_write((staging / chunk_file_name(i, c)).string(), specs + c * cfg.chunk_values(),
                      {cfg.n_mels, cfg.frames()});
        results[i].ok = true;
        results[i].n_chunks = n_chunks;
    };

    const bool on_gpu = opt.device == Device::CUDA;
    int jobs = opt.jobs > 0 ? opt.jobs : int(std::max(1u, std::thread::hardware_concurrency()));
    jobs = int(std::min<size_t>(size_t(jobs), n));
    TrackQueue queue(size_t(2 * jobs + 2), jobs);

    auto worker = [&] {
        std::unique_ptr<CpuSpectrogram> spec;
        for (;;) {
            size_t i = next.fetch_add(1);
            if (i >= n) break;
            const std::string path = (fs::path(opt.audio_dir) / labels.tracks[i].path).string();
            try {
                LoadedAudio a = load_audio(path, cfg.sample_rate);
                results[i].seconds = a.duration_seconds;
                const std::vector<float>& mono = a.samples;
                int64_t n_chunks =
                    chunk_count(int64_t(mono.size()), cfg.chunk_samples(), Remainder::Drop);
                if (n_chunks == 0) {
                    char buf[64];
                    std::snprintf(buf, sizeof buf, "%.1f s is shorter than one %d s chunk",
                                  a.duration_seconds, cfg.chunk_seconds);
                    throw Error(path + ": " + buf);
                }
                std::vector<float> chunks = make_chunks(mono, cfg.chunk_samples(), Remainder::Drop);
                if (on_gpu) {
                    queue.push({i, std::move(chunks), n_chunks});
                    continue;  // the GPU thread finishes this track
                }
                if (!spec) spec = std::make_unique<CpuSpectrogram>(cfg, 1);
                std::vector<float> out_specs(size_t(n_chunks * cfg.chunk_values()));
                spec->compute(chunks.data(), n_chunks, out_specs.data());
                write_chunks(i, out_specs.data(), n_chunks);
            } catch (const std::exception& e) {
                fail_track(i, with_path(path, e.what()));
            }
            ++done;
        }
        queue.producer_done();
    };

    std::vector<std::thread> threads;
    std::exception_ptr gpu_error;
    for (int j = 0; j < jobs; ++j)
        threads.emplace_back(worker);

    auto report_progress = [&] {
        if (on_progress) on_progress({done.load(), int64_t(n)});
    };
    if (on_gpu) {
#if GNET_HAVE_CUDA
        try {
            GpuSpectrogram gpu_spec(opt.gpu_batch, cfg);
            std::vector<PendingTrack> pending;
            int64_t pending_chunks = 0;
            auto flush = [&] {
                if (pending.empty()) return;
                std::vector<float> audio(size_t(pending_chunks * cfg.chunk_samples()));
                int64_t at = 0;
                for (const PendingTrack& p : pending) {
                    std::copy(p.audio.begin(), p.audio.end(), audio.begin() + at);
                    at += int64_t(p.audio.size());
                }
                std::vector<float> specs = gpu_spec.compute_host(audio.data(), pending_chunks);
                int64_t c0 = 0;
                for (const PendingTrack& p : pending) {
                    write_chunks(p.track, specs.data() + c0 * cfg.chunk_values(), p.n_chunks);
                    c0 += p.n_chunks;
                    ++done;
                }
                pending.clear();
                pending_chunks = 0;
            };
            for (;;) {
                PendingTrack t;
                bool closed = false;
                if (queue.pop(t, &closed)) {
                    pending_chunks += t.n_chunks;
                    pending.push_back(std::move(t));
                    if (pending_chunks >= opt.gpu_batch) flush();
                } else if (closed) {
                    flush();
                    break;
                }
                report_progress();
            }
        } catch (...) {
            gpu_error = std::current_exception();
            // Drain the queue so the decoding threads can finish.
            PendingTrack t;
            bool closed = false;
            while (!closed)
                queue.pop(t, &closed);
        }
#else
        gpu_error =
            std::make_exception_ptr(Error("prepare on the GPU: gnet was built without CUDA"));
        PendingTrack t;
        bool closed = false;
        while (!closed)
            queue.pop(t, &closed);
#endif
    } else {
        while (done.load() < int64_t(n)) {
            report_progress();
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    }
    for (std::thread& t : threads)
        t.join();
    report_progress();
    if (gpu_error) std::rethrow_exception(gpu_error);

    // Split the usable tracks, move their chunks into train/ and val/, write the manifest last.
    std::vector<size_t> used;
    for (size_t i = 0; i < n; ++i) {
        if (results[i].ok)
            used.push_back(i);
        else
            summary.skipped.push_back({labels.tracks[i].path, results[i].reason});
    }
    if (used.empty())
        throw Error(opt.audio_dir + ": none of the " + std::to_string(n) +
                    " labelled tracks could be used (see the messages above)");
    std::vector<std::vector<uint8_t>> used_labels;
    for (size_t i : used)
        used_labels.push_back(labels.tracks[i].labels);
    std::vector<bool> is_val = split_tracks(used_labels, opt.val_fraction, opt.seed);

    const size_t G = labels.genres.size();
    summary.genre_tracks_train.assign(G, 0);
    summary.genre_tracks_val.assign(G, 0);
    summary.genre_chunks_train.assign(G, 0);
    summary.genre_chunks_val.assign(G, 0);
    std::error_code ec;
    fs::create_directories(out / "train", ec);
    fs::create_directories(out / "val", ec);
    if (ec) throw Error(opt.out_dir + ": cannot create train/ and val/: " + ec.message());

    std::vector<std::string> header = {"file", "split", "track", "start_s"};
    header.insert(header.end(), labels.genres.begin(), labels.genres.end());
    std::string manifest = csv_line(header);
    for (size_t u = 0; u < used.size(); ++u) {
        size_t i = used[u];
        const TrackResult& r = results[i];
        const std::string split = is_val[u] ? "val" : "train";
        (is_val[u] ? summary.tracks_val : summary.tracks_train) += 1;
        (is_val[u] ? summary.chunks_val : summary.chunks_train) += r.n_chunks;
        summary.tracks_used += 1;
        summary.audio_seconds += r.seconds;
        for (size_t g = 0; g < G; ++g) {
            if (!labels.tracks[i].labels[g]) continue;
            (is_val[u] ? summary.genre_tracks_val : summary.genre_tracks_train)[g] += 1;
            (is_val[u] ? summary.genre_chunks_val : summary.genre_chunks_train)[g] += r.n_chunks;
        }
        for (int64_t c = 0; c < r.n_chunks; ++c) {
            const std::string name = chunk_file_name(i, c);
            fs::rename(staging / name, out / split / name, ec);
            if (ec)
                throw Error((out / split / name).string() + ": cannot move chunk: " + ec.message());
            std::vector<std::string> row = {split + "/" + name, split, labels.tracks[i].path,
                                            std::to_string(c * cfg.chunk_seconds)};
            for (size_t g = 0; g < G; ++g)
                row.push_back(labels.tracks[i].labels[g] ? "1" : "0");
            manifest += csv_line(row);
        }
    }
    fs::remove_all(staging, ec);

    std::string genres_txt;
    for (const std::string& g : labels.genres)
        genres_txt += g + "\n";
    write_file_atomic((out / "genres.txt").string(), genres_txt);

    summary.wall_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    OrderedJson json;
    json["gnet_version"] = GNET_VERSION_STRING;
    json["gnet_commit"] = GNET_GIT_COMMIT;
    json["audio_dir"] = fs::absolute(opt.audio_dir).string();
    json["labels"] = opt.labels_csv.empty() ? std::string("folders") : opt.labels_csv;
    json["val_fraction"] = opt.val_fraction;
    json["seed"] = opt.seed;
    json["device"] = device_name(opt.device);
    json["sample_rate"] = cfg.sample_rate;
    json["n_fft"] = cfg.n_fft;
    json["hop_length"] = cfg.hop;
    json["window"] = "hann (periodic)";
    json["center"] = true;
    json["pad_mode"] = "constant";
    json["power"] = 2.0;
    json["n_mels"] = cfg.n_mels;
    json["mel_scale"] = "slaney";
    json["mel_norm"] = "slaney";
    json["fmin"] = cfg.fmin;
    json["fmax"] = cfg.fmax;
    json["top_db"] = cfg.top_db;
    json["amin"] = 1e-10;
    json["normalisation"] = "minmax_per_chunk";
    json["chunk_seconds"] = cfg.chunk_seconds;
    json["remainder"] = "drop";
    json["shape"] = {cfg.n_mels, cfg.frames()};
    json["tracks_used"] = summary.tracks_used;
    json["tracks_skipped"] = summary.skipped.size();
    json["chunks_train"] = summary.chunks_train;
    json["chunks_val"] = summary.chunks_val;
    write_file_atomic((out / "prepare.json").string(), json_dump(json, 2) + "\n");
    write_file_atomic((out / "manifest.csv").string(), manifest);
    return summary;
}

void print_prepare_report(const PrepareSummary& s, std::ostream& out) {
    size_t w = 5;
    for (const std::string& g : s.genres)
        w = std::max(w, g.size());
    char line[256];
    std::snprintf(line, sizeof line, "%-*s %12s %12s %10s %10s\n", int(w), "genre", "train tracks",
                  "train chunks", "val tracks", "val chunks");
    out << line;
    for (size_t g = 0; g < s.genres.size(); ++g) {
        std::snprintf(line, sizeof line, "%-*s %12lld %12lld %10lld %10lld\n", int(w),
                      s.genres[g].c_str(), (long long)s.genre_tracks_train[g],
                      (long long)s.genre_chunks_train[g], (long long)s.genre_tracks_val[g],
                      (long long)s.genre_chunks_val[g]);
        out << line;
    }
    std::snprintf(line, sizeof line, "%-*s %12lld %12lld %10lld %10lld\n", int(w), "total",
                  (long long)s.tracks_train, (long long)s.chunks_train, (long long)s.tracks_val,
                  (long long)s.chunks_val);
    out << line;
    double secs = std::max(s.wall_seconds, 1e-9);
    std::snprintf(line, sizeof line,
                  "prepared %lld of %lld tracks (%lld chunks) in %.1f s: %.1f tracks/s, %.0fx real "
                  "time; skipped %zu\n",
                  (long long)s.tracks_used, (long long)s.tracks_total,
                  (long long)(s.chunks_train + s.chunks_val), s.wall_seconds,
                  double(s.tracks_used) / secs, s.audio_seconds / secs, s.skipped.size());
    out << line;
}

}  // namespace gnet
