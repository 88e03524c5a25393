// The synthetic demo collection: deterministic, distinct genres, valid labels.
#include <doctest/doctest.h>
#include <sndfile.h>

#include <cmath>

#include "audio/synth.h"
#include "kernels/error.h"
#include "tests/helpers.h"
#include "train/csv.h"

using namespace gnet;

TEST_CASE("synth tracks are deterministic, bounded and differ by genre") {
    auto a = synth_track({"pulse"}, 3.0, 22050, 5);
    CHECK(a.size() == 66150);
    CHECK(a == synth_track({"pulse"}, 3.0, 22050, 5));
    CHECK(a != synth_track({"pulse"}, 3.0, 22050, 6));
    for (const auto& g : synth_genres()) {
        auto y = synth_track({g}, 2.0, 22050, 1);
        double energy = 0;
        float peak = 0;
        for (float v : y) {
            energy += double(v) * v;
            peak = std::max(peak, std::fabs(v));
        }
        CAPTURE(g);
        CHECK(energy > 1.0);
        CHECK(peak <= 0.951f);
    }
    CHECK_THROWS_AS(synth_track({"polka"}, 1.0, 22050, 0), Error);
}

TEST_CASE("demo-data writes WAV files and a consistent multi-hot labels.csv") {
    gnet::test::TempDir dir;
    auto r = gnet::test::run_gnet("demo-data '" + dir.file("m") +
                                  "' --tracks-per-genre 2 --two-label 3 --seconds 2");
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    auto recs = csv_read_file(dir.file("m/labels.csv"));
    REQUIRE(recs.size() == 1 + 4 * 2 + 3);
    CHECK(recs[0].fields == std::vector<std::string>{"track", "pulse", "drone", "chime", "bass"});
    int two = 0;
    for (size_t i = 1; i < recs.size(); ++i) {
        int ones = 0;
        for (size_t g = 1; g < 5; ++g)
            ones += recs[i].fields[g] == "1";
        two += ones == 2;
        SF_INFO info{};
        SNDFILE* f = sf_open(dir.file("m/" + recs[i].fields[0]).c_str(), SFM_READ, &info);
        REQUIRE(f != nullptr);
        CHECK(info.samplerate == 22050);
        CHECK(info.frames == 44100);
        sf_close(f);
    }
    CHECK(two == 3);
}
