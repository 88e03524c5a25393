// gnet train's run folder under hostile conditions (issues 17 and 18): --resume with other options,
// a kill between the two files of an epoch, a full disk at the optimizer write, two runs at once,
// stale temporaries, Ctrl-C.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "nn/atomic_file.h"
#include "nn/json.h"
#include "tests/helpers.h"
#include "train/synthetic_data.h"
#include "train/trainer.h"

using namespace gnet;
using gnet::test::run_gnet;
using gnet::test::TempDir;
namespace fs = std::filesystem;

namespace {

void make_data(const std::string& dir) {
    SyntheticDataOptions o;
    o.genres = {"rock", "jazz"};
    o.train_tracks = 2;
    o.val_tracks = 2;
    o.chunks_per_track = 1;
    write_synthetic_prepared(dir, o);
}

std::string train_args(const std::string& data, const std::string& out) {
    return "train --data '" + data + "' --out '" + out + "' --device cpu ";
}

}  // namespace

TEST_CASE("--resume takes the run's own options and refuses a conflicting one by name (17)") {
    TempDir tmp;
    const std::string data = tmp.file("data"), run = tmp.file("run");
    make_data(data);
    auto r1 = run_gnet(train_args(data, run) + "--epochs 1 --batch 2 --lr 0.002 --seed 9");
    INFO(r1.err);
    REQUIRE(r1.exit_code == 0);
    auto bad = run_gnet(train_args(data, run) + "--epochs 2 --resume --batch 1");
    CHECK(bad.exit_code == 2);
    CHECK(bad.err.find("--batch 1 differs from this run's 2") != std::string::npos);
    auto lr = run_gnet(train_args(data, run) + "--epochs 2 --resume --lr 0.01");
    CHECK(lr.exit_code == 2);
    CHECK(lr.err.find("--lr") != std::string::npos);
    // The same values, or none at all, continue the run with its options.
    auto ok = run_gnet(train_args(data, run) + "--epochs 2 --resume --lr 0.002");
    INFO(ok.err);
    CHECK(ok.exit_code == 0);
    Json config = json_parse(gnet::test::read_text(run + "/config.json"));
    CHECK(config.at("batch").get<int>() == 2);
    CHECK(config.at("seed").get<int>() == 9);
    CHECK(config.at("epochs").get<int>() == 2);
}

TEST_CASE("an epoch is one unit: a kill or full disk between its files still resumes (18.14)") {
    TempDir tmp;
    const std::string data = tmp.file("data"), a = tmp.file("a"), b = tmp.file("b"),
                      c = tmp.file("c");
    make_data(data);
    REQUIRE(run_gnet(train_args(data, a) + "--epochs 2 --batch 2").exit_code == 0);
    REQUIRE(run_gnet(train_args(data, b) + "--epochs 1 --batch 2").exit_code == 0);
    fs::copy(b, c, fs::copy_options::recursive);
    // Killed between the two renames of epoch 2: optimizer already moved, the model still .next.
    fs::copy_file(a + "/last.safetensors", b + "/last.next.safetensors");
    fs::copy_file(a + "/optimizer.safetensors", b + "/optimizer.safetensors",
                  fs::copy_options::overwrite_existing);
    auto rb = run_gnet(train_args(data, b) + "--epochs 2 --resume");
    INFO(rb.out, rb.err);
    CHECK(rb.exit_code == 0);
    CHECK(rb.out.find("resuming") != std::string::npos);
    CHECK(rb.out.find("after epoch 2") != std::string::npos);
    CHECK_FALSE(fs::exists(b + "/last.next.safetensors"));
    // Full disk at the optimizer write of epoch 2: only the model's .next exists; epoch 1 resumes.
    fs::copy_file(a + "/last.safetensors", c + "/last.next.safetensors");
    auto rc = run_gnet(train_args(data, c) + "--epochs 2 --resume");
    INFO(rc.out, rc.err);
    CHECK(rc.exit_code == 0);
    CHECK(rc.out.find("after epoch 1") != std::string::npos);
    CHECK(rc.out.find("epoch 2/2") != std::string::npos);
}

