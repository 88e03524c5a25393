// The fast CPU backend trains like the reference twins: `gnet train` on ../shared/data/gtzan-mini
// (prepared by gnet prepare), the same seed on both backends, and the reference once more with
// another seed for the run-to-run scatter. The fast run's train and validation loss curves must
// stay as close to the reference's as the reference's own second seed does (or within 0.02).
// A few minutes on two cores (the reference backend is the slow part), so it runs only with
// GNET_LONG_TESTS=1:   GNET_LONG_TESTS=1 build/tests/test_train_fast_vs_reference
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "nn/layers.h"
#include "tests/helpers.h"
#include "train/csv.h"

using gnet::test::run_gnet;
using gnet::test::TempDir;

namespace {

constexpr int kEpochs = 4;
constexpr double kLossFloor = 0.02;  // losses closer than this always agree

std::vector<double> column(const std::string& metrics_csv, const std::string& name) {
    auto rows = gnet::csv_read_file(metrics_csv);
    REQUIRE(rows.size() >= 2);
    size_t col = rows[0].fields.size();
    for (size_t i = 0; i < rows[0].fields.size(); ++i)
        if (rows[0].fields[i] == name) col = i;
    REQUIRE(col < rows[0].fields.size());
    std::vector<double> v;
    for (size_t r = 1; r < rows.size(); ++r)
        v.push_back(std::stod(rows[r].fields[col]));
    return v;
}

double max_gap(const std::vector<double>& a, const std::vector<double>& b) {
    double m = 0;
    for (size_t i = 0; i < std::min(a.size(), b.size()); ++i)
        m = std::max(m, std::fabs(a[i] - b[i]));
    return m;
}

}  // namespace

TEST_CASE("gtzan-mini: the fast backend's loss curve stays within the reference's scatter") {
    const char* flag = std::getenv("GNET_LONG_TESTS");
    if (!flag || std::string(flag) != "1") {
        MESSAGE("skipped: set GNET_LONG_TESTS=1 to run the multi-minute training comparison");
        return;
    }
    if (gnet::effective_cpu_backend(gnet::CpuBackend::Fast) != gnet::CpuBackend::Fast) {
        MESSAGE("skipped: this CPU has no AVX2+FMA (the fast backend is the reference here)");
        return;
    }
    const std::string src = gnet::test::shared_data_dir() + "/gtzan-mini";
    if (!gnet::test::path_exists(src)) {
        MESSAGE("skipped: " << src << " is absent");
        return;
    }
    TempDir dir;
    const std::string data = dir.file("data");
    REQUIRE(run_gnet("prepare '" + src + "' --out '" + data + "' --device cpu").exit_code == 0);
    auto train = [&](const std::string& backend, int seed) {
        const std::string out = dir.file(backend + std::to_string(seed));
        auto r = run_gnet("train --data '" + data + "' --out '" + out + "' --epochs " +
                          std::to_string(kEpochs) + " --batch 8 --seed " + std::to_string(seed) +
                          " --device cpu");
        INFO(r.out, r.err);
        REQUIRE(r.exit_code == 0);
        return out + "/metrics.csv";
    };
    setenv("GNET_CPU_BACKEND", "reference", 1);
    const std::string ref0 = train("reference", 0), ref1 = train("reference", 1);
    setenv("GNET_CPU_BACKEND", "fast", 1);
    const std::string fast0 = train("fast", 0);
    unsetenv("GNET_CPU_BACKEND");
    for (const char* col : {"train_loss", "val_loss"}) {
        const auto r0 = column(ref0, col), r1 = column(ref1, col), f0 = column(fast0, col);
        REQUIRE(f0.size() == size_t(kEpochs));
        const double scatter = max_gap(r0, r1), gap = max_gap(f0, r0);
        MESSAGE(std::string(col) << ": fast vs reference (seed 0) max gap " << gap
                                 << ", reference seed 0 vs seed 1 max gap " << scatter);
        CHECK(gap <= std::max(scatter, kLossFloor));
    }
}
