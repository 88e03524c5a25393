// The gnet binary: exit codes, --help, --version, info, usage errors.
#include <doctest/doctest.h>

#include <algorithm>

#include "nn/device.h"
#include "nn/json.h"
#include "tests/helpers.h"

using gnet::test::run_gnet;

TEST_CASE("gnet --help and --version exit 0") {
    auto h = run_gnet("--help");
    CHECK(h.exit_code == 0);
    CHECK(h.out.find("Examples") != std::string::npos);
    CHECK(h.out.find("info") != std::string::npos);
    auto v = run_gnet("--version");
    CHECK(v.exit_code == 0);
    CHECK(v.out.find("gnet 0.") != std::string::npos);
    auto ih = run_gnet("info --help");
    CHECK(ih.exit_code == 0);
    CHECK(ih.out.find("Example") != std::string::npos);
}

TEST_CASE("gnet info reports the build, the GPU state and library versions") {
    auto r = run_gnet("info");
    INFO(r.out, r.err);
    REQUIRE(r.exit_code == 0);
    for (const char* key :
         {"build:", "libsndfile", "libsoxr", "FFTW", "OpenBLAS", "cuDNN", "cuBLAS", "CPU threads"})
        CHECK(r.out.find(key) != std::string::npos);
    if (gnet::probe_gpus().usable) {
        CHECK(r.out.find("compute capability") != std::string::npos);
    } else {
        CHECK(r.out.find("no usable GPU") != std::string::npos);
    }
#if GNET_HAVE_CUDA
    CHECK(r.out.find("CUDA runtime") != std::string::npos);
    CHECK(r.out.find("cuFFT") != std::string::npos);
#endif
}

TEST_CASE("usage errors exit 2 with one line on stderr") {
    auto none = run_gnet("");
    CHECK(none.exit_code == 2);
    auto bad = run_gnet("no-such-command");
    CHECK(bad.exit_code == 2);
    CHECK(bad.err.find("gnet:") == 0);
    CHECK(std::count(bad.err.begin(), bad.err.end(), '\n') == 1);
    auto opt = run_gnet("info --bogus");
    CHECK(opt.exit_code == 2);
    CHECK(opt.out.empty());
}

TEST_CASE("without a GPU, the CPU note is said once, briefly (17)") {
    if (gnet::probe_gpus().usable) return;  // nothing to say on a GPU machine
    auto r = run_gnet("bench --quick --device auto --ops ops,spectrogram");
    INFO(r.err);
    size_t count = 0, at = 0;
    while ((at = r.err.find("no usable GPU", at)) != std::string::npos) {
        ++count;
        ++at;
    }
    CHECK(count == 1);
    const size_t line_start = r.err.rfind('\n', r.err.find("no usable GPU"));
    const size_t line_end = r.err.find('\n', r.err.find("no usable GPU"));
    CHECK(line_end - (line_start == std::string::npos ? 0 : line_start) < 80);
}

TEST_CASE("gnet bench runs a chosen suite, prints a table and writes JSON") {
    gnet::test::TempDir dir;
    auto r = run_gnet("bench --quick --device cpu --ops ops --json '" + dir.file("b.json") + "'");
    INFO(r.out, r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.find("batchnorm_forward_train") != std::string::npos);
    CHECK(r.out.find("GB/s") != std::string::npos);
    gnet::Json doc = gnet::json_parse(gnet::test::read_text(dir.file("b.json")));
    REQUIRE(doc.is_array());
    REQUIRE(doc.size() == 1);
    CHECK(doc.at(size_t(0)).at("git_commit").is_string());
    CHECK(doc.at(size_t(0)).at("results").size() > 0);
    auto bad = run_gnet("bench --ops nonsense");
    CHECK(bad.exit_code == 2);
    CHECK(bad.err.find("unknown benchmark 'nonsense'") != std::string::npos);
}
