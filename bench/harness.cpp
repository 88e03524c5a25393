#include "bench/harness.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <sstream>
#include <thread>

#include "build_info.h"
#if defined(GNET_HAVE_CUDNN) && GNET_HAVE_CUDNN
#include <cudnn.h>
#endif
#include "kernels/error.h"
#include "nn/atomic_file.h"
#include "nn/device.h"
#include "nn/json.h"

namespace gnet::bench {

bool Options::wants(const std::string& op) const {
    if (ops.empty()) return true;
    std::stringstream ss(ops);
    std::string item;
    while (std::getline(ss, item, ','))
        if (item == op) return true;
    return false;
}

Options parse_options(int argc, char** argv, const std::string& program_help) {
    Options o;
    auto need = [&](int& i) -> std::string {
        if (i + 1 >= argc) {
            std::fprintf(stderr, "%s: %s needs a value\n", argv[0], argv[i]);
            std::exit(2);
        }
        return argv[++i];
    };
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--warmup")
            o.warmup = std::atoi(need(i).c_str());
        else if (a == "--repeats")
            o.repeats = std::atoi(need(i).c_str());
        else if (a == "--batch")
            o.batch = std::atoi(need(i).c_str());
        else if (a == "--device")
            o.device = need(i);
        else if (a == "--ops")
            o.ops = need(i);
        else if (a == "--json")
            o.json_path = need(i);
        else if (a == "--quick")
            o.quick = true;
        else if (a == "--help" || a == "-h") {
            std::printf(
                "%s\n\nOptions: --warmup N --repeats N --batch N --device auto|cpu|cuda "
                "--ops a,b --json FILE --quick\n",
                program_help.c_str());
            std::exit(0);
        } else {
            std::fprintf(stderr, "%s: unknown option '%s' (see --help)\n", argv[0], a.c_str());
            std::exit(2);
        }
    }
    if (o.quick) {
        o.warmup = std::min(o.warmup, 1);
        o.repeats = std::min(o.repeats, 3);
    }
    if (o.repeats < 1 || o.warmup < 0 || o.batch < 1) {
        std::fprintf(stderr, "%s: --repeats and --batch must be positive\n", argv[0]);
        std::exit(2);
    }
    return o;
}

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

Timing time_cpu(const std::function<void()>& fn, int warmup, int repeats) {
    for (int i = 0; i < warmup; ++i)
        fn();
    std::vector<double> ms;
    for (int i = 0; i < repeats; ++i) {
        auto t0 = std::chrono::steady_clock::now();
        fn();
        auto t1 = std::chrono::steady_clock::now();
        ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    }
    return {median(ms), *std::min_element(ms.begin(), ms.end())};
}

void Report::compute_ratios(const std::string& yardstick) {
    for (Result& r : results_) {
        if (r.impl != "gnet") continue;
        for (const Result& y : results_) {
            if (y.impl == yardstick && y.op == r.op && y.shape == r.shape && y.device == r.device &&
                y.median_ms > 0) {
                r.ratio = r.median_ms / y.median_ms;
                r.ratio_to = yardstick;
            }
        }
    }
}

void Report::print_table() const {
    std::printf("== %s ==\n", title_.c_str());
    std::printf("%s\n", machine_description().c_str());
    int impl_width = 10;  // the impl column as wide as its longest name
    for (const Result& r : results_)
        impl_width = std::max(impl_width, int(r.impl.size()));
    std::printf("%-26s %-36s %-5s %-*s %10s %10s %12s  %s\n", "op", "shape", "dev", impl_width,
                "impl", "median ms", "min ms", "rate", "gnet/yardstick");
    for (const Result& r : results_) {
        char rate[48];
        std::snprintf(rate, sizeof rate, "%.1f %s", r.rate, r.unit.c_str());
        std::string ratio = r.ratio > 0 ? std::to_string(r.ratio).substr(0, 5) + "x " + r.ratio_to
                                        : std::string("");
        std::printf("%-26s %-36s %-5s %-*s %10.3f %10.3f %12s  %s%s\n", r.op.c_str(),
                    r.shape.c_str(), r.device.c_str(), impl_width, r.impl.c_str(), r.median_ms,
                    r.min_ms, rate, ratio.c_str(),
                    r.note.empty() ? "" : ("  (" + r.note + ")").c_str());
    }
    for (const std::string& n : notes_)
        std::printf("note: %s\n", n.c_str());
    std::fflush(stdout);
}

namespace {

std::string now_utc() {
    std::time_t t = std::time(nullptr);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
    return buf;
}

std::string cpu_model() {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("model name", 0) == 0) {
            auto p = line.find(':');
            if (p != std::string::npos) return line.substr(p + 2);
        }
    }
    return "unknown CPU";
}

}  // namespace

std::string machine_description() {
    std::string d = "CPU: " + cpu_model() + ", " +
                    std::to_string(std::thread::hardware_concurrency()) + " threads";
    const GpuProbe& p = probe_gpus();
    if (p.usable) {
        d += "; GPU: " + p.gpus[0].name + " (driver CUDA " + std::to_string(p.driver_version) +
             ", runtime " + std::to_string(p.runtime_version) + ")";
    } else {
        d += "; GPU: none (" + p.reason + ")";
    }
    d += "; gnet " GNET_VERSION_STRING " commit " GNET_GIT_COMMIT;
    return d;
}

void Report::write_json(const std::string& path) const {
    const GpuProbe& p = probe_gpus();
    OrderedJson doc;
    doc["title"] = title_;
    doc["date"] = now_utc();
    doc["git_commit"] = GNET_GIT_COMMIT;
    doc["machine"] = machine_description();
    doc["gpu"] = p.usable ? p.gpus[0].name : std::string();
    doc["cuda_runtime"] = p.runtime_version;
    doc["cuda_driver"] = p.driver_version;
#if defined(GNET_HAVE_CUDNN) && GNET_HAVE_CUDNN
    doc["cudnn"] = cudnnGetVersion();
#else
    doc["cudnn"] = 0;
#endif
    doc["notes"] = notes_;
    OrderedJson results = OrderedJson::array();
    for (const Result& r : results_)
        results.push_back({{"op", r.op},
                           {"shape", r.shape},
                           {"device", r.device},
                           {"impl", r.impl},
                           {"median_ms", r.median_ms},
                           {"min_ms", r.min_ms},
                           {"work", r.work},
                           {"unit", r.unit},
                           {"rate", r.rate},
                           {"ratio", r.ratio},
                           {"ratio_to", r.ratio_to},
                           {"note", r.note}});
    doc["results"] = std::move(results);
    write_file_atomic(path, json_dump(doc, 2) + "\n");
}

}  // namespace gnet::bench
