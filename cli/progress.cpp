#include "cli/progress.h"

#include <unistd.h>

#include <cstdio>

namespace gnet::cli {

std::string format_duration(double seconds) {
    if (!(seconds >= 0) || seconds > 1e7) return "--:--";
    long s = long(seconds + 0.5);
    char buf[32];
    if (s >= 3600)
        std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
    else
        std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
    return buf;
}

ProgressBar::ProgressBar(std::string label, std::string unit, int64_t total)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      active_(::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_ - std::chrono::seconds(1)) {}

ProgressBar::~ProgressBar() {
    finish();
}

void ProgressBar::update(int64_t done, const std::string& extra) {
    if (!active_ || finished_) return;
    auto now = std::chrono::steady_clock::now();
    if (done < total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    double elapsed = std::chrono::duration<double>(now - start_).count();
    double rate = elapsed > 0 ? double(done) / elapsed : 0;
    double eta = rate > 0 ? double(total_ - done) / rate : -1;
    constexpr int kWidth = 24;
    int filled = total_ > 0 ? int(double(kWidth) * double(done) / double(total_)) : 0;
    std::string bar(size_t(filled), '#');
    bar.append(size_t(kWidth - filled), '.');
    std::fprintf(stderr, "\r%s [%s] %lld/%lld %s  %.1f %s/s  ETA %s%s%s\033[K", label_.c_str(),
                 bar.c_str(), (long long)done, (long long)total_, unit_.c_str(), rate,
                 unit_.c_str(), format_duration(eta).c_str(), extra.empty() ? "" : "  ",
                 extra.c_str());
    std::fflush(stderr);
}

void ProgressBar::finish() {
    if (!active_ || finished_) return;
    finished_ = true;
    std::fprintf(stderr, "\n");
}

}  // namespace gnet::cli
