// Latency of `gnet predict` as a user sees it: wall-clock time from starting the command to its
// last result, for one 4-minute MP3 and for a folder of 100 tracks (../shared/data/emotify-dev).
// The whole process is timed (start-up, model load, decoding, resampling, spectrograms,
// inference, output), with a randomly initialised 10-genre checkpoint: the weights do not change
// the work. The 4-minute MP3 is made here from four emotify tracks (libsndfile's MP3 encoder).
#include <sndfile.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cstdlib>

#include <fcntl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "audio/decode.h"
#include "bench/harness.h"
#include "kernels/error.h"
#include "nn/checkpoint.h"
#include "nn/resnet18.h"

extern char** environ;
namespace fs = std::filesystem;
using namespace gnet;

namespace {

double run_ms(const std::vector<std::string>& argv) {
    std::vector<char*> cargv;
    for (const std::string& a : argv)
        cargv.push_back(const_cast<char*>(a.c_str()));
    cargv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    auto t0 = std::chrono::steady_clock::now();
    pid_t pid;
    if (posix_spawn(&pid, argv[0].c_str(), &fa, nullptr, cargv.data(), environ) != 0)
        throw Error(argv[0] + ": cannot start");
    int status = 0;
    waitpid(pid, &status, 0);
    auto t1 = std::chrono::steady_clock::now();
    posix_spawn_file_actions_destroy(&fa);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        throw Error("gnet predict failed (exit status " + std::to_string(status) + ")");
    return std::chrono::duration<double, std::milli>(t1 - t0).count();
}

void write_mp3(const std::string& path, const std::vector<float>& mono, int rate) {
    SF_INFO info{};
    info.samplerate = rate;
    info.channels = 1;
    info.format = SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III;
    SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
    if (!f) throw Error(path + ": cannot write MP3: " + sf_strerror(nullptr));
    sf_writef_float(f, mono.data(), sf_count_t(mono.size()));
    sf_close(f);
}

}  // namespace

int main(int argc, char** argv) try {
    bench::Options opt = bench::parse_options(
        argc, argv, "bench_predict: wall-clock latency of gnet predict (whole process)");
    // GNET_SHARED_DATA: a copy of ../shared/data elsewhere (scripts/gpu-check --shared-data).
    const char* shared = std::getenv("GNET_SHARED_DATA");
    const std::string data =
        std::string(shared && *shared ? shared : GNET_BENCH_SHARED_DATA) + "/emotify-dev";
    bench::Report report("gnet predict latency (command start to last result)");
    if (!fs::exists(data)) {
        report.note("skipped: " + data + " is absent");
        report.print_table();
        return 0;
    }
    const std::string gnet = (fs::read_symlink("/proc/self/exe").parent_path() / "gnet").string();
    const fs::path tmp =
        fs::temp_directory_path() / ("gnet-bench-predict-" + std::to_string(getpid()));
    fs::create_directories(tmp);

    ResNet18Config cfg;
    cfg.num_genres = 10;
    cfg.max_batch = 1;
    ResNet18 model(cfg, Device::CPU);
    CheckpointMeta meta;
    for (int g = 0; g < 10; ++g)
        meta.genres.push_back("genre_" + std::to_string(g));
    const std::string ckpt = (tmp / "model.safetensors").string();
    write_checkpoint(ckpt, model, meta);

    std::vector<float> long_track;
    int rate = 44100;
    // The first four MP3s (sorted) of the folder, back to back: about four minutes.
    std::vector<fs::path> mp3s;
    for (const auto& e : fs::recursive_directory_iterator(data))
        if (e.path().extension() == ".mp3") mp3s.push_back(e.path());
    std::sort(mp3s.begin(), mp3s.end());
    for (size_t i = 0; i < mp3s.size() && i < 4; ++i) {
        DecodedAudio a = decode_audio(mp3s[i].string());
        rate = a.sample_rate;
        long_track.insert(long_track.end(), a.mono.begin(), a.mono.end());
    }
    const std::string mp3 = (tmp / "four_minutes.mp3").string();
    write_mp3(mp3, long_track, rate);
    const double track_s = double(long_track.size()) / rate;

    const std::string device = opt.device == "auto" ? "auto" : opt.device;
    const int repeats = opt.quick ? 1 : std::max(1, std::min(opt.repeats, 5));
    auto time_cmd = [&](const std::vector<std::string>& args, int reps) {
        std::vector<double> ms;
        for (int i = 0; i < reps; ++i)
            ms.push_back(run_ms(args));
        return bench::Timing{bench::median(ms), *std::min_element(ms.begin(), ms.end())};
    };
    const std::string batch = std::to_string(opt.batch);
    bench::Timing one =
        time_cmd({gnet, "predict", mp3, "-m", ckpt, "--device", device, "--batch", batch}, repeats);
    bench::Result r1;
    r1.op = "predict 1 file";
    char shape[96];
    std::snprintf(shape, sizeof shape, "%.0f s MP3, %d chunks", track_s, int(track_s / 10));
    r1.shape = shape;
    r1.device = device;
    r1.impl = "gnet";
    r1.median_ms = one.median_ms;
    r1.min_ms = one.min_ms;
    r1.unit = "x realtime";
    r1.rate = track_s / (one.median_ms * 1e-3);
    report.add(r1);

    if (!opt.quick) {
        double audio_s = 0;
        int files = 0;
        for (const auto& e : fs::recursive_directory_iterator(data))
            if (e.path().extension() == ".mp3") {
                ++files;
                SF_INFO info{};
                if (SNDFILE* f = sf_open(e.path().c_str(), SFM_READ, &info)) {
                    audio_s += double(info.frames) / info.samplerate;
                    sf_close(f);
                }
            }
        bench::Timing many = time_cmd({gnet, "predict", data, "-m", ckpt, "--device", device,
                                       "--batch", batch, "--format", "csv"},
                                      1);
        bench::Result r2;
        r2.op = "predict folder";
        std::snprintf(shape, sizeof shape, "%d MP3s, %.0f s of audio", files, audio_s);
        r2.shape = shape;
        r2.device = device;
        r2.impl = "gnet";
        r2.median_ms = r2.min_ms = many.median_ms;
        r2.unit = "tracks/s";
        r2.rate = files / (many.median_ms * 1e-3);
        r2.note = std::to_string(int(audio_s / (many.median_ms * 1e-3))) + "x real time";
        report.add(r2);
    }
    fs::remove_all(tmp);
    report.print_table();
    if (!opt.json_path.empty()) report.write_json(opt.json_path);
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "bench_predict: %s\n", e.what());
    return 1;
}
