// The benchmark harness shared by every program in bench/.
//
// Rules (STYLE.md): validate before timing; warm up; time many repeats and report the median;
// on the GPU time with cudaEvents on one stream and flush L2 between repeats so every repeat reads
// from HBM; report a rate (GFLOP/s or GB/s, formula at the call site) and the ratio to the
// yardstick (cuDNN / cuBLAS / cuFFT on the GPU, OpenBLAS / FFTW or PyTorch on the CPU).
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace gnet::bench {

struct Options {
    int warmup = 3;
    int repeats = 20;
    int batch = 32;
    std::string device = "auto";              // auto | cpu | cuda
    std::string ops;                          // comma-separated filter; empty = all
    std::string json_path;                    // --json FILE
    bool quick = false;                       // --quick: few repeats, small sizes (used by tests)
    bool wants(const std::string& op) const;  // true when `ops` is empty or lists `op`
};

// Parses --warmup N --repeats N --batch N --device D --ops a,b --json FILE --quick.
// Unknown options are an error (exit 2 with a message).
Options parse_options(int argc, char** argv, const std::string& program_help);

struct Result {
    std::string op;      // "conv2d_forward"
    std::string shape;   // "N32 C64 H32 W108 -> OC64 3x3/1"
    std::string device;  // "cpu" | "cuda"
    std::string impl;    // "gnet" | "cudnn" | "openblas" | ...
    double median_ms = 0;
    double min_ms = 0;
    double work = 0;       // FLOPs or bytes per call
    std::string unit;      // "GFLOP/s" | "GB/s" | "chunks/s" | "samples/s"
    double rate = 0;       // work / median time in `unit`
    double ratio = 0;      // gnet time / yardstick time (< 1: gnet faster); 0 = none
    std::string ratio_to;  // name of the yardstick
    std::string note;
};

class Report {
  public:
    explicit Report(std::string title) : title_(std::move(title)) {}
    void add(Result r) { results_.push_back(std::move(r)); }
    void note(const std::string& line) { notes_.push_back(line); }
    // Sets `ratio` of every result with impl "gnet" (same op, shape, device) against `yardstick`.
    void compute_ratios(const std::string& yardstick);
    void print_table() const;  // stdout
    void write_json(const std::string& path) const;
    const std::vector<Result>& results() const { return results_; }

  private:
    std::string title_;
    std::vector<Result> results_;
    std::vector<std::string> notes_;
};

double median(std::vector<double> v);

struct Timing {
    double median_ms = 0;
    double min_ms = 0;
};

// Wall-clock timing of a CPU function (after `warmup` calls).
Timing time_cpu(const std::function<void()>& fn, int warmup, int repeats);

// Rate helpers: `work` units per call, time in ms.
inline double gflops(double flops, double ms) {
    return flops / (ms * 1e-3) / 1e9;
}
inline double gbytes(double bytes, double ms) {
    return bytes / (ms * 1e-3) / 1e9;
}

// Machine description for reports: CPU model, cores; GPU name, driver, CUDA and cuDNN versions.
std::string machine_description();

}  // namespace gnet::bench
