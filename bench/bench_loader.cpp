// The training loader's rate on a prepared folder: samples/s delivered (read, CRC-checked, cut,
// scaled, batched) with nothing else running, per layout and window mode, and the process's
// peak RSS. Usage: bench_loader DATA_DIR [--epochs 5] [--batch 32] [--windows fixed|random]
// [--shuffle-buffer 512] [--workers 2]. Measures the epochs after a first warm-up epoch (the
// page cache then holds the files: this is the CPU side of the loader, not the disk).
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "kernels/error.h"
#include "train/dataset.h"
#include "train/loader.h"

using namespace gnet;

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr,
                     "usage: bench_loader DATA_DIR [--epochs N] [--batch N] "
                     "[--windows fixed|random] [--shuffle-buffer N] [--workers N]\n");
        return 2;
    }
    try {
        const std::string dir = argv[1];
        int epochs = 5;
        LoaderOptions lo;
        for (int i = 2; i + 1 < argc; i += 2) {
            const std::string k = argv[i], v = argv[i + 1];
            if (k == "--epochs")
                epochs = std::atoi(v.c_str());
            else if (k == "--batch")
                lo.batch = std::atoi(v.c_str());
            else if (k == "--windows")
                lo.windows = parse_window_mode(v);
            else if (k == "--shuffle-buffer")
                lo.shuffle_buffer = std::atoi(v.c_str());
            else if (k == "--workers")
                lo.workers = std::atoi(v.c_str());
            else
                throw UsageError("unknown option " + k);
        }
        const PreparedData data = load_prepared(dir);
        lo.windows = resolve_window_mode(lo.windows, data);  // --windows auto, as gnet train
        Loader loader(data, data.split_chunks(Split::Train), lo);
        loader.start_epoch(0);  // warm-up: fills the page cache
        while (loader.next()) {
        }
        const auto t0 = std::chrono::steady_clock::now();
        int64_t samples = 0;
        for (int e = 1; e <= epochs; ++e) {
            loader.start_epoch(e);
            while (const Batch* b = loader.next())
                samples += b->n;
        }
        const double s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        std::printf(
            "%s: %s, windows %s, batch %d, shuffle buffer %d: %lld samples in %.2f s = "
            "%.0f samples/s, peak RSS %.0f MB\n",
            dir.c_str(),
            data.layout == DataLayout::Shards
                ? (std::string("shards ") + shard_dtype_name(data.shard_headers[0].dtype)).c_str()
                : "chunk files",
            window_mode_name(lo.windows), lo.batch, lo.shuffle_buffer, (long long)samples, s,
            double(samples) / s, double(ru.ru_maxrss) / 1024.0);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_loader: %s\n", e.what());
        return 1;
    }
}
