// gnet prepare under hostile conditions (issues 17 and 18): concurrent runs, --force, interrupted
// runs, full disks, symbolic links, paths leaving the music folder, control characters, huge
// label tables, long tracks, empty splits, FIFOs and tiny files among the music.
#include <doctest/doctest.h>
#include <signal.h>
#include <sndfile.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <thread>

#include "nn/atomic_file.h"
#include "nn/json.h"
#include "tests/helpers.h"
#include "train/csv.h"

using namespace gnet;
using gnet::test::run_command;
using gnet::test::run_gnet;
using gnet::test::TempDir;
using gnet::test::write_text;
namespace fs = std::filesystem;

namespace {

void write_wav(const std::string& path, double seconds, double freq, int rate = 22050) {
    fs::create_directories(fs::path(path).parent_path());
    SF_INFO info{};
    info.samplerate = rate;
    info.channels = 1;
    info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
    SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
    REQUIRE(f != nullptr);
    std::vector<float> buf(size_t(seconds * rate));
    for (size_t i = 0; i < buf.size(); ++i)
        buf[i] = 0.4f * float(std::sin(2 * M_PI * freq * double(i) / rate));
    sf_writef_float(f, buf.data(), sf_count_t(buf.size()));
    sf_close(f);
}

std::string q(const std::string& s) {
    return "'" + s + "'";
}

// Two genres, `per_genre` 11 s tracks each.
void make_music(const std::string& music, int per_genre, double seconds = 11.0) {
    for (int t = 0; t < per_genre; ++t) {
        write_wav(music + "/low/l" + std::to_string(t) + ".wav", seconds, 200.0 + 10 * t);
        write_wav(music + "/high/h" + std::to_string(t) + ".wav", seconds, 3000.0 + 50 * t);
    }
}

std::string prepare(const std::string& music, const std::string& data,
                    const std::string& extra = "") {
    return "prepare " + q(music) + " --out " + q(data) + " --device cpu " + extra;
}

Json prepare_json(const std::string& data) {
    return json_parse(gnet::test::read_text(data + "/prepare.json"));
}

}  // namespace

TEST_CASE("a second prepare into a folder in use is refused, with or without --force (18.5)") {
    TempDir dir;
    const std::string music = dir.file("music"), data = dir.file("data");
    make_music(music, 3);
    fs::create_directories(data);
    {
        DirectoryLock held(data, "gnet prepare");  // as a run in progress holds it
        for (const char* extra : {"", "--force"}) {
            auto r = run_gnet(prepare(music, data, extra));
            CHECK(r.exit_code == 1);
            CHECK(r.err.find("in use by gnet prepare (pid " + std::to_string(::getpid())) !=
                  std::string::npos);
        }
        CHECK_FALSE(fs::exists(data + "/manifest.csv"));
    }
    auto ok = run_gnet(prepare(music, data));
    INFO(ok.err);
    CHECK(ok.exit_code == 0);
}

TEST_CASE("--force keeps the old data set until the new one is complete (18.5)") {
    TempDir dir;
    const std::string music = dir.file("music"), data = dir.file("data");
    make_music(music, 3);
    REQUIRE(run_gnet(prepare(music, data)).exit_code == 0);
    const std::string manifest = gnet::test::read_text(data + "/manifest.csv");
    // A rebuild that fails (nothing decodable) leaves the old set untouched.
    const std::string broken = dir.file("broken");
    write_text(broken + "/x/a.wav", "");
    fs::create_directories(broken + "/x");
    write_text(broken + "/x/a.wav", "not audio");
    write_text(broken + "/y/b.wav", "");
    fs::create_directories(broken + "/y");
    write_text(broken + "/y/b.wav", "not audio either");
    auto r = run_gnet(prepare(broken, data, "--force"));
    CHECK(r.exit_code == 1);
    CHECK(gnet::test::read_text(data + "/manifest.csv") == manifest);
    CHECK(fs::exists(data + "/shards/index.csv"));
    // A rebuild that works replaces it, and says so.
    auto f = run_gnet(prepare(music, data, "--force --seed 5"));
    CHECK(f.exit_code == 0);
    CHECK(f.err.find("replaced the data set") != std::string::npos);
    for (const auto& e : fs::directory_iterator(data))
        CHECK(e.path().filename().string().rfind(".old", 0) != 0);
}

