// A progress bar on stderr with rate and ETA, drawn only when stderr is a terminal (so logs and
// pipes stay clean). Redraws at most ~10 times a second; finish() ends the line.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace gnet::cli {

class ProgressBar {
  public:
    ProgressBar(std::string label, std::string unit, int64_t total);
    ~ProgressBar();
    void update(int64_t done, const std::string& extra = "");
    void finish();
    bool active() const { return active_; }

  private:
    std::string label_, unit_;
    int64_t total_;
    bool active_;
    bool finished_ = false;
    std::chrono::steady_clock::time_point start_, last_draw_;
};

// "1:05:09", "4:07" or "0:03"
std::string format_duration(double seconds);

}  // namespace gnet::cli
