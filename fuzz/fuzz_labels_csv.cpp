// labels.csv: the CSV reader (train/csv.h) and the label table built from it (train/labels.h),
// against a small music folder holding a.wav and rock/b.wav.
#include <filesystem>

#include "fuzz/fuzz_common.h"
#include "kernels/error.h"
#include "train/csv.h"
#include "train/labels.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    namespace fs = std::filesystem;
    static const std::string music = [] {
        const std::string m = gnet::fuzz::scratch_dir() + "/music";
        fs::create_directories(m + "/rock");
        gnet::fuzz::write_scratch("music/a.wav", nullptr, 0);
        gnet::fuzz::write_scratch("music/rock/b.wav", nullptr, 0);
        return m;
    }();
    try {
        gnet::csv_parse(std::string(reinterpret_cast<const char*>(data), size), "fuzz.csv");
    } catch (const gnet::Error&) {
    }
    try {
        const std::string csv = gnet::fuzz::write_scratch("labels.csv", data, size);
        gnet::labels_from_csv(csv, music);
    } catch (const gnet::Error&) {
    }
    return 0;
}
