#include "train/prepare.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <map>
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
const char* const kDataFiles[] = {"manifest.csv", "genres.txt", "prepare.json",
                                  "train",        "val",        "shards"};

struct TrackResult {
    bool ok = false;
    std::string reason;
    std::vector<int64_t> chunk_index;  // which 10 s chunks of the track were kept
    int64_t total_chunks = 0;          // before the per-track cap
    int64_t remainder_frames = 0;      // shards, a track kept whole: frames after the last chunk
    double seconds = 0;
    // Shards: where the track went: its spans, and per kept chunk its first frame in the shard.
    std::vector<SpanEntry> spans;
    std::vector<int64_t> chunk_frame;
};

// Decoded chunks of one track on their way to the GPU thread.
struct PendingTrack {
    size_t track = 0;
    std::vector<float> audio;  // (n_chunks, chunk_samples)
    int64_t n_chunks = 0;      // kept chunks, plus the zero-padded remainder (shards)
};

// Writes tracks into shards in track order, whatever order they finish in: a finished track
// waits in `pending` until every earlier one is written (or skipped). Workers take a track only
// when it is within `window` of the next one to write, which bounds `pending`.
class OrderedShardWriter {
  public:
    OrderedShardWriter(ShardWriter& writer, size_t window) : writer_(writer), window_(window) {}
    // Blocks until track i may be started; false when the run stops.
    bool wait_turn(size_t i, const std::atomic<bool>& stop) {
        std::unique_lock<std::mutex> lock(m_);
        cv_.wait_for(lock, std::chrono::milliseconds(100), [&] { return i < next_ + window_; });
        while (i >= next_ + window_) {
            if (stop || interrupt_requested()) return false;
            cv_.wait_for(lock, std::chrono::milliseconds(100));
        }
        return true;
    }
    // Track i is done: `frames` (its spans' frames back to back, frame-major) and the span
    // lengths; empty for a skipped track. Writes every track that is now next in order.
    void commit(size_t i, std::vector<float> frames, std::vector<int64_t> span_frames,
                std::vector<TrackResult>& results) {
        std::lock_guard<std::mutex> lock(m_);
        pending_.emplace(i, Entry{std::move(frames), std::move(span_frames)});
        for (auto it = pending_.find(next_); it != pending_.end(); it = pending_.find(next_)) {
            TrackResult& r = results[next_];
            int64_t at = 0;
            for (int64_t n : it->second.span_frames) {
                ShardLocation loc = writer_.append(it->second.frames.data() + at * kShardBands, n);
                SpanEntry e;
                e.shard = loc.shard;
                e.frame = loc.frame;
                e.frames = n;
                e.crc32 = loc.crc32;
                r.spans.push_back(e);
                at += n;
            }
            pending_.erase(it);
            ++next_;
        }
        cv_.notify_all();
    }

  private:
    struct Entry {
        std::vector<float> frames;
        std::vector<int64_t> span_frames;
    };
    ShardWriter& writer_;
    size_t window_;
    std::mutex m_;
    std::condition_variable cv_;
    std::map<size_t, Entry> pending_;
    size_t next_ = 0;
};

// A track's spans from its kept chunks: runs of consecutive chunk indices; the remainder (when
// the track is kept whole) extends the last run. Returns the frames per span and sets each
// chunk's frame offset within the track's frames.
std::vector<int64_t> track_spans(const TrackResult& r, int frames_per_chunk,
                                 std::vector<int64_t>& chunk_offset) {
    std::vector<int64_t> spans;
    chunk_offset.clear();
    for (size_t c = 0; c < r.chunk_index.size(); ++c) {
        if (c == 0 || r.chunk_index[c] != r.chunk_index[c - 1] + 1) spans.push_back(0);
        chunk_offset.push_back(int64_t(c) * frames_per_chunk);
        spans.back() += frames_per_chunk;
    }
    spans.back() += r.remainder_frames;
    return spans;
}