TEST_CASE("train: a run folder in use is refused; stale temporaries are removed (18.5, 18.15)") {
    TempDir tmp;
    const std::string data = tmp.file("data"), run = tmp.file("run");
    make_data(data);
    fs::create_directories(run);
    {
        DirectoryLock held(run, "gnet train");
        auto r = run_gnet(train_args(data, run) + "--epochs 1 --batch 2");
        CHECK(r.exit_code == 1);
        CHECK(r.err.find("in use by gnet train") != std::string::npos);
    }
    pid_t dead = ::fork();
    if (dead == 0) ::_exit(0);
    ::waitpid(dead, nullptr, 0);
    const std::string stale = run + "/last.safetensors.tmp." + std::to_string(dead);
    gnet::test::write_text(stale, std::string(4096, 'x'));
    auto r = run_gnet(train_args(data, run) + "--epochs 1 --batch 2");
    CHECK(r.exit_code == 0);
    CHECK_FALSE(fs::exists(stale));
}

TEST_CASE("Ctrl-C during train: exit 130 with how to continue; --resume continues (17)") {
    TempDir tmp;
    const std::string data = tmp.file("data"), run = tmp.file("run");
    make_data(data);
    const std::string err = tmp.file("err.txt");
    pid_t pid = ::fork();
    if (pid == 0) {
        std::freopen(err.c_str(), "w", stderr);
        std::freopen("/dev/null", "w", stdout);
        ::execl(gnet::test::gnet_binary().c_str(), "gnet", "train", "--data", data.c_str(), "--out",
                run.c_str(), "--device", "cpu", "--epochs", "1000", "--batch", "1", nullptr);
        ::_exit(127);
    }
    bool epoch_done = false;  // metrics.csv appears after the first epoch
    for (int i = 0; i < 3000 && !epoch_done; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        epoch_done = fs::exists(run + "/metrics.csv");
    }
    ::kill(pid, SIGINT);
    int status = 0;
    ::waitpid(pid, &status, 0);
    const std::string text = gnet::test::read_text(err);
    INFO(text);
    REQUIRE(epoch_done);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 130);
    CHECK(text.find("training interrupted in epoch") != std::string::npos);
    CHECK(text.find("--resume") != std::string::npos);
    auto r = run_gnet(train_args(data, run) + "--epochs 2 --resume");
    INFO(r.out, r.err);
    CHECK(r.exit_code == 0);
}

TEST_CASE("curves.png: a labelled Cairo figure, non-finite values leave gaps (17)") {
    TempDir tmp;
    std::vector<EpochRecord> h;
    for (int e = 1; e <= 12; ++e) {
        EpochRecord r;
        r.epoch = e;
        r.train_loss = 0.7 / e;
        r.val_loss = e == 5 ? NAN : 0.8 / std::sqrt(double(e));
        r.train_macro_f1 = 1.0 - 0.8 / e;
        r.val_f1 = e == 7 ? 0.9 : 0.5 + 0.02 * e;
        h.push_back(r);
    }
    write_curves_png(tmp.file("c.png"), h);
    const std::string png = gnet::test::read_text(tmp.file("c.png"));
    REQUIRE(png.size() > 1000);
    CHECK(png.substr(1, 3) == "PNG");
    auto be32 = [&](size_t at) {
        return (uint32_t(uint8_t(png[at])) << 24) | (uint32_t(uint8_t(png[at + 1])) << 16) |
               (uint32_t(uint8_t(png[at + 2])) << 8) | uint32_t(uint8_t(png[at + 3]));
    };
    CHECK(be32(16) == 900);
    CHECK(be32(20) == 720);
    if (const char* keep = std::getenv("GNET_KEEP_PICTURES"))
        fs::copy_file(tmp.file("c.png"), std::string(keep) + "/curves.png",
                      fs::copy_options::overwrite_existing);
}
