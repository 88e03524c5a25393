// The long check: prepare ../shared/data/emotify-dev with gnet prepare, train a few epochs on the
// CPU, evaluate. Minutes on two cores, so it runs only with GNET_LONG_TESTS=1 (CI skips it):
//   GNET_LONG_TESTS=1 build/tests/test_train_real
#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>

#include "tests/helpers.h"
#include "train/csv.h"

using gnet::test::run_gnet;
using gnet::test::TempDir;

TEST_CASE("train on emotify-dev prepared by gnet prepare (GNET_LONG_TESTS=1)") {
    const char* flag = std::getenv("GNET_LONG_TESTS");
    if (!flag || std::string(flag) != "1") {
        gnet::test::skip_program("set GNET_LONG_TESTS=1 to run the multi-minute training check");
    }
    const std::string src = gnet::test::shared_data_dir() + "/emotify-dev";
    if (!gnet::test::path_exists(src)) {
        gnet::test::skip_program(src + " (shared data) is absent");
    }
    TempDir dir;
    const std::string data = dir.file("data"), run = dir.file("run");
    auto prep = run_gnet("prepare '" + src + "' --labels '" + src + "/genres.csv' --out '" + data +
                         "' --device cpu");
    REQUIRE(prep.exit_code == 0);
    auto train = run_gnet("train --data '" + data + "' --out '" + run +
                          "' --epochs 3 --batch 16 --device cpu --pos-weight auto");
    INFO(train.out, train.err);
    REQUIRE(train.exit_code == 0);
    auto rows = gnet::csv_read_file(run + "/metrics.csv");
    REQUIRE(rows.size() == 4);  // header + 3 epochs
    size_t loss_col = 0;
    for (size_t i = 0; i < rows[0].fields.size(); ++i)
        if (rows[0].fields[i] == "train_loss") loss_col = i;
    REQUIRE(loss_col > 0);
    CHECK(std::stod(rows[3].fields[loss_col]) < std::stod(rows[1].fields[loss_col]));
    auto eval = run_gnet("evaluate --data '" + data + "' --model '" + run +
                         "/best.safetensors' --device cpu");
    REQUIRE(eval.exit_code == 0);
    CHECK(eval.out.find("new_age") != std::string::npos);
    CHECK(eval.out.find("n/a") != std::string::npos);  // new_age has no positive
    CHECK(eval.out.find("nan") == std::string::npos);
}
