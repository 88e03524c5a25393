#include "train/prepare.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <mutex>
#include <ostream>
#include <thread>

#include <unistd.h>

#include "audio/chunk.h"
#include "audio/load_audio.h"
#include "audio/npy.h"
#include "audio/spectrogram.h"
#include "build_info.h"
#include "kernels/error.h"
#include "nn/atomic_file.h"
#include "nn/json.h"
#include "train/csv.h"
#include "train/interrupt.h"
#include "train/labels.h"
#include "train/split.h"

namespace fs = std::filesystem;

namespace gnet {

namespace {

// What DATA_DIR holds when a data set is there; manifest.csv is the mark of a complete one.
const char* const kDataFiles[] = {"manifest.csv", "genres.txt", "prepare.json", "train", "val"};

struct TrackResult {
    bool ok = false;
    std::string reason;
    std::vector<int64_t> chunk_index;  // which 10 s chunks of the track were kept
    int64_t total_chunks = 0;          // before the per-track cap
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
        not_full_.wait(lock, [&] { return q_.size() < capacity_ || abandoned_; });
        if (abandoned_) return;
        q_.push_back(std::move(t));
        not_empty_.notify_one();
    }
    void producer_done() {
        std::lock_guard<std::mutex> lock(m_);
        if (--producers_ == 0) not_empty_.notify_all();
    }
    // The consumer gives up (an error): producers stop waiting for room.
    void abandon() {
        std::lock_guard<std::mutex> lock(m_);
        abandoned_ = true;
        q_.clear();
        not_full_.notify_all();
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
    bool abandoned_ = false;
};

std::string chunk_file_name(size_t track, int64_t chunk) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%06zu_%03lld.npy", track, static_cast<long long>(chunk));
    return buf;
}

std::string with_path(const std::string& path, const std::string& what) {
    return what.find(path) != std::string::npos ? what : path + ": " + what;
}

// Chunks kept of a track with `n` whole chunks: all of them, or `cap` spread evenly.
std::vector<int64_t> kept_chunks(int64_t n, int cap) {
    std::vector<int64_t> idx;
    if (cap <= 0 || n <= cap) {
        for (int64_t c = 0; c < n; ++c)
            idx.push_back(c);
        return idx;
    }
    for (int64_t i = 0; i < cap; ++i)
        idx.push_back((2 * i + 1) * n / (2 * int64_t(cap)));
    return idx;
}

void rename_or_fail(const fs::path& from, const fs::path& to) {
    std::error_code ec;
    fs::rename(from, to, ec);
    if (ec)
        throw Error(to.string() + ": cannot move " + from.string() +
                    " into place: " + ec.message());
}

// Clears what earlier runs left in DATA_DIR (we hold its lock, so their processes are gone):
// staging folders, a half-swapped old data set, temporaries, and the files of a data set that was
// never completed (no manifest.csv). Returns a note for the user, "" when there was nothing.
std::string clear_leftovers(const fs::path& out) {
    std::error_code ec;
    bool leftovers = false;
    for (fs::directory_iterator it(out, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (name.rfind(".partial", 0) == 0 || name.rfind(".old-", 0) == 0) {
            std::error_code rm;
            fs::remove_all(it->path(), rm);
            leftovers = true;
        }
    }
    remove_stale_temporaries(out.string());
    if (!fs::exists(out / "manifest.csv", ec)) {
        for (const char* name : kDataFiles)
            if (fs::exists(out / name, ec)) {
                std::error_code rm;
                fs::remove_all(out / name, rm);
                leftovers = true;
            }
    }
    return leftovers ? out.string() +
                           " held an interrupted prepare (no manifest.csv); its files were "
                           "cleared and the data set is built again"
                     : std::string();
}

// Removes the staging folder unless the run got as far as moving it into place.
struct StagingGuard {
    fs::path dir;
    ~StagingGuard() {
        std::error_code ec;
        if (!dir.empty()) fs::remove_all(dir, ec);
    }
};

}  // namespace

PrepareSummary prepare_dataset(const PrepareOptions& opt,
                               const std::function<void(const SkippedTrack&)>& on_skip,
                               const std::function<void(const PrepareProgress&)>& on_progress) {
    const auto t_start = std::chrono::steady_clock::now();
    const SpectrogramConfig cfg;
    GNET_CHECK(opt.gpu_batch > 0, "gpu batch must be positive");
    GNET_CHECK(opt.max_chunks_per_track >= 0, "--max-chunks-per-track must not be negative");

    LabelSet labels = opt.labels_csv.empty() ? labels_from_folders(opt.audio_dir)
                                             : labels_from_csv(opt.labels_csv, opt.audio_dir);
    if (labels.tracks.empty())
        throw Error((opt.labels_csv.empty() ? opt.audio_dir : opt.labels_csv) +
                    ": no labelled audio track to prepare");

    const fs::path out(opt.out_dir);
    create_folders(opt.out_dir);
    DirectoryLock lock(opt.out_dir, "gnet prepare");
    PrepareSummary summary;
    summary.previous = clear_leftovers(out);
    std::error_code ec;
    const bool had_data_set = fs::exists(out / "manifest.csv", ec);
    if (had_data_set && !opt.force)
        throw Error(opt.out_dir +
                    ": already holds a prepared data set; use --force to rebuild it, or "
                    "choose another --out");
    StagingGuard staging_guard{out / (".partial-" + std::to_string(::getpid()))};
    const fs::path staging = staging_guard.dir;
    create_folders(staging.string());

    const size_t n = labels.tracks.size();
    std::vector<TrackResult> results(n);
    std::atomic<size_t> next{0};
    std::atomic<int64_t> done{0};
    std::atomic<bool> stop{false};
    std::mutex mutex;  // on_skip calls and the fatal error
    std::exception_ptr fatal;
    summary.genres = labels.genres;
    summary.warnings = labels.warnings;
    summary.tracks_total = int64_t(n);
    for (const UnusedFile& u : labels.unused)
        summary.not_used.push_back({u.path, u.reason});

    auto fail_track = [&](size_t i, const std::string& reason) {
        results[i].ok = false;
        results[i].reason = reason;
        std::lock_guard<std::mutex> lock_skip(mutex);
        if (on_skip) on_skip({labels.tracks[i].path, reason});
    };
    auto fail_run = [&](std::exception_ptr e) {
        std::lock_guard<std::mutex> lock_fatal(mutex);
        if (!fatal) fatal = e;
        stop = true;
    };
    // Output write failures are fatal (a full disk must not turn into "skipped tracks").
    auto write_chunks = [&](size_t i, const float* specs) {
        TrackResult& r = results[i];
        for (size_t c = 0; c < r.chunk_index.size(); ++c)
            npy_write((staging / chunk_file_name(i, r.chunk_index[c])).string(),
                      specs + int64_t(c) * cfg.chunk_values(), {cfg.n_mels, cfg.frames()});
        r.ok = true;
    };

    const bool on_gpu = opt.device == Device::CUDA;
    int jobs = opt.jobs > 0 ? opt.jobs : int(std::max(1u, std::thread::hardware_concurrency()));
    jobs = int(std::min<size_t>(size_t(jobs), n));
    TrackQueue queue(size_t(2 * jobs + 2), jobs);

    auto worker = [&] {
        std::unique_ptr<CpuSpectrogram> spec;
        for (;;) {
            if (stop || interrupt_requested()) break;
            size_t i = next.fetch_add(1);
            if (i >= n) break;
            const std::string path = (fs::path(opt.audio_dir) / labels.tracks[i].path).string();
            std::vector<float> chunks;
            TrackResult& r = results[i];
            try {
                LoadedAudio a = load_audio(path, cfg.sample_rate);
                r.seconds = a.duration_seconds;
                r.total_chunks =
                    chunk_count(int64_t(a.samples.size()), cfg.chunk_samples(), Remainder::Drop);
                if (r.total_chunks == 0) {
                    char buf[64];
                    std::snprintf(buf, sizeof buf, "%.1f s is shorter than one %d s chunk",
                                  a.duration_seconds, cfg.chunk_seconds);
                    throw Error(path + ": " + buf);
                }
                r.chunk_index = kept_chunks(r.total_chunks, opt.max_chunks_per_track);
                chunks.resize(r.chunk_index.size() * size_t(cfg.chunk_samples()));
                for (size_t c = 0; c < r.chunk_index.size(); ++c)
                    std::copy_n(a.samples.begin() + r.chunk_index[c] * cfg.chunk_samples(),
                                cfg.chunk_samples(),
                                chunks.begin() + int64_t(c) * cfg.chunk_samples());
            } catch (const std::exception& e) {
                fail_track(i, with_path(path, e.what()));
                ++done;
                continue;
            }
            const int64_t n_chunks = int64_t(r.chunk_index.size());
            if (on_gpu) {
                queue.push({i, std::move(chunks), n_chunks});
                continue;  // the GPU thread finishes this track
            }
            try {
                if (!spec) spec = std::make_unique<CpuSpectrogram>(cfg, 1);
                std::vector<float> out_specs(size_t(n_chunks * cfg.chunk_values()));
                spec->compute(chunks.data(), n_chunks, out_specs.data());
                write_chunks(i, out_specs.data());
            } catch (...) {
                fail_run(std::current_exception());
                break;
            }
            ++done;
        }
        queue.producer_done();
    };

    std::vector<std::thread> threads;
    for (int j = 0; j < jobs; ++j)
        threads.emplace_back(worker);

    auto report_progress = [&] {
        if (on_progress) on_progress({done.load(), int64_t(n)});
    };
    if (on_gpu) {
        try {
#if GNET_HAVE_CUDA
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
                    write_chunks(p.track, specs.data() + c0 * cfg.chunk_values());
                    c0 += p.n_chunks;
                    ++done;
                }
                pending.clear();
                pending_chunks = 0;
            };
            for (;;) {
                if (stop || interrupt_requested()) throw Interrupted("");
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
#else
            throw Error("prepare on the GPU: gnet was built without CUDA");
#endif
        } catch (const Interrupted&) {
            stop = true;
            queue.abandon();
        } catch (...) {
            fail_run(std::current_exception());
            queue.abandon();
        }
    } else {
        while (done.load() < int64_t(n) && !stop && !interrupt_requested()) {
            report_progress();
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    }
    for (std::thread& t : threads)
        t.join();
    if (fatal) {
        try {
            std::rethrow_exception(fatal);
        } catch (const std::exception& e) {
            throw Error(std::string(e.what()) + "; " + opt.out_dir + " was not changed");
        }
    }
    if (interrupt_requested())
        throw Interrupted(
            "prepare interrupted after " + std::to_string(done.load()) + " of " +
            std::to_string(n) + " tracks; " + opt.out_dir +
            (had_data_set ? " still holds its previous data set" : " holds no data set") +
            "; run the same command again to start over");
    report_progress();

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
    const size_t n_val = size_t(std::count(is_val.begin(), is_val.end(), true));
    if (n_val == 0)
        throw Error("no track landed in the validation split (" + std::to_string(used.size()) +
                    " usable tracks, --val-fraction " + std::to_string(opt.val_fraction) +
                    "); gnet train needs one: add tracks or raise --val-fraction");
    if (n_val == used.size())
        throw Error("no track left for the training split (" + std::to_string(used.size()) +
                    " usable tracks); add tracks or lower --val-fraction");

    const size_t G = labels.genres.size();
    summary.genre_tracks_train.assign(G, 0);
    summary.genre_tracks_val.assign(G, 0);
    summary.genre_chunks_train.assign(G, 0);
    summary.genre_chunks_val.assign(G, 0);
    create_folders((staging / "train").string());
    create_folders((staging / "val").string());

    std::vector<std::string> header = {"file", "split", "track", "start_s"};
    header.insert(header.end(), labels.genres.begin(), labels.genres.end());
    std::string manifest = csv_line(header);
    for (size_t u = 0; u < used.size(); ++u) {
        size_t i = used[u];
        const TrackResult& r = results[i];
        const int64_t kept = int64_t(r.chunk_index.size());
        if (kept < r.total_chunks)
            summary.capped.push_back({labels.tracks[i].path, r.total_chunks, kept});
        const std::string split = is_val[u] ? "val" : "train";
        (is_val[u] ? summary.tracks_val : summary.tracks_train) += 1;
        (is_val[u] ? summary.chunks_val : summary.chunks_train) += kept;
        summary.tracks_used += 1;
        summary.audio_seconds += r.seconds;
        for (size_t g = 0; g < G; ++g) {
            if (!labels.tracks[i].labels[g]) continue;
            (is_val[u] ? summary.genre_tracks_val : summary.genre_tracks_train)[g] += 1;
            (is_val[u] ? summary.genre_chunks_val : summary.genre_chunks_train)[g] += kept;
        }
        for (int64_t c : r.chunk_index) {
            const std::string name = chunk_file_name(i, c);
            rename_or_fail(staging / name, staging / split / name);
            std::vector<std::string> row = {split + "/" + name, split, labels.tracks[i].path,
                                            std::to_string(c * cfg.chunk_seconds)};
            for (size_t g = 0; g < G; ++g)
                row.push_back(labels.tracks[i].labels[g] ? "1" : "0");
            manifest += csv_line(row);
        }
    }

    std::string genres_txt;
    for (const std::string& g : labels.genres)
        genres_txt += g + "\n";
    write_file_atomic((staging / "genres.txt").string(), genres_txt);

    summary.wall_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    auto listing = [](const std::vector<SkippedTrack>& v) {
        OrderedJson a = OrderedJson::array();
        for (const SkippedTrack& t : v)
            a.push_back({{"path", t.path}, {"reason", t.reason}});
        return a;
    };
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
    json["max_chunks_per_track"] = opt.max_chunks_per_track;
    json["shape"] = {cfg.n_mels, cfg.frames()};
    json["tracks_found"] = summary.tracks_total + int64_t(summary.not_used.size());
    json["tracks_used"] = summary.tracks_used;
    json["tracks_skipped"] = summary.skipped.size();
    json["files_not_used"] = summary.not_used.size();
    json["chunks_train"] = summary.chunks_train;
    json["chunks_val"] = summary.chunks_val;
    json["skipped"] = listing(summary.skipped);
    json["not_used"] = listing(summary.not_used);
    OrderedJson capped = OrderedJson::array();
    for (const CappedTrack& c : summary.capped)
        capped.push_back({{"path", c.path}, {"chunks", c.chunks}, {"kept", c.kept}});
    json["capped"] = std::move(capped);
    write_file_atomic((staging / "prepare.json").string(), json_dump(json, 2) + "\n");
    write_file_atomic((staging / "manifest.csv").string(), manifest);

    // Swap in: the old data set (--force) moves aside, manifest.csv first, so that from here on
    // DATA_DIR holds either the old complete set, no complete set, or the new complete set.
    if (interrupt_requested())
        throw Interrupted("prepare interrupted; " + opt.out_dir + " was not changed");
    const fs::path old = out / (".old-" + std::to_string(::getpid()));
    if (had_data_set) {
        create_folders(old.string());
        for (const char* name : kDataFiles)
            if (fs::exists(out / name, ec)) rename_or_fail(out / name, old / name);
    }
    for (const char* name : {"train", "val", "genres.txt", "prepare.json", "manifest.csv"})
        rename_or_fail(staging / name, out / name);
    fs::remove_all(old, ec);
    if (had_data_set) summary.previous = "replaced the data set " + opt.out_dir + " held (--force)";
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
                  "prepared %lld of %lld labelled tracks (%lld chunks) in %.1f s: %.1f tracks/s, "
                  "%.0fx real time; skipped %zu (undecodable or too short)",
                  (long long)s.tracks_used, (long long)s.tracks_total,
                  (long long)(s.chunks_train + s.chunks_val), s.wall_seconds,
                  double(s.tracks_used) / secs, s.audio_seconds / secs, s.skipped.size());
    out << line;
    if (!s.not_used.empty()) {
        size_t not_audio = 0;
        for (const SkippedTrack& t : s.not_used)
            not_audio += t.reason.rfind("not an audio file", 0) == 0;
        const size_t unlabelled = s.not_used.size() - not_audio;
        out << "; not used: ";
        if (unlabelled)
            out << unlabelled << " audio file" << (unlabelled == 1 ? "" : "s") << " without a label"
                << (not_audio ? ", " : "");
        if (not_audio) out << not_audio << " other file" << (not_audio == 1 ? "" : "s");
    }
    out << "\n";
    if (!s.capped.empty())
        out << s.capped.size() << " long track" << (s.capped.size() == 1 ? "" : "s")
            << " thinned to --max-chunks-per-track chunks spread over the track\n";
    if (!s.skipped.empty() || !s.not_used.empty() || !s.capped.empty())
        out << "every file not used, skipped or thinned is listed with its reason in "
               "prepare.json\n";
}

}  // namespace gnet