TEST_CASE("an interrupted prepare is cleared and rebuilt without --force (17, 18.15)") {
    TempDir dir;
    const std::string music = dir.file("music"), data = dir.file("data");
    make_music(music, 3);
    // What a killed run leaves: a staging folder, half the files, a temporary of a dead process.
    fs::create_directories(data + "/.partial-12345");
    write_text(data + "/.partial-12345/000000_000.npy", "half");
    fs::create_directories(data + "/train");
    write_text(data + "/genres.txt", "stale\n");
    pid_t dead = ::fork();
    if (dead == 0) ::_exit(0);
    ::waitpid(dead, nullptr, 0);
    const std::string tmp = data + "/manifest.csv.tmp." + std::to_string(dead);
    write_text(tmp, std::string(1000, 'x'));
    auto r = run_gnet(prepare(music, data));
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.err.find("held an interrupted prepare") != std::string::npos);
    CHECK_FALSE(fs::exists(tmp));
    CHECK_FALSE(fs::exists(data + "/.partial-12345"));
    CHECK(gnet::test::read_text(data + "/genres.txt") == "high\nlow\n");
}

TEST_CASE("Ctrl-C during prepare: exit 130, says what happened, nothing half-written (17)") {
    TempDir dir;
    const std::string music = dir.file("music"), data = dir.file("data");
    make_music(music, 20, 21.0);
    const std::string err = dir.file("err.txt");
    pid_t pid = ::fork();
    if (pid == 0) {
        std::freopen(err.c_str(), "w", stderr);
        std::freopen("/dev/null", "w", stdout);
        ::execl(gnet::test::gnet_binary().c_str(), "gnet", "prepare", music.c_str(), "--out",
                data.c_str(), "--device", "cpu", "--jobs", "1", nullptr);
        ::_exit(127);
    }
    // Wait until the run has started writing into its staging folder, then press Ctrl-C.
    bool staging = false;
    for (int i = 0; i < 400 && !staging; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        std::error_code ec;
        for (fs::directory_iterator it(data, ec), end; !ec && it != end; it.increment(ec))
            staging = staging || it->path().filename().string().rfind(".partial", 0) == 0;
    }
    ::kill(pid, SIGINT);
    int status = 0;
    ::waitpid(pid, &status, 0);
    const std::string text = gnet::test::read_text(err);
    INFO(text);
    REQUIRE(staging);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 130);
    CHECK(text.find("prepare interrupted after") != std::string::npos);
    CHECK(text.find("run the same command again") != std::string::npos);
    CHECK_FALSE(fs::exists(data + "/manifest.csv"));
    for (const auto& e : fs::directory_iterator(data))
        CHECK(e.path().filename().string().rfind(".partial", 0) != 0);
}

TEST_CASE("a failed output write stops prepare instead of skipping tracks (18.4)") {
    TempDir dir;
    const std::string music = dir.file("music"), data = dir.file("data");
    make_music(music, 3);
    // A file-size limit below one chunk's .npy stands in for a full disk: every write fails.
    auto r = run_command("trap '' XFSZ; ulimit -f 100; '" + gnet::test::gnet_binary() + "' " +
                         prepare(music, data));
    INFO(r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("File too large") != std::string::npos);
    CHECK(r.err.find("was not changed") != std::string::npos);
    CHECK(r.err.find("skipped") == std::string::npos);
    CHECK_FALSE(fs::exists(data + "/manifest.csv"));
}

TEST_CASE(
    "symbolic links keep their own path and label; paths leaving the folder are refused (18.6)") {
    TempDir dir;
    const std::string music = dir.file("music"), data = dir.file("data");
    make_music(music, 3);
    write_wav(dir.file("elsewhere/x.wav"), 11.0, 500.0);
    fs::create_directories(music + "/pop");
    fs::create_symlink("../low/l0.wav", music + "/pop/link.wav");
    fs::create_symlink(dir.file("elsewhere/x.wav"), music + "/pop/outside.wav");
    fs::create_symlink(dir.file("nowhere.wav"), music + "/pop/broken.wav");
    auto r = run_gnet(prepare(music, data));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(gnet::test::read_text(data + "/genres.txt") == "high\nlow\npop\n");
    auto recs = csv_read_file(data + "/manifest.csv");
    int link_rows = 0, l0_rows = 0;
    for (const CsvRecord& rec : recs) {
        // shard,frame,split,track,start_s,<genres>
        link_rows += rec.fields[3] == "pop/link.wav";
        l0_rows += rec.fields[3] == "low/l0.wav";
        if (rec.fields[3] == "pop/outside.wav") CHECK(rec.fields[5 + 2] == "1");  // pop
    }
    CHECK(link_rows == 1);
    CHECK(l0_rows == 1);
    Json pj = prepare_json(data);
    bool broken_listed = false;
    for (const Json& u : pj.at("not_used"))
        broken_listed = broken_listed || u.at("path").get<std::string>() == "pop/broken.wav";
    CHECK(broken_listed);

    for (const char* bad : {"../elsewhere/x.wav", "/etc/passwd", "low/../../elsewhere/x.wav"}) {
        write_text(dir.file("labels.csv"), std::string("track,a\nlow/l1.wav,1\n") + bad + ",1\n");
        auto c = run_gnet(prepare(music, dir.file("d2"), "--labels " + q(dir.file("labels.csv"))));
        CHECK(c.exit_code == 1);
        CHECK(c.err.find("labels.csv:3: track") != std::string::npos);
        CHECK(c.err.find("outside the music folder") != std::string::npos);
    }
}