// (n, bands, frames) mel-major blocks -> frame-major rows, the remainder block cut to its frames.
std::vector<float> frame_major(const float* specs, int64_t n_blocks, int64_t last_frames, int bands,
                               int frames) {
    std::vector<float> out;
    out.reserve(size_t(n_blocks) * size_t(frames) * size_t(bands));
    for (int64_t b = 0; b < n_blocks; ++b) {
        const float* blk = specs + b * int64_t(bands) * frames;
        const int64_t keep = b + 1 == n_blocks ? last_frames : frames;
        for (int64_t t = 0; t < keep; ++t)
            for (int m = 0; m < bands; ++m)
                out.push_back(blk[int64_t(m) * frames + t]);
    }
    return out;
}

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

    std::unique_ptr<OrderedShardWriter> ordered;  // shards: set once the thread count is known
    auto fail_track = [&](size_t i, const std::string& reason) {
        results[i].ok = false;
        results[i].reason = reason;
        {
            std::lock_guard<std::mutex> lock_skip(mutex);
            if (on_skip) on_skip({labels.tracks[i].path, reason});
        }
        if (ordered) ordered->commit(i, {}, {}, results);
    };
    auto fail_run = [&](std::exception_ptr e) {
        std::lock_guard<std::mutex> lock_fatal(mutex);
        if (!fatal) fatal = e;
        stop = true;
    };
    const bool sharded = opt.layout == DataLayout::Shards;
    const SpectrogramScale scale =
        sharded ? SpectrogramScale::Decibels : SpectrogramScale::Normalized;
    std::unique_ptr<ShardWriter> shard_writer;
    if (sharded) {
        create_folders((staging / "shards").string());
        shard_writer = std::make_unique<ShardWriter>((staging / "shards").string(), opt.shard_dtype,
                                                     opt.shard_bytes);
    }
    // Output write failures are fatal (a full disk must not turn into "skipped tracks").
    // specs: the track's kept chunks (and, shards, its padded remainder), (n, 128, 431).
    auto write_chunks = [&](size_t i, const float* specs) {
        TrackResult& r = results[i];
        if (sharded) {
            std::vector<int64_t> offsets;
            std::vector<int64_t> spans = track_spans(r, cfg.frames(), offsets);
            const int64_t blocks = int64_t(r.chunk_index.size()) + (r.remainder_frames > 0);
            std::vector<float> frames = frame_major(
                specs, blocks, r.remainder_frames > 0 ? r.remainder_frames : cfg.frames(),
                cfg.n_mels, cfg.frames());
            r.ok = true;
            r.chunk_frame = offsets;  // relative to the track; made absolute after the split
            ordered->commit(i, std::move(frames), std::move(spans), results);
            return;
        }
        for (size_t c = 0; c < r.chunk_index.size(); ++c)
            npy_write((staging / chunk_file_name(i, r.chunk_index[c])).string(),
                      specs + int64_t(c) * cfg.chunk_values(), {cfg.n_mels, cfg.frames()});
        r.ok = true;
    };

    const bool on_gpu = opt.device == Device::CUDA;
    int jobs = opt.jobs > 0 ? opt.jobs : int(std::max(1u, std::thread::hardware_concurrency()));
    jobs = int(std::min<size_t>(size_t(jobs), n));
    TrackQueue queue(size_t(2 * jobs + 2), jobs);
    if (sharded)
        ordered = std::make_unique<OrderedShardWriter>(*shard_writer, size_t(4 * jobs + 8));

    auto worker = [&] {
        std::unique_ptr<CpuSpectrogram> spec;
        for (;;) {
            if (stop || interrupt_requested()) break;
            size_t i = next.fetch_add(1);
            if (i >= n) break;
            if (ordered && !ordered->wait_turn(i, stop)) break;
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
                // Shards keep the remainder of a track kept whole (for random windows): its
                // frames whose centre lies inside the audio, from a zero-padded chunk.
                const int64_t rem =
                    int64_t(a.samples.size()) - r.total_chunks * cfg.chunk_samples();
                const bool whole = int64_t(r.chunk_index.size()) == r.total_chunks;
                r.remainder_frames =
                    sharded && whole && rem > 0 ? (rem + cfg.hop - 1) / cfg.hop : 0;
                const size_t blocks = r.chunk_index.size() + (r.remainder_frames > 0);
                chunks.assign(blocks * size_t(cfg.chunk_samples()), 0.f);
                for (size_t c = 0; c < r.chunk_index.size(); ++c)
                    std::copy_n(a.samples.begin() + r.chunk_index[c] * cfg.chunk_samples(),
                                cfg.chunk_samples(),
                                chunks.begin() + int64_t(c) * cfg.chunk_samples());
                if (r.remainder_frames > 0)
                    std::copy(a.samples.end() - rem, a.samples.end(),
                              chunks.begin() + int64_t(r.chunk_index.size()) * cfg.chunk_samples());
            } catch (const std::exception& e) {
                fail_track(i, with_path(path, e.what()));
                ++done;
                continue;
            }
            const int64_t n_chunks = int64_t(r.chunk_index.size()) + (r.remainder_frames > 0);
            if (on_gpu) {
                queue.push({i, std::move(chunks), n_chunks});
                continue;  // the GPU thread finishes this track
            }
            try {
                if (!spec) spec = std::make_unique<CpuSpectrogram>(cfg, 1);
                std::vector<float> out_specs(size_t(n_chunks * cfg.chunk_values()));
                spec->compute(chunks.data(), n_chunks, out_specs.data(), scale);
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
                std::vector<float> specs =
                    gpu_spec.compute_host(audio.data(), pending_chunks, scale);
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
                } else {
                    flush();  // idle: the ordered shard writer may be waiting for these
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
    if (!sharded) {
        create_folders((staging / "train").string());
        create_folders((staging / "val").string());
    }
    std::string index_csv = span_index_header();
    if (sharded) {
        shard_writer->finish();
        for (const std::string& name : shard_writer->shard_names()) {
            std::error_code size_ec;
            summary.shard_bytes += int64_t(fs::file_size(staging / "shards" / name, size_ec));
        }
        summary.shards = int64_t(shard_writer->shard_names().size());
    }

    std::vector<std::string> header =
        sharded ? std::vector<std::string>{"shard", "frame", "split", "track", "start_s"}
                : std::vector<std::string>{"file", "split", "track", "start_s"};
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
        if (sharded) {
            // Each chunk sits in the span that holds its offset within the track's frames.
            const std::vector<std::string>& names = shard_writer->shard_names();
            for (const SpanEntry& sp : r.spans)
                index_csv +=
                    span_index_row("shards/" + names[size_t(sp.shard)], sp, labels.tracks[i].path);
            size_t span = 0;
            int64_t span_begin = 0;  // the span's first frame within the track
            for (size_t c = 0; c < r.chunk_index.size(); ++c) {
                while (r.chunk_frame[c] >= span_begin + r.spans[span].frames) {
                    span_begin += r.spans[span].frames;
                    ++span;
                }
                const SpanEntry& sp = r.spans[span];
                std::vector<std::string> row = {
                    "shards/" + names[size_t(sp.shard)],
                    std::to_string(sp.frame + r.chunk_frame[c] - span_begin), split,
                    labels.tracks[i].path, std::to_string(r.chunk_index[c] * cfg.chunk_seconds)};
                for (size_t g = 0; g < G; ++g)
                    row.push_back(labels.tracks[i].labels[g] ? "1" : "0");
                manifest += csv_line(row);
            }
            continue;
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
    json["layout"] = sharded ? "shards" : "chunk_files";
    if (sharded) {
        json["normalisation"] =
            "stored as dB; per 431-frame window: clip at max - top_db, "
            "min-max to [0, 1]";
        json["shard_dtype"] = shard_dtype_name(opt.shard_dtype);
        json["shard_max_bytes"] = opt.shard_bytes;
        json["shards"] = summary.shards;
        json["shard_bytes"] = summary.shard_bytes;
    } else {
        json["normalisation"] = "minmax_per_chunk";
    }
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
    if (sharded) write_file_atomic((staging / "shards" / "index.csv").string(), index_csv);
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
    for (const char* name :
         {"train", "val", "shards", "genres.txt", "prepare.json", "manifest.csv"})
        if (fs::exists(staging / name, ec)) rename_or_fail(staging / name, out / name);
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