TEST_CASE("genre names with control characters are refused (18.16)") {
    TempDir dir;
    const std::string music = dir.file("music");
    make_music(music, 2);
    write_wav(music + "/new\nline/a.wav", 11.0, 700.0);
    auto r = run_gnet(prepare(music, dir.file("data")));
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("control character") != std::string::npos);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    write_text(dir.file("labels.csv"), "track,\"a\tb\"\nlow/l0.wav,1\n");
    auto c = run_gnet(prepare(music, dir.file("d2"), "--labels " + q(dir.file("labels.csv"))));
    CHECK(c.exit_code == 1);
    CHECK(c.err.find("labels.csv:1: genre name 'a?b' holds a control character") !=
          std::string::npos);
}

TEST_CASE("huge label tables: genre count capped, warnings capped, counts honest (17, 18.13)") {
    TempDir dir;
    const std::string music = dir.file("music"), data = dir.file("data");
    make_music(music, 3);
    std::string wide = "track";
    for (int g = 0; g < 5000; ++g)
        wide += ",g" + std::to_string(g);
    write_text(dir.file("wide.csv"), wide + "\n");
    auto w = run_gnet(prepare(music, data, "--labels " + q(dir.file("wide.csv"))));
    CHECK(w.exit_code == 1);
    CHECK(w.err.find("5000 genre columns; gnet supports at most 4096") != std::string::npos);

    std::string csv = "track,low,high\n";
    for (int t = 0; t < 3; ++t)
        csv += "low/l" + std::to_string(t) + ".wav,1,0\nhigh/h" + std::to_string(t) + ".wav,0,1\n";
    for (int m = 0; m < 500; ++m)
        csv += "missing/" + std::to_string(m) + ".wav,1,0\n";
    write_text(dir.file("labels.csv"), csv);
    auto r = run_gnet(prepare(music, data, "--labels " + q(dir.file("labels.csv"))));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') <= 25);
    CHECK(r.err.find("... and 480 more rows whose file does not exist") != std::string::npos);
    CHECK(r.out.find("prepared 6 of 6 labelled tracks") != std::string::npos);
    CHECK(r.out.find("not used: 500 audio files without a label") != std::string::npos);
    Json pj = prepare_json(data);
    CHECK(pj.at("files_not_used").get<int>() == 500);
    CHECK(pj.at("not_used").size() == 500);
    CHECK(pj.at("tracks_found").get<int>() == 506);
}

TEST_CASE("bad files among the music are skipped with reasons in prepare.json (17, 18.1, 18.3)") {
    TempDir dir;
    const std::string music = dir.file("music"), data = dir.file("data");
    make_music(music, 3);
    REQUIRE(::mkfifo((music + "/low/fifo.wav").c_str(), 0600) == 0);
    SF_INFO info{};
    info.samplerate = 48000;
    info.channels = 1;
    info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
    SNDFILE* f = sf_open((music + "/high/one_sample.wav").c_str(), SFM_WRITE, &info);
    float one = 0.5f;
    sf_writef_float(f, &one, 1);
    sf_close(f);
    write_text(music + "/low/cover.jpg", "\xff\xd8\xff");
    auto r = run_gnet(prepare(music, data));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.err.find("fifo.wav") != std::string::npos);
    CHECK(r.err.find("one_sample.wav") != std::string::npos);
    Json pj = prepare_json(data);
    CHECK(pj.at("tracks_skipped").get<int>() == 2);
    bool fifo_reason = false;
    for (const Json& sk : pj.at("skipped"))
        fifo_reason = fifo_reason || sk.at("reason").get<std::string>().find(
                                         "not a regular file") != std::string::npos;
    CHECK(fifo_reason);
    CHECK(pj.at("not_used").at(0).at("path").get<std::string>() == "low/cover.jpg");
}

TEST_CASE("long tracks are thinned to --max-chunks-per-track; empty splits refused (17)") {
    TempDir dir;
    const std::string music = dir.file("music"), data = dir.file("data");
    make_music(music, 3);
    write_wav(music + "/low/long.wav", 65.0, 330.0);
    auto r = run_gnet(prepare(music, data, "--max-chunks-per-track 3"));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.err.find("low/long.wav: 6 chunks, kept 3") != std::string::npos);
    std::vector<std::string> starts;
    for (const CsvRecord& rec : csv_read_file(data + "/manifest.csv"))
        if (rec.fields[3] == "low/long.wav") starts.push_back(rec.fields[4]);
    CHECK(starts == std::vector<std::string>{"10", "30", "50"});

    auto none = run_gnet(prepare(music, dir.file("d0"), "--val-fraction 0"));
    CHECK(none.exit_code == 1);
    CHECK(none.err.find("no track landed in the validation split") != std::string::npos);
}
